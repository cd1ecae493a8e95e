"""The source pane: the source and controls boxes and the status box."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import Input, Static

from ...model.examples import ControlSignal
from ..bindings import B
from .redraw import Redraws


class TextBox(Input):
    """A text box that keeps every printable key; escape hands the keys back to stepping (shown in the footer)."""

    BINDINGS = [Binding("enter", "submit", "Run", id="box.run",
                        tooltip="in the source or controls box: encode and decode (in a worker)"),
                Binding("escape", "leave", "Keys", id="box.leave",
                        tooltip="leave the box: the keys then step, select neurons and intervene")]

    def action_leave(self) -> None:
        self.app.query_one("#strips").focus()


class SourcePane(Redraws, Horizontal):
    """What to run: a source sentence and its controls (enter runs them), and what is running now."""

    REDRAW: ClassVar[dict[str, tuple[str, ...]]] = {}  # its boxes hold what the user types; the app sets the status

    BINDINGS = [B("edit", "e", "edit_source", "Edit", "edit the source sentence (enter runs it)")]

    class Submitted(Message):
        """Enter in either box: run the source with its controls."""

    def __init__(self, source: str, controls: list[str], n_layers: int = 1, layer: int = 0, **kw):
        super().__init__(**kw)
        self._source, self._controls, self.n_layers = source, controls, n_layers
        self._status, self._layer = "ready", layer

    def compose(self) -> ComposeResult:
        yield TextBox(self._source, placeholder="source sentence (enter runs it)", id="source")
        yield TextBox(" ".join(self._controls), placeholder="controls: king@3 queen@5", id="controls")
        yield Static("", id="status")

    @property
    def source(self) -> str:
        return self.query_one("#source", Input).value

    @property
    def controls_text(self) -> str:
        return self.query_one("#controls", Input).value

    def controls(self) -> list[ControlSignal]:
        return [ControlSignal.parse(c) for c in self.controls_text.replace(",", " ").split()]

    def load(self, source: str, controls: list[str] | None = None) -> None:
        """Put a source (and controls, when given) in the boxes, as if typed."""
        self.query_one("#source", Input).value = source
        if controls is not None and not self.query_one("#controls", Input).disabled:
            self.query_one("#controls", Input).value = " ".join(controls)

    def disable_controls(self) -> None:
        box = self.query_one("#controls", Input)
        box.value, box.disabled = "", True
        box.placeholder = "no position tokens: controls unavailable"

    def warn_about(self, controls: list[ControlSignal], n_signals: int) -> None:
        """Controls that run but cannot all land: two at one T, or more than the model was trained with."""
        positions = [c.position for c in controls]
        if len(set(positions)) < len(positions):
            self.notify("two controls ask for the same position T; at most one can land", severity="warning")
        elif len(controls) > n_signals:
            self.notify(f"{len(controls)} controls on a model trained with {n_signals} signal(s) per example; "
                        "expect misses", severity="warning")

    def mark_bad(self, bad: bool) -> None:
        self.query_one("#controls").set_class(bad, "bad-input")

    def show_status(self, text: str | None, layer: int | None = None) -> None:
        """What is running (None: unchanged), and the shown layer of a multi-layer model on a second line."""
        self._status = self._status if text is None else text
        self._layer = self._layer if layer is None else layer
        shown = f"\nlayer {self._layer} (0..{self.n_layers - 1})" if self.n_layers > 1 else ""
        self.query_one("#status", Static).update(self._status + shown)

    def action_edit_source(self) -> None:
        self.query_one("#source", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.post_message(self.Submitted())
