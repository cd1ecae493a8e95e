"""Causal tracing for recurrent seq2seq: activation-patching sweeps over step × neuron block (× hook, × layer).

For a pair (clean, corrupted), every cell of the sweep is one `swap` intervention — the block's values at hook
point `hook` of layer `layer` at step t taken from the other input's run (steps aligned by t, as `swap` does) —
run through the stepper, all the cells of a pair as one batch (a row per cell). The metric of the clean answer
at the metric step is normalised so that 0 is the corrupted run and 1 the clean one:

    (metric(patched) − metric(corrupted)) / (metric(clean) − metric(corrupted))

Denoising patches clean values into the corrupted run (a cell near 1 restores the clean answer); noising
patches corrupted values into the clean run (a cell near 0 destroys it). Attribution patching estimates every
cell from one backward pass per pair, (donor − base) · ∂metric/∂activation, and is reported beside the exact
values with their rank correlation, so a reader knows when the cheap estimate can be trusted.

The metric step is the clean input's T, where the clean answer is its control token; when both runs emit the same
token there (another source with the same control), it is the first step where their outputs differ.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch import Tensor

from ..checkpoint.format import Checkpoint
from ..errors import ParameterError
from ..model.examples import Example, example_from_text
from ..model.interventions import CopyFromRun, NeuronSet, StepRef, value_hooks
from ..model.stepper import Stepper
from ..model.trace import Trace
from .patch_grad import gradient_run
from .patch_pairs import Pair, check_pairs
from .stats import mean_ci

Progress = Callable[[str, int, int], None]
METRICS = ("logit-diff", "prob", "lands")
DIRECTIONS = ("denoise", "noise")


@dataclass(frozen=True)
class PatchConfig:
    """One sweep's choices; the defaults are what `analyze patch` runs."""

    hooks: tuple[str, ...] = ("h",)  # hook points (h, c, gates); ("all",) for every one the cell has
    layers: tuple[int, ...] = ()  # empty: every layer
    block: int = 16  # neurons per block; the last block holds the remainder when it does not divide h
    groups: tuple[tuple[str, tuple[int, ...]], ...] = ()  # named neuron sets instead of blocks
    metric: str = "logit-diff"
    direction: str = "denoise"
    encoder: bool = True  # sweep the encoder steps too
    exact: bool = True
    attribution: bool = True
    chunk: int = 1024  # patched runs per stepper batch

    def hook_points(self, cell: str) -> tuple[str, ...]:
        return value_hooks(cell) if self.hooks == ("all",) else self.hooks

    def check(self, cell: str, hidden: int, layers: int) -> None:
        every = value_hooks(cell)
        bad = [h for h in self.hook_points(cell) if h not in every]
        if bad or not self.hooks:
            raise ParameterError("hooks", f"{{param}} {','.join(bad) or 'empty'}: a {cell.upper()} has "
                                          f"{', '.join(every)} (or all)")
        if any(not 0 <= k < layers for k in self.layers):
            raise ParameterError("layers", f"{{param}} {self.layers}: the model has layers 0..{layers - 1}")
        if not self.groups and not 1 <= self.block <= hidden:
            raise ParameterError("block", f"{{param}} {self.block}: give 1..{hidden} neurons per block")
        if self.metric not in METRICS:
            raise ParameterError("metric", f"{{param}} {self.metric!r}: use one of {', '.join(METRICS)}")
        if self.direction not in DIRECTIONS:
            raise ParameterError("direction", f"{{param}} {self.direction!r}: use denoise or noise")
        if not (self.exact or self.attribution):
            raise ParameterError("exact", "{param}: ask for exact patching, attribution patching or both")
        for name, neurons in self.groups:
            if not neurons or max(neurons) >= hidden:
                raise ParameterError("groups", f"{{param}}: group {name!r} must name neurons 0..{hidden - 1}")

    def blocks(self, hidden: int) -> list[tuple[str, tuple[int, ...]]]:
        if self.groups:
            return list(self.groups)
        return [(f"{lo}-{min(lo + self.block, hidden) - 1}" if self.block > 1 else str(lo),
                 tuple(range(lo, min(lo + self.block, hidden)))) for lo in range(0, hidden, self.block)]


def metric_of(name: str, logits: Tensor, answer: int, other: int) -> Tensor:
    """[B] the metric of the clean answer from logits [B, V]."""
    if name == "logit-diff":
        return logits[:, answer] - logits[:, other]
    if name == "prob":
        return torch.softmax(logits, -1)[:, answer]
    return (logits.argmax(-1) == answer).float()


def logits_at(stepper: Stepper, trace: Trace, t: int) -> Tensor:
    """[B, V] the logits of decoding step t, remade from every layer's recorded h (the output layer's own sum)."""
    i = t + trace.n_enc - 1
    return stepper.plain_decoder("patching").logits([h[:, i] for h in trace.layer_h])


@dataclass
class PreparedPair:
    """A pair's two clean runs, its metric step and answers, and which run is patched from which."""

    pair: Pair
    base: Example  # the run the cells patch into
    base_text: str
    donor_text: str
    base_trace: Trace
    donor_trace: Trace
    step: int  # the metric step
    answer: int  # the clean run's token there
    other: int  # the corrupted run's token there
    m_clean: float
    m_corrupt: float
    steps: list[int] = field(default_factory=list)  # the swept steps t

    def normalised(self, m: np.ndarray) -> np.ndarray:
        return (m - self.m_corrupt) / (self.m_clean - self.m_corrupt)


def prepare_pair(stepper: Stepper, pair: Pair, cfg: PatchConfig) -> PreparedPair | str:
    """Run both sides clean and find the metric step; a reason string when the pair cannot be traced."""
    clean_ex, corrupt_ex = (example_from_text(stepper.vocab, t) for t in (pair.clean, pair.corrupt))
    clean, corrupt = (stepper.run([ex], record_gates=True, topk=0, stop_at_eos=False) for ex in (clean_ex, corrupt_ex))
    out_clean, out_corrupt = clean.outputs[0].tolist(), corrupt.outputs[0].tolist()
    T = clean_ex.controls[0][1] if clean_ex.controls else 1
    differ = [t for t in range(1, len(out_clean) + 1) if out_clean[t - 1] != out_corrupt[t - 1]]
    if not differ:
        return "both inputs decode to the same output: nothing to trace"
    step = T if T in differ else differ[0]
    answer, other = out_clean[step - 1], out_corrupt[step - 1]
    m_clean = float(metric_of(cfg.metric, logits_at(stepper, clean, step), answer, other)[0])
    m_corrupt = float(metric_of(cfg.metric, logits_at(stepper, corrupt, step), answer, other)[0])
    if not math.isfinite(m_clean - m_corrupt) or abs(m_clean - m_corrupt) < 1e-6:
        return f"the {cfg.metric} metric is the same on both inputs: nothing to normalise by"
    denoise = cfg.direction == "denoise"
    base_ex, base, donor = (corrupt_ex, corrupt, clean) if denoise else (clean_ex, clean, corrupt)
    first = 1 - min(base.n_enc, donor.n_enc) if cfg.encoder else 1
    return PreparedPair(pair, base_ex, pair.corrupt if denoise else pair.clean,
                        pair.clean if denoise else pair.corrupt, base, donor, step, answer, other, m_clean,
                        m_corrupt, list(range(first, step + 1)))


@dataclass(frozen=True)
class Cell:
    hook: str
    layer: int
    t: int
    block: int  # index into the sweep's blocks


def cells_of(prep: PreparedPair, hooks: Sequence[str], layers: Sequence[int], n_blocks: int) -> list[Cell]:
    return [Cell(h, k, t, b) for h in hooks for k in layers for t in prep.steps for b in range(n_blocks)]


def exact_sweep(stepper: Stepper, prep: PreparedPair, cells: Sequence[Cell],
                blocks: Sequence[tuple[str, tuple[int, ...]]], cfg: PatchConfig,
                tick: Callable[[int], None] = lambda n: None) -> np.ndarray:
    """The normalised metric of every cell, each cell a `swap` intervention on its own row of a batch."""
    neuron_sets = [NeuronSet.of(n) for _, n in blocks]
    values = np.empty(len(cells))
    for lo in range(0, len(cells), cfg.chunk):
        chunk = cells[lo : lo + cfg.chunk]
        patches = [CopyFromRun(neuron_sets[c.block], StepRef(c.t), hook=c.hook, layer=c.layer,
                               source_text=prep.donor_text, rows=(i,)) for i, c in enumerate(chunk)]
        trace = stepper.run([prep.base] * len(chunk), patches, max_steps=prep.step, record_gates=False, topk=0,
                            stop_at_eos=False)
        m = metric_of(cfg.metric, logits_at(stepper, trace, prep.step), prep.answer, prep.other)
        values[lo : lo + len(chunk)] = prep.normalised(m.numpy().astype(float))
        tick(len(chunk))
    return values


def attribution_sweep(stepper: Stepper, prep: PreparedPair, cells: Sequence[Cell],
                      blocks: Sequence[tuple[str, tuple[int, ...]]], cfg: PatchConfig) -> np.ndarray:
    """First-order estimates of every cell from one backward pass: m(base) + Σ_block (donor − base)·∂m/∂a."""
    grads = gradient_run(stepper, prep.base, prep.base_trace.outputs[0].tolist(), prep.step,
                         lambda logits: metric_of(cfg.metric, logits, prep.answer, prep.other)[0],
                         hooks=tuple(dict.fromkeys(c.hook for c in cells)))
    m_base = prep.m_corrupt if cfg.direction == "denoise" else prep.m_clean
    membership = torch.zeros(stepper.hidden, len(blocks))
    for b, (_, neurons) in enumerate(blocks):
        membership[list(neurons), b] = 1.0
    base_trace, donor_trace = prep.base_trace, prep.donor_trace
    steps = torch.tensor(prep.steps)
    per_block: dict[tuple[str, int], Tensor] = {}  # (hook, layer) -> [swept steps, blocks]
    for hook, layer in {(c.hook, c.layer) for c in cells}:
        grad = grads[(hook, layer)]
        base = base_trace.for_layer(layer).at_hook(hook)[0, steps + base_trace.n_enc - 1]
        donor = donor_trace.for_layer(layer).at_hook(hook)[0, steps + donor_trace.n_enc - 1]
        per_block[(hook, layer)] = ((donor - base) * grad[steps + base_trace.n_enc - 1]).double() @ membership.double()
    first = prep.steps[0]
    rows = np.fromiter((c.t - first for c in cells), dtype=np.int64, count=len(cells))
    cols = np.fromiter((c.block for c in cells), dtype=np.int64, count=len(cells))
    out = np.empty(len(cells))
    for key, values in per_block.items():  # one gather per hook point and layer, not one per cell
        sel = np.fromiter(((c.hook, c.layer) == key for c in cells), dtype=bool, count=len(cells))
        out[sel] = values.numpy()[rows[sel], cols[sel]]
    return prep.normalised(m_base + out)


def _grid(cells: Sequence[Cell], values: np.ndarray, key: Callable[[Cell], object],
          acc: dict[object, list[float]]) -> None:
    for c, v in zip(cells, values):
        acc.setdefault(key(c), []).append(float(v))


def step_label(prep: PreparedPair, t: int) -> str:
    """Encoder steps by t (t = 0 reads the position token), decoder steps relative to the metric step."""
    if t <= 0:
        return f"t={t}"
    return "T" if t == prep.step else f"T{t - prep.step:+d}"


def run_patching(ckpt: Checkpoint, pairs: Sequence[Pair], cfg: PatchConfig | None = None,
                 progress: Progress | None = None, roles: dict[str, dict[str, list[int]]] | None = None) -> dict:
    """The sweep over every pair: the results document (maps of mean, CI and n per cell, both methods). With
    `roles` (a functions result's) and single-neuron blocks of h, how far each pair's strongest neurons are the
    role sets (`patch_roles`)."""
    cfg = cfg or PatchConfig()
    report = progress or (lambda stage, done, total: None)
    cell, hidden, n_layers = ckpt.config.cell, ckpt.config.hidden, ckpt.config.layers
    cfg.check(cell, hidden, n_layers)
    ckpt.model.require_plain("patching (it remakes each step's logits from the recorded states)")
    check_pairs(ckpt, pairs)
    stepper = Stepper(ckpt.model, ckpt.vocab)
    hooks, layers = cfg.hook_points(cell), cfg.layers or tuple(range(n_layers))
    blocks = cfg.blocks(hidden)
    sweep = _Sweep(stepper, cfg, hooks, layers, blocks)
    sweep.keep_effects = roles is not None and cfg.block == 1 and not cfg.groups and "h" in hooks and cfg.exact
    for i, pair in enumerate(pairs):
        sweep.add(pair, lambda n: report("patched runs", sweep.done_runs, sweep.total_runs))
        report("pairs", i + 1, len(pairs))
    doc = sweep.document(ckpt, pairs)
    if roles is not None:
        from .patch_roles import role_overlap

        if sweep.keep_effects:
            doc["role_overlap"] = role_overlap(sweep.effects, roles, hidden)
        else:
            doc["warnings"].append("the overlap with the roles needs an exact sweep of h in single neurons (block 1)")
    return doc


class _Sweep:
    """The running sums of a sweep over pairs: values per (hook, layer, step label, block)."""

    def __init__(self, stepper: Stepper, cfg: PatchConfig, hooks: Sequence[str], layers: Sequence[int],
                 blocks: Sequence[tuple[str, tuple[int, ...]]]):
        self.stepper, self.cfg, self.hooks, self.layers, self.blocks = stepper, cfg, hooks, layers, blocks
        self.exact: dict[object, list[float]] = {}
        self.attr: dict[object, list[float]] = {}
        self.labels: dict[str, tuple[int, int]] = {}  # label -> its sort key
        self.pairs: list[dict] = []
        self.dropped: list[dict] = []
        self.seconds = {"exact": 0.0, "attribution": 0.0}
        self.done_runs = self.total_runs = 0
        self.keep_effects = False  # keep each pair's single-neuron effects on the top layer's h (role overlap)
        self.effects: list[tuple[str, dict[str, np.ndarray]]] = []

    def add(self, pair: Pair, tick: Callable[[int], None]) -> None:
        prep = prepare_pair(self.stepper, pair, self.cfg)
        if isinstance(prep, str):
            self.dropped.append({"clean": pair.clean, "corrupt": pair.corrupt, "reason": prep})
            return
        cells = cells_of(prep, self.hooks, self.layers, len(self.blocks))
        self.total_runs += len(cells) if self.cfg.exact else 0

        def key(c: Cell) -> tuple:
            label = step_label(prep, c.t)
            self.labels[label] = (0, c.t) if c.t <= 0 else (1, c.t - prep.step)
            return (c.hook, c.layer, label, c.block)

        if self.cfg.exact:
            start = time.perf_counter()

            def counted(n: int) -> None:
                self.done_runs += n
                tick(n)
            values = exact_sweep(self.stepper, prep, cells, self.blocks, self.cfg, counted)
            _grid(cells, values, key, self.exact)
            self.seconds["exact"] += time.perf_counter() - start
            if self.keep_effects:
                self._keep(prep, cells, values)
        if self.cfg.attribution and self.cfg.metric != "lands":
            start = time.perf_counter()
            _grid(cells, attribution_sweep(self.stepper, prep, cells, self.blocks, self.cfg), key, self.attr)
            self.seconds["attribution"] += time.perf_counter() - start
        self.pairs.append({"clean": pair.clean, "corrupt": pair.corrupt, "metric_step": prep.step,
                           "clean_answer": self.stepper.vocab.itos[prep.answer],
                           "corrupt_answer": self.stepper.vocab.itos[prep.other],
                           "metric_clean": prep.m_clean, "metric_corrupt": prep.m_corrupt})

    def _keep(self, prep: PreparedPair, cells: Sequence[Cell], values: np.ndarray) -> None:
        """This pair's effect of each single neuron of the top layer's h at T-1 and T."""
        top = self.stepper.n_layers - 1
        effects: dict[str, np.ndarray] = {}
        for c, v in zip(cells, values):
            label = step_label(prep, c.t)
            if c.hook == "h" and c.layer == top and label in ("T-1", "T"):
                row = effects.setdefault(label, np.full(self.stepper.hidden, np.nan))
                row[c.block] = v if self.cfg.direction == "denoise" else 1.0 - v
        token = self.stepper.vocab.itos[prep.answer]
        self.effects.append((token, {k: np.nan_to_num(v, nan=-np.inf) for k, v in effects.items()}))

    def document(self, ckpt: Checkpoint, pairs: Sequence[Pair]) -> dict:
        labels = sorted(self.labels, key=lambda s: self.labels[s])
        maps = {f"{h}/l{k}": {"hook": h, "layer": k,
                              **({"exact": _stats(self.exact, h, k, labels, len(self.blocks))} if self.exact else {}),
                              **({"attribution": _stats(self.attr, h, k, labels, len(self.blocks))}
                                 if self.attr else {})}
                for h in self.hooks for k in self.layers}
        warnings = [] if self.pairs else ["no pair could be traced: see dropped"]
        if self.cfg.attribution and self.cfg.metric == "lands":
            warnings.append("attribution patching needs a continuous metric: it was skipped for --metric lands")
        return {"kind": "patch", "version": 1, **ckpt.provenance(), "params": asdict(self.cfg),
                "n_pairs": len(self.pairs), "pairs": self.pairs, "dropped": self.dropped, "steps": labels,
                "blocks": [{"label": name, "neurons": list(n)} for name, n in self.blocks], "maps": maps,
                "rank_correlation": self._correlation(), "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
                "warnings": warnings}

    def _correlation(self) -> dict | None:
        keys = [k for k in self.exact if k in self.attr]
        if not keys:
            return None
        from scipy.stats import spearmanr

        x = np.array([np.mean(self.exact[k]) for k in keys])
        y = np.array([np.mean(self.attr[k]) for k in keys])
        if np.ptp(x) == 0 or np.ptp(y) == 0:
            return {"spearman": None, "cells": len(keys)}
        return {"spearman": float(spearmanr(x, y).statistic), "cells": len(keys)}


def _stats(acc: dict[object, list[float]], hook: str, layer: int, labels: Sequence[str], n_blocks: int) -> dict:
    """Mean, 95% CI and n per (step, block) as nested lists (null where a step has no values)."""
    mean: list[list[float | None]] = [[None] * n_blocks for _ in labels]
    lo: list[list[float | None]] = [[None] * n_blocks for _ in labels]
    hi: list[list[float | None]] = [[None] * n_blocks for _ in labels]
    n: list[list[int]] = [[0] * n_blocks for _ in labels]
    for i, label in enumerate(labels):
        for b in range(n_blocks):
            vals = acc.get((hook, layer, label, b))
            if not vals:
                continue
            m, (a, z) = mean_ci(vals)
            mean[i][b], lo[i][b], hi[i][b], n[i][b] = m, a, z, len(vals)
    return {"mean": mean, "lo": lo, "hi": hi, "n": n}
