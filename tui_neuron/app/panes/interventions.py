"""The interventions pane: the stacked interventions, and the original and changed runs side by side."""

from __future__ import annotations

import re

import numpy as np
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.reactive import var

from ...analysis.session import Stacked
from ...errors import UserError
from ...model.interventions import NAME_RE, NeuronSet
from ...model.syntax import help_text, parse_intervention, prompt_title
from ..bindings import B
from ..messages import AddIntervention, StateRequest
from ..screens import PromptScreen
from ..viewmodel import DecodeView
from ..widgets import ComparePanel, InterventionList
from .redraw import Redraws


def step_label(view: DecodeView | None, t: int) -> str:
    """The step as the syntax names it: relative to the first control's T when there is one."""
    if view is None or not view.positions:
        return str(t)
    offset = t - view.positions[0]
    return "T" if offset == 0 else f"T{offset:+d}"


def stack_line(item: Stacked, names: dict[str, list[int]]) -> str:
    """An intervention as typed, with the size of a named neuron set (`zero:storing@T-1 · 34 neurons`)."""
    name = item.intervention.neurons.name
    if name is None:
        return item.intervention.spec()
    size = next((len(v) for k, v in names.items() if k.lower() == name.lower()), None)
    return item.intervention.spec() + (f" · {size} neurons" if size is not None else " · not defined here")


class InterventionsPane(Redraws, Horizontal):
    """Add, toggle and remove interventions; see what they changed (outputs, landings, |Δh| over t)."""

    interventions: var[list[Stacked]] = var(list, init=False)
    iv_cursor: var[int] = var(0, init=False)
    view: var[DecodeView | None] = var(None, init=False)
    step: var[int] = var(0, init=False)
    neuron: var[int] = var(0, init=False)
    model_layer: var[int] = var(0, init=False)  # the layer shown
    selection: var[tuple[int, ...]] = var((), init=False)
    selection_name: var[str] = var("", init=False)
    names: var[dict[str, list[int]]] = var(dict, init=False)
    compare: var[DecodeView | None] = var(None, init=False)  # source B, whose landing shows beside A's

    REDRAW = {"interventions": ("draw_list", "draw_compare"), "iv_cursor": ("draw_list",), "names": ("draw_list",),
              "view": ("draw_compare",), "neuron": ("draw_compare",), "selection": ("draw_compare",),
              "compare": ("draw_compare",)}

    def __init__(self, n_layers: int, **kw):
        super().__init__(**kw)
        self.n_layers = n_layers

    def compose(self) -> ComposeResult:
        yield InterventionList(id="ivlist")
        yield ComparePanel(id="compare")

    def draw_list(self) -> None:
        self.query_one(InterventionList).show([(stack_line(s, self.names), s.enabled) for s in self.interventions],
                                              self.iv_cursor)

    def draw_compare(self) -> None:
        """Both outputs, where each control landed, and |Δh| over t for the selected neurons."""
        v = self.view
        if v is None:
            return
        run = v.clean
        delta, label = None, ""
        if v.changed is not None:
            neurons = list(self.selection) or [self.neuron]
            label = f"n{neurons[0]}" if len(neurons) == 1 else f"{len(neurons)} neurons"
            common = min(len(run.times), len(v.changed.times))
            delta = np.abs(v.changed.h[:common][:, neurons] - run.h[:common][:, neurons]).max(axis=1)
        self.query_one(ComparePanel).show(run.output_tokens, run.landings,
                                          v.changed.output_tokens if v.changed else None,
                                          v.changed.landings if v.changed else None, delta, label,
                                          sum(not iv.enabled for iv in self.interventions),
                                          run.times[: len(delta)] if delta is not None else None,
                                          b=None if self.compare is None else (self.compare.clean.output_tokens,
                                                                               self.compare.clean.landings))

    @property
    def current_t(self) -> int:
        if self.view is None:
            return 0
        return self.view.t_at(self.step)

    def action_add_intervention(self) -> None:
        """The prompt, prefilled for the selection (by its name when it is a role or group) at this step."""
        if re.fullmatch(NAME_RE, self.selection_name) and self.selection_name.lower() != "all":
            neurons = self.selection_name
        else:
            neurons = str(NeuronSet.of(self.selection)) if self.selection else str(self.neuron)
        layer = f"/l{self.model_layer}" if self.n_layers > 1 else ""
        step = step_label(self.view, self.current_t)
        # a model without controls has no T: its placeholder names a step as a number
        example = "zero:all@T-1" if self.view is not None and self.view.positions else "zero:all@1"
        self.app.push_screen(PromptScreen(prompt_title(), f"zero:{neurons}@{step}{layer}", example), self._entered)

    def _entered(self, text: str | None) -> None:
        """Typed text is parsed here, once; the object goes up."""
        if not text:
            return
        if text.strip() == "?":
            self.notify(help_text(), title="intervention syntax", timeout=30)
            return
        try:
            iv = parse_intervention(text)
        except UserError as e:
            self.notify(str(e), severity="error", title="intervention not added")
            return
        self.post_message(AddIntervention(iv))

    def _cursor(self) -> int:
        return min(self.iv_cursor, len(self.interventions) - 1)

    def action_toggle_intervention(self) -> None:
        if self.interventions:
            k, items = self._cursor(), list(self.interventions)
            items[k] = Stacked(items[k].intervention, not items[k].enabled)
            self.post_message(StateRequest(interventions=items))

    def action_delete_intervention(self) -> None:
        if self.interventions:
            k = self._cursor()
            items = [iv for n, iv in enumerate(self.interventions) if n != k]
            self.post_message(StateRequest(interventions=items, iv_cursor=max(0, min(k, len(items) - 1))))

    def action_iv_cursor_by(self, delta: int) -> None:
        if self.interventions:
            last = len(self.interventions) - 1
            self.post_message(StateRequest(iv_cursor=lambda cursor: max(0, min(last, cursor + delta))))

    BINDINGS = [
        B("intervene", "i", "add_intervention", "Intervene", "add an intervention (prefilled for the selection and "
          "step; ? in the prompt lists the syntax; a group or role name stands for its neurons)"),
        B("toggle", "x", "toggle_intervention", "Toggle", "switch the intervention under the cursor on or off", show=False),
        B("delete", "d", "delete_intervention", "Delete", "remove the intervention under the cursor", show=False),
        B("iv-cursor-up", "left_square_bracket", "iv_cursor_by(-1)", "Iv cursor up", "move the intervention cursor up",
          show=False),
        B("iv-cursor-down", "right_square_bracket", "iv_cursor_by(1)", "Iv cursor down",
          "move the intervention cursor down", show=False),
    ]
