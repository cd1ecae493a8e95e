"""Two sources side by side: B (its own controls) beside the current source A, aligned by t relative to T.

`c` sets B (a sentence with trailing WORD@T controls; empty stops comparing) and decodes it in a worker;
`w` cycles what the strips and the top-5 show: A, B, or A − B; `W` swaps the selected neurons' values
from B into A at this step (an intervention, `swap:…@T-k<B`); `D` lists the neurons that differ most at
this step (changed − original, or A − B while comparing) and selecting one selects the neuron.
"""

from __future__ import annotations

from typing import ClassVar

from textual import on, work
from textual.reactive import var
from textual.widget import Widget

from ...analysis.decoding import decode_one
from ...checkpoint.format import Checkpoint
from ...errors import UserError
from ...model.examples import split_controls
from ...model.interventions import CopyFromRun, NeuronSet, StepRef
from ..bindings import B
from ..messages import AddIntervention, JobDone, JobFailed, StateRequest, Status
from ..screens import PromptScreen, RankedNeuronsScreen
from ..viewmodel import DecodeView, build_view, top_differences
from .interventions import step_label
from .redraw import Redraws

COMPARE_MODES = ("A", "B", "A−B")


def largest_differences(view: DecodeView, compare: DecodeView | None, mode: str, step: int, n: int = 20
                        ) -> tuple[str, list[tuple[int, float]]]:
    """What differs most at this step, signed: A − B while comparing, else changed − original (else nothing)."""
    t, i = view.t_at(step), view.index(step)
    if compare is not None and mode != "A":
        _, k = view.aligned(compare, t)
        if k is None:
            return f"B has no step aligned with t={t}", []
        delta, label = view.clean.h[i] - compare.clean.h[k], f"A − B at t={t}"
    elif view.changed is not None and (k := view.changed.index_of(t)) is not None:
        delta, label = view.changed.h[k] - view.clean.h[i], f"changed − original at t={t}"
    else:
        return "no changed run and no B to compare with", []
    return label, top_differences(delta, n)


class ComparePane(Redraws, Widget):
    """Decodes B and turns the compare keys into state requests and interventions."""

    view: var[DecodeView | None] = var(None, init=False)
    step: var[int] = var(0, init=False)
    neuron: var[int] = var(0, init=False)
    selection: var[tuple[int, ...]] = var((), init=False)
    compare: var[DecodeView | None] = var(None, init=False)
    compare_mode: var[str] = var("A", init=False)
    model_layer: var[int] = var(0, init=False)  # the layer shown: B is handed up on it, as A is shown

    REDRAW: ClassVar[dict[str, tuple[str, ...]]] = {}  # draws nothing: B's strips and curve are the neuron pane's

    BINDINGS = [
        B("compare", "c", "set_b", "Compare", "compare with a second source B (its own controls), aligned by t − T; empty "
          "stops comparing", show=False),
        B("a/b", "w", "cycle_compare", "A/B", "show A, B or A − B in the strips and the top-5 (with a B set by c)",
          show=False),
        B("swap-b→a", "W", "swap_from_b", "Swap B→A", "swap the selected neurons' values from B into A at this step "
          "(an intervention)", show=False),
        B("differences", "D", "differences", "Differences", "the neurons that differ most at this step (changed − original, or "
          "A − B); enter selects one", show=False),
    ]

    def __init__(self, ckpt: Checkpoint, **kw):
        super().__init__(**kw)
        self.ckpt = ckpt
        self.b_text = ""  # source B as asked for (set at once, before it has run)
        self.pending_mode = "A"  # the mode to show once B has run

    def action_set_b(self) -> None:
        default = self.b_text
        if not default and self.view is not None:
            default = " ".join(self.view.source + self.view.controls)
        self.app.push_screen(PromptScreen("Source B with its controls, e.g. the king is here king@3 (empty: stop "
                                          "comparing)", default, "sentence WORD@T"), self._b_entered)

    def load_b(self, text: str, mode: str = "A−B") -> None:
        """Compare with `text` (a sentence with trailing WORD@T controls), showing `mode` once B has run."""
        try:
            source, controls = split_controls(text)
        except UserError as e:
            self.notify(f"B: {e}", severity="error")
            return
        self.b_text, self.pending_mode = text.strip(), mode
        self.post_message(Status("⟳ decoding B…"))
        self.b_worker(text.strip(), source, [str(c) for c in controls], mode)

    def _b_entered(self, text: str | None) -> None:
        if text is None:
            return
        if not text.strip():
            self.b_text, self.pending_mode = "", "A"
            self.post_message(StateRequest(compare=None, compare_mode="A"))
            self.notify("comparing stopped")
            return
        self.load_b(text)

    @work(thread=True, exclusive=True, group="compare")
    def b_worker(self, text: str, source: str, controls: list[str], mode: str = "A−B") -> None:
        try:
            result = decode_one(self.ckpt, source, controls, [])
            view = build_view(result, self.ckpt.config.hidden, self.ckpt.config.gate_names)
        except UserError as e:
            self.post_message(JobFailed("compare", f"B: {e}"))
            return
        self.post_message(JobDone("compare", view, label=text, path=None, mode=mode))

    @on(JobDone)
    def _b_ready(self, message: JobDone) -> None:
        if message.job != "compare":
            return
        message.stop()
        text, view, mode = message.label, message.result, message.mode
        self.b_text = text
        self.post_message(Status(""))
        self.post_message(StateRequest(compare=view.at_layer(self.model_layer), compare_mode=mode))
        self.notify(f"B → {' '.join(view.clean.output_tokens)}; w cycles A / B / A − B, W swaps B into A")

    def action_cycle_compare(self) -> None:
        if self.compare is None:
            self.notify("no B to compare with: set one with c", severity="warning")
            return
        self.post_message(StateRequest(compare_mode=lambda m: COMPARE_MODES[(COMPARE_MODES.index(m) + 1) % 3]))

    def action_swap_from_b(self) -> None:
        if self.compare is None or self.view is None:
            self.notify("no B to swap from: set one with c", severity="warning")
            return
        neurons = NeuronSet.of(self.selection or (self.neuron,))
        step = StepRef.parse(step_label(self.view, self.view.t_at(self.step)))
        self.post_message(AddIntervention(CopyFromRun(neurons, step, "h", self.b_text)))

    def action_differences(self) -> None:
        if self.view is None:
            return
        label, rows = largest_differences(self.view, self.compare, self.compare_mode, self.step)
        if not rows:
            self.notify(label, severity="warning")
            return
        self.app.push_screen(RankedNeuronsScreen(label, rows), self._picked)

    def _picked(self, neuron: int | None) -> None:
        if neuron is not None:
            self.post_message(StateRequest(neuron=neuron))
