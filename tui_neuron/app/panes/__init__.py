"""The explorer's feature panes: each a widget with its own bindings, actions and messages.

The app composes them, holds the shared reactive state and binds it down (`data_bind`); a pane asks for a
change by posting a message up. Bindings are declared on the pane and routed from the app (`bindings.routed`),
so a key works wherever the focus is, except inside a text box, which keeps every printable key.
"""

from .analyses import AnalysesPane
from .compare import ComparePane
from .interventions import InterventionsPane
from .match import MatchPane
from .neurons import NeuronPane
from .patching import PatchPane
from .session import SessionPane
from .source import SourcePane, TextBox
from .timeline import TimelinePane

PANES = (TimelinePane, NeuronPane, InterventionsPane, AnalysesPane, MatchPane, ComparePane, PatchPane, SessionPane,
         SourcePane)

__all__ = ["PANES", "AnalysesPane", "ComparePane", "InterventionsPane", "MatchPane", "NeuronPane", "PatchPane", "SessionPane",
           "SourcePane", "TextBox", "TimelinePane"]
