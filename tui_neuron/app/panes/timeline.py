"""The timeline pane: the steps of the run (inputs, outputs, the changed outputs) and the keys that move in time."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.reactive import var

from ..bindings import B
from ..messages import StateRequest
from ..viewmodel import DecodeView
from ..widgets import Timeline
from .redraw import Redraws

VIEWS = ("original", "changed", "difference")


class TimelinePane(Redraws, Vertical):
    """Stepping: which step is shown, which layer, and which run (original, changed, difference)."""

    view: var[DecodeView | None] = var(None, init=False)
    step: var[int] = var(0, init=False)
    neuron: var[int] = var(0, init=False)
    run_view: var[str] = var("original", init=False)
    compare: var[DecodeView | None] = var(None, init=False)
    compare_mode: var[str] = var("A", init=False)

    REDRAW = {"view": ("align_b", "draw"), "step": ("draw",), "neuron": ("draw",), "compare": ("align_b", "draw")}

    def __init__(self, n_layers: int, **kw):
        super().__init__(**kw)
        self.n_layers = n_layers
        self.b_outputs: dict[int, str] | None = None  # B's outputs aligned with A's steps, while comparing

    def compose(self) -> ComposeResult:
        yield Timeline(id="timeline")

    def align_b(self) -> None:
        """When A or B changes (not at every step): B's outputs on A's steps."""
        v, b = self.view, self.compare
        self.b_outputs = v.aligned_outputs(b) if v is not None and b is not None else None
        self.set_class(self.b_outputs is not None, "-with-b")  # one row more for B's outputs

    def draw(self) -> None:
        v = self.view
        if v is None:
            return
        run = v.clean
        self.query_one(Timeline).show(run.times, run.inputs, run.outputs, v.index(self.step), v.positions,
                                      v.changed_outputs, run.h[:, self.neuron], self.b_outputs)

    def action_step_by(self, delta: int) -> None:
        if self.view is not None:
            last = self.view.last_index
            self.post_message(StateRequest(step=lambda step: max(0, min(last, step + delta))))

    def action_step_to(self, where: str) -> None:
        if self.view is None:
            return
        if where == "first":
            self.post_message(StateRequest(step=0))
        elif where == "last":
            self.post_message(StateRequest(step=self.view.last_index))
        elif self.view.positions:
            idx = self.view.clean.index_of(self.view.positions[0])
            if idx is not None:
                self.post_message(StateRequest(step=idx))

    def action_next_layer(self) -> None:
        if self.n_layers == 1:
            self.notify("this model has one layer")
            return

        def next_layer(layer: int) -> int:
            layer = (layer + 1) % self.n_layers
            self.notify(f"layer {layer} (of 0..{self.n_layers - 1}); new interventions act on it")
            return layer

        self.post_message(StateRequest(layer=next_layer))

    def action_cycle_view(self) -> None:
        if self.view is None or self.view.changed is None:
            self.post_message(StateRequest(run_view="original"))
            self.notify("no changed run to show: add an intervention with i", severity="warning")
            return

        def next_view(mode: str) -> str:
            mode = VIEWS[(VIEWS.index(mode) + 1) % len(VIEWS)]
            self.notify(f"showing the {mode} run" if mode != "difference" else "showing changed − original")
            return mode

        self.post_message(StateRequest(run_view=next_view))

    BINDINGS = [
        B("back", "left", "step_by(-1)", "Back", "step one timestep back (encoder steps included)"),
        B("forward", "right", "step_by(1)", "Forward", "step one timestep forward"),
        B("first", "home", "step_to('first')", "First", "jump to the first encoder step", show=False),
        B("last", "end", "step_to('last')", "Last", "jump to the last decoder step", show=False),
        B("go-to-t", "t", "step_to('T')", "Go to T", "jump to the first control's target step T", show=False),
        B("view", "v", "cycle_view", "View", "cycle the strips and the top-5 between the original run, the changed run "
          "and their difference (changed − original, with the neurons that changed most)", show=False),
        B("layer", "l", "next_layer", "Layer", "show the next layer of a multi-layer model (h, gates; interventions act on it)",
          show=False),
    ]
