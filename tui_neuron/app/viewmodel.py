"""Plain arrays the widgets draw, built once per decode in the worker thread.

Stepping through time only indexes these arrays: no model computation happens
on the UI thread.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from ..analysis.decoding import DecodeResult, input_word
from ..model.examples import ControlSignal
from ..model.stepper import Trace


@dataclass(eq=False)
class RunView:
    times: np.ndarray  # [S] t of each shown step
    inputs: list[str]  # input token of each step
    outputs: list[str]  # output token ('' on encoder steps)
    h: np.ndarray  # [S,H]
    gates: dict[str, np.ndarray]  # name -> [S,H] (LSTM adds 'c')
    topk: list[list[tuple[str, float]]]  # per step ([] on encoder steps)
    control: list[tuple[float, int] | None]  # first control's (prob, rank) per step
    output_tokens: list[str]
    landings: list[dict]
    attention: list[list[float]] | None = None  # per step, the weights over the source tokens ([] on encoder steps)

    def index_of(self, t: int) -> int | None:
        hits = np.nonzero(self.times == t)[0]
        return int(hits[0]) if len(hits) else None


def top_differences(delta: np.ndarray, n: int) -> list[tuple[int, float]]:
    """The n neurons with the largest |difference|, signed, largest first (ties in neuron order)."""
    top = np.argsort(-np.abs(delta), kind="stable")[:n]
    return [(int(j), float(delta[j])) for j in top]


@dataclass(eq=False)
class DecodeView:
    source: list[str]
    controls: list[str]
    positions: list[int]
    clean: RunView
    changed: RunView | None
    interventions: list[str]
    hidden: int
    gate_names: tuple[str, ...]
    changed_outputs: dict[int, str] | None = None  # t -> the changed run's output, for the timeline
    by_layer: list[tuple[RunView, RunView | None]] = field(default_factory=list)  # every layer's clean, changed
    layer: int = 0  # the layer `clean` and `changed` show

    @property
    def control_token(self) -> str:
        """The first control's word (`king` of `king@4`), or '' without controls."""
        return ControlSignal.parse(self.controls[0]).token if self.controls else ""

    @property
    def n_layers(self) -> int:
        return len(self.by_layer) or 1

    @property
    def last_index(self) -> int:
        return len(self.clean.times) - 1

    def index(self, step: int) -> int:
        """The clean run's index for the app's step (a step past the run's end shows its last step)."""
        return min(step, self.last_index)

    def t_at(self, step: int) -> int:
        """The timestep t shown at the app's step."""
        return int(self.clean.times[self.index(step)])

    def aligned(self, other: DecodeView, t: int) -> tuple[int, int | None]:
        """Compare A/B: this run's t and the other run's step index at the same t relative to each one's first
        control position T (the same t when either has no control); None where the other run has no such step."""
        t_other = t - self.positions[0] + other.positions[0] if self.positions and other.positions else t
        return t_other, other.clean.index_of(t_other)

    def aligned_outputs(self, other: DecodeView) -> dict[int, str]:
        """The other run's output at the step aligned with each of this run's t ('' where it has none)."""
        out = {}
        for t in self.clean.times.tolist():
            _, k = self.aligned(other, t)
            out[t] = other.clean.outputs[k] if k is not None else ""
        return out

    def at_layer(self, layer: int) -> DecodeView:
        """The same decode showing another layer's h and gates (views built in the worker; no compute here)."""
        layer = max(0, min(layer, self.n_layers - 1))
        clean, changed = self.by_layer[layer] if self.by_layer else (self.clean, self.changed)
        return replace(self, clean=clean, changed=changed, layer=layer)


def _run_view(trace: Trace, itos: list[str], output_ids: list[int], landings: list[dict], last_t: int,
              source_itos: list[str] | None = None) -> RunView:
    keep = [i for i, t in enumerate(trace.times) if bool(trace.valid[0, i]) and t <= last_t]
    times = trace.times[keep]
    tokens = trace.tokens[0, keep].tolist()
    outputs: list[str] = []
    topk: list[list[tuple[str, float]]] = []
    control: list[tuple[float, int] | None] = []
    assert trace.top_ids is not None and trace.top_probs is not None  # decodes for views keep the top-k
    assert trace.control_probs is not None and trace.control_ranks is not None
    for t in times:
        if t >= 1:
            d = t - 1
            outputs.append(itos[int(trace.outputs[0, d])])
            topk.append([(itos[i], float(p)) for i, p in zip(trace.top_ids[0, d].tolist(), trace.top_probs[0, d].tolist())])
            # the rank as shown everywhere: 1 = the most likely token; none for a source without controls
            control.append((float(trace.control_probs[0, d]), int(trace.control_ranks[0, d]) + 1) if landings else None)
        else:
            outputs.append("")
            topk.append([])
            control.append(None)
    gates = {k: v[0, keep].numpy() for k, v in trace.gates.items()}
    if trace.c is not None:
        gates["c"] = trace.c[0, keep].numpy()
    words = [input_word(itos, source_itos, int(t), i) for t, i in zip(times, tokens)]
    attention = [trace.source_weights(0, int(t)) for t in times] if trace.attention is not None else None
    return RunView(times, words, outputs, trace.h[0, keep].numpy(), gates, topk, control,
                   [itos[i] for i in output_ids], landings, attention)


def build_view(result: DecodeResult, hidden: int, gate_names: tuple[str, ...]) -> DecodeView:
    n_clean = len(result.output_ids) + 1
    n_changed = len(result.changed_ids) + 1 if result.changed is not None else 0
    last_t = max(n_clean, n_changed)
    by_layer: list[tuple[RunView, RunView | None]] = []
    for k in range(result.clean.n_layers):
        clean = _run_view(result.clean.for_layer(k), result.vocab_itos, result.output_ids, result.landings(), last_t,
                          result.source_itos)
        changed = None
        if result.changed is not None:
            changed = _run_view(result.changed.for_layer(k), result.vocab_itos, result.changed_ids,
                                result.landings(True), last_t, result.source_itos)
        by_layer.append((clean, changed))
    clean, changed = by_layer[-1]
    changed_outputs = {int(t): o for t, o in zip(changed.times, changed.outputs)} if changed is not None else None
    return DecodeView(result.source_tokens, result.controls, [p for _, p in result.example.controls], clean, changed,
                      [iv.spec() for iv in result.interventions], hidden, gate_names, changed_outputs, by_layer,
                      len(by_layer) - 1)
