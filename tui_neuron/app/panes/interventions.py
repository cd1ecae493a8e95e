"""The interventions pane: the stacked interventions, and the original and changed runs side by side."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.reactive import var

from ...model.interventions import NeuronSet
from ..bindings import B
from ..messages import AddIntervention, StateRequest
from ..screens import INTERVENTION_SYNTAX, PromptScreen
from ..viewmodel import DecodeView
from ..widgets import ComparePanel, InterventionList
from .redraw import Redraws


@dataclass(frozen=True)
class InterventionItem:
    spec: str
    enabled: bool = True


class InterventionsPane(Redraws, Horizontal):
    """Add, toggle and remove interventions; see what they changed (outputs, landings, |Δh| over t)."""

    interventions: var[list[InterventionItem]] = var(list, init=False)
    iv_cursor: var[int] = var(0, init=False)
    view: var[DecodeView | None] = var(None, init=False)
    step: var[int] = var(0, init=False)
    neuron: var[int] = var(0, init=False)
    model_layer: var[int] = var(0, init=False)  # the layer shown
    selection: var[tuple[int, ...]] = var((), init=False)

    REDRAW = {"interventions": ("draw_list", "draw_compare"), "iv_cursor": ("draw_list",),
              "view": ("draw_compare",), "neuron": ("draw_compare",), "selection": ("draw_compare",)}

    def __init__(self, n_layers: int, **kw):
        super().__init__(**kw)
        self.n_layers = n_layers

    def compose(self) -> ComposeResult:
        yield InterventionList(id="ivlist")
        yield ComparePanel(id="compare")

    def draw_list(self) -> None:
        self.query_one(InterventionList).show([(iv.spec, iv.enabled) for iv in self.interventions], self.iv_cursor)

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
                                          run.times[: len(delta)] if delta is not None else None)

    @property
    def current_t(self) -> int:
        if self.view is None:
            return 0
        return self.view.t_at(self.step)

    def action_add_intervention(self) -> None:
        neurons = str(NeuronSet.of(self.selection)) if self.selection else str(self.neuron)
        layer = f"/l{self.model_layer}" if self.n_layers > 1 else ""
        self.app.push_screen(PromptScreen("Intervention (zero/set/keep/copy/swap/randin; ? lists the syntax)",
                                          f"zero:{neurons}@{self.current_t}{layer}", "zero:all@T-1"), self._entered)

    def _entered(self, text: str | None) -> None:
        if not text:
            return
        if text.strip() == "?":
            self.notify(INTERVENTION_SYNTAX, title="intervention syntax", timeout=20)
            return
        self.post_message(AddIntervention(text))

    def _cursor(self) -> int:
        return min(self.iv_cursor, len(self.interventions) - 1)

    def action_toggle_intervention(self) -> None:
        if self.interventions:
            k, items = self._cursor(), list(self.interventions)
            items[k] = InterventionItem(items[k].spec, not items[k].enabled)
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
        B("i", "add_intervention", "Intervene", "add an intervention (prefilled for the selection and step; ? in the "
          "prompt lists the syntax; a group or role name stands for its neurons)"),
        B("x", "toggle_intervention", "Toggle", "switch the intervention under the cursor on or off", show=False),
        B("d", "delete_intervention", "Delete", "remove the intervention under the cursor", show=False),
        B("left_square_bracket", "iv_cursor_by(-1)", "Iv cursor up", "move the intervention cursor up", show=False),
        B("right_square_bracket", "iv_cursor_by(1)", "Iv cursor down", "move the intervention cursor down", show=False),
    ]
