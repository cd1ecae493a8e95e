"""The neuron pane: h and gate strips at the shown step, the top-5, and the selected neuron over time."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.reactive import var

from ...analysis.roles import ROLES
from ...errors import UserError
from ...model.interventions import NeuronSet
from ..bindings import B
from ..messages import StateRequest, count
from ..screens import PromptScreen
from ..viewmodel import DecodeView, top_differences
from ..widgets import AttentionRow, NeuronStrip, TopK
from .redraw import Redraws

if TYPE_CHECKING:
    from ..plot import NeuronPlot


class NeuronView(Vertical, can_focus=True):
    """The focusable strips: while they have focus, the keys step time and select neurons."""


class NeuronPane(Redraws, Horizontal):
    """Which neurons are selected, and what they and the gates hold at this step (original, changed or Δ)."""

    view: var[DecodeView | None] = var(None, init=False)
    step: var[int] = var(0, init=False)
    neuron: var[int] = var(0, init=False)
    selection: var[tuple[int, ...]] = var((), init=False)
    run_view: var[str] = var("original", init=False)
    roles: var[dict[int, str]] = var(dict, init=False)
    groups: var[dict[str, list[int]]] = var(dict, init=False)
    curve: var[tuple[str, dict] | None] = var(None, init=False)
    compare: var[DecodeView | None] = var(None, init=False)
    compare_mode: var[str] = var("A", init=False)

    REDRAW = {"view": ("draw_step", "draw_neuron"), "step": ("draw_step",), "run_view": ("draw_step",),
              "neuron": ("draw_step", "draw_neuron"), "selection": ("draw_step",),
              "roles": ("draw_step", "draw_neuron"), "compare": ("draw_step", "draw_neuron"),
              "compare_mode": ("draw_step",), "curve": ("draw_curve",)}

    def __init__(self, hidden: int, cell: str, gate_names: tuple[str, ...], **kw):
        super().__init__(**kw)
        self.hidden, self.cell, self.gate_names = hidden, cell, gate_names
        self._plot: NeuronPlot | None = None  # mounted after the first frame (app/plot.py)
        self._plot_asked = False

    def compose(self) -> ComposeResult:
        # kept by name: a step redraws them without querying the DOM
        self.strips = {"h": NeuronStrip("h", -1.0, 1.0, id="strip-h")}
        for name in self.gate_names:
            lo = -1.0 if name in ("n", "g") else 0.0
            self.strips[name] = NeuronStrip(name, lo, 1.0, id=f"strip-{name}", classes="gate")
        if self.cell == "lstm":
            self.strips["c"] = NeuronStrip("c", -1.0, 1.0, id="strip-c", classes="gate")
        with NeuronView(id="strips"):
            yield from self.strips.values()
        with Vertical(id="side"):
            yield TopK(id="topk")
            self.attention_row = AttentionRow(id="attention-row")
            yield self.attention_row
            yield Vertical(id="plot-slot")  # the plot is mounted here after the first frame (app/plot.py)

    # ------------------------------------------------------------------ drawing

    def draw_curve(self) -> None:
        plot = self.plot()
        if self.curve is not None and plot is not None:
            plot.show_curve(*self.curve)

    def plot(self) -> NeuronPlot | None:
        """The plot once it is mounted; until then, ask for it (it draws itself when it arrives)."""
        if self._plot is None and not self._plot_asked:
            self._plot_asked = True
            self.call_after_refresh(self._mount_plot)
        return self._plot

    async def _mount_plot(self) -> None:
        from ..plot import NeuronPlot

        plot = NeuronPlot(id="plot")
        await self.query_one("#plot-slot").mount(plot)
        self._plot = plot
        self.draw_neuron()
        self.draw_curve()

    def draw_step(self) -> None:
        """What changes with the step: strips and top-k. Only slices cached arrays."""
        v = self.view
        if v is None:
            return
        run, i = v.clean, v.index(self.step)
        t = int(run.times[i])
        marked, roles = frozenset(self.selection), self.roles
        if self.compare is not None and self.compare_mode != "A":
            self.draw_compared(v, self.compare, i, t, marked)
            return
        mode = self.run_view if v.changed is not None else "original"
        k = v.changed.index_of(t) if v.changed is not None and mode != "original" else None
        if k is None:
            mode = "original"
        shown = v.changed if mode == "changed" and v.changed is not None else run
        j = k if mode == "changed" and k is not None else i
        for name, arr in {"h": shown.h, **shown.gates}.items():
            values = arr[j]
            if mode == "difference":
                other = v.changed.h if name == "h" else v.changed.gates[name]  # type: ignore[union-attr]
                values = other[k] - (run.h if name == "h" else run.gates[name])[i]
            self.strips[name].show(values, self.neuron, marked, roles, difference=mode == "difference")
        self.draw_attention(v, mode, i, k, t)
        control_tok = v.control_token
        topk = self.query_one(TopK)
        if mode == "original":
            topk.show(run.topk[i], control_tok, run.control[i], t)
            return
        changed = v.changed
        assert changed is not None and k is not None
        topk.show(changed.topk[k], control_tok, changed.control[k], t, label=mode,
                  original=run.control[i] if mode == "difference" else None,
                  changed_most=top_differences(changed.h[k] - run.h[i], 5) if mode == "difference" else None)

    def draw_attention(self, v: DecodeView, mode: str, i: int, k: int | None, t: int) -> None:
        """The attention row of the shown run (hidden, and skipped, on a model without attention)."""
        run = v.clean
        self.set_class(run.attention is not None, "-attends")
        if run.attention is None:
            return
        changed = v.changed.attention if v.changed is not None and k is not None else None
        if mode == "original" or changed is None or k is None:
            self.attention_row.show(source_inputs(run), run.attention[i], t)
        else:
            difference = mode == "difference"
            self.attention_row.show(source_inputs(run), changed[k], t,
                                    "changed − original" if difference else "changed run",
                                    original=run.attention[i] if difference else None)

    def draw_compared(self, a: DecodeView, b: DecodeView, i: int, t: int, marked: frozenset[int]) -> None:
        """B, or A − B, at the step of B aligned with A's t (relative to each one's T), on A's layer."""
        t_b, k = a.aligned(b, t)
        topk = self.query_one(TopK)
        if k is None:
            topk.show([], "", None, t, note=f"B has no step at t={t_b} (aligned with A's t={t}): step elsewhere")
            return
        difference = self.compare_mode == "A−B"
        if a.clean.attention is not None and b.clean.attention is not None:
            weights_a, weights_b = a.clean.attention[i], b.clean.attention[k]
            if difference and len(weights_a) == len(weights_b):  # A − B needs one source length
                self.attention_row.show(source_inputs(b.clean), weights_a, t_b, "A − B", original=weights_b)
            else:
                self.attention_row.show(source_inputs(b.clean), weights_b, t_b, "B")
        for name, arr in {"h": b.clean.h, **b.clean.gates}.items():
            values = ((a.clean.h if name == "h" else a.clean.gates[name])[i] - arr[k]) if difference else arr[k]
            self.strips[name].show(values, self.neuron, marked, self.roles, difference=difference)
        if not difference:
            topk.show(b.clean.topk[k], b.control_token, b.clean.control[k], t_b, label=f"B, aligned with A's t={t}")
            return
        topk.show(a.clean.topk[i], a.control_token, a.clean.control[i], t, label=f"A; B at t={t_b}", delta_label="A − B",
                  changed_most=top_differences(a.clean.h[i] - b.clean.h[k], 5))

    def draw_neuron(self) -> None:
        """The selected neuron's h and update (or forget) gate over t, and the changed run's h."""
        v = self.view
        if v is None:
            return
        run, j = v.clean, self.neuron
        series = {f"h[{j}]": (run.times, run.h[:, j])}
        gate = "z" if "z" in run.gates else "f"
        series[f"{gate}[{j}]"] = (run.times, run.gates[gate][:, j])
        if v.changed is not None:
            series[f"h[{j}] changed"] = (v.changed.times, v.changed.h[:, j])
        if self.compare is not None and self.compare.positions and v.positions:  # B on A's t axis (aligned by T)
            shift = v.positions[0] - self.compare.positions[0]
            b = self.compare.clean
            series[f"h[{j}] B"] = (b.times + shift, b.h[:, j])
        role = ", ".join(r for r in ROLES if r[0] in self.roles.get(j, ""))
        title = f"neuron {j}" + (f" ({role})" if role else "") + " over t (T marked)"
        plot = self.plot()
        if plot is not None:
            plot.show(series, v.positions, title)

    # ------------------------------------------------------------------ actions

    def action_neuron_by(self, delta: int) -> None:
        self.post_message(StateRequest(neuron=lambda neuron: (neuron + delta) % self.hidden))

    def action_pick_neurons(self) -> None:
        groups = ", ".join(self.groups) or "none yet"
        self.app.push_screen(PromptScreen(f"Neurons: index, range, list, or a group ({groups})", str(self.neuron),
                                          "e.g. 12 or 0-31 or 3,17,40"), self._picked)

    def _picked(self, text: str | None) -> None:
        if not text:
            return
        try:
            neurons = self.resolve(text)
        except UserError as e:
            self.notify(str(e), severity="error")
            return
        self.post_message(StateRequest(selection=tuple(neurons) if len(neurons) > 1 else (), neuron=neurons[0]))

    def resolve(self, text: str) -> list[int]:
        """A group name, or the selection syntax (all, 3, 0-9,12), as neuron indices of this model."""
        name = text.strip()
        if name in self.groups:
            return list(self.groups[name])
        ns = NeuronSet.parse(name)
        ns.check(self.hidden)
        picked = list(range(self.hidden)) if ns.indices is None else list(ns.indices)
        if not picked:
            raise UserError("no neurons given")
        return picked

    def action_save_group(self) -> None:
        self.app.push_screen(PromptScreen("Name for the selected neurons (e.g. counting?)", "", "group name"),
                             self._group_named)

    def _group_named(self, name: str | None) -> None:
        if name is None:
            return
        name = name.strip()
        if not name:
            self.notify("no name given; the group was not saved", severity="warning")
            return
        try:
            reads_as_indices = NeuronSet.parse(name).name is None
        except UserError:
            reads_as_indices = False
        if reads_as_indices:
            self.notify(f"{name!r} reads as a neuron selection (like all or 10-20); choose another name",
                        severity="error")
            return
        neurons = list(self.selection) or [self.neuron]
        self.post_message(StateRequest(groups={**self.groups, name: neurons}))
        self.notify(f"group {name!r}: {count(len(neurons), 'neuron')}")

    BINDINGS = [
        B("prev-neuron", "up", "neuron_by(-1)", "Prev neuron", "select the previous neuron", show=False),
        B("next-neuron", "down", "neuron_by(1)", "Next neuron", "select the next neuron", show=False),
        B("row-up", "pageup", "neuron_by(-64)", "Row up", "select the neuron one strip row up", show=False),
        B("row-down", "pagedown", "neuron_by(64)", "Row down", "select the neuron one strip row down", show=False),
        B("neurons", "n", "pick_neurons", "Neurons", "select neurons by index, range (10-20), list or group name"),
        B("group", "g", "save_group", "Group", "save the selected neurons as a named group (kept in the session)", show=False),
    ]


def source_inputs(run) -> list[str]:
    """The tokens the encoder read (the run's steps t ≤ 0), which the attention weights cover in order."""
    return [tok for tok, t in zip(run.inputs, run.times) if t <= 0]
