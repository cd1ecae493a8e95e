"""Pattern search across a corpus (LSTMVis's match view): where do the selected neurons do this?

A place is `window` consecutive steps of one sequence; a neuron is on at a step when its value is
above the threshold (below it with `below`). A place matches when at least `min_share` of its
(neuron, step) cells are on; places are ranked by that share, then by the mean margin beyond the
threshold, and overlapping places keep only the better one. The value distribution of each selected
neuron over every state searched is returned as a histogram, to choose the threshold from.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Place:
    sequence: int
    start: int  # first step (index into the sequence)
    share: float  # share of (neuron, step) cells on
    margin: float  # mean signed distance beyond the threshold (positive: on)


def find_places(sequences: Sequence[np.ndarray], threshold: float, below: bool = False, window: int = 3,
                min_share: float = 1.0) -> list[Place]:
    """Every non-overlapping matching place, best first. `sequences`: each [steps, selected neurons]."""
    found: list[Place] = []
    for i, values in enumerate(sequences):
        if len(values) < window:
            continue
        margin = (threshold - values) if below else (values - threshold)  # [steps, k]
        on = margin > 0
        # sliding sums over `window` steps, all neurons at once
        kernel = np.ones(window)
        on_count = np.convolve(on.sum(1).astype(float), kernel, "valid")
        margin_sum = np.convolve(margin.sum(1), kernel, "valid")
        cells = window * values.shape[1]
        share, mean_margin = on_count / cells, margin_sum / cells
        candidates = np.nonzero(share >= min_share - 1e-12)[0]
        order = candidates[np.lexsort((-mean_margin[candidates], -share[candidates]))]
        taken = np.zeros(len(values), dtype=bool)
        for s in order:
            if not taken[s : s + window].any():
                taken[s : s + window] = True
                found.append(Place(i, int(s), float(share[s]), float(mean_margin[s])))
    found.sort(key=lambda p: (-p.share, -p.margin, p.sequence, p.start))
    return found


def histograms(values: np.ndarray, neurons: Sequence[int], bins: int = 20) -> dict[str, dict]:
    """Each selected neuron's value distribution over all states (`values` [states, selected neurons])."""
    out = {}
    for j, n in enumerate(neurons):
        column = values[:, j]
        lo, hi = float(column.min()), float(column.max())
        if hi <= lo:
            hi = lo + 1e-6
        counts, edges = np.histogram(column, bins=bins, range=(lo, hi))
        out[str(n)] = {"edges": [round(float(e), 6) for e in edges], "counts": counts.tolist(),
                       "mean": round(float(column.mean()), 6),
                       "quantiles": {str(q): round(float(np.quantile(column, q / 100)), 6) for q in (5, 25, 50, 75, 95)}}
    return out


def histogram_text(hist: dict, threshold: float, width: int = 30) -> list[str]:
    """A text histogram (one row a bin) with the threshold's bin marked: for the CLI and the explorer."""
    edges, counts = hist["edges"], hist["counts"]
    peak = max(counts) or 1
    rows = []
    for lo, hi, c in zip(edges, edges[1:], counts):
        mark = "◀ threshold" if lo <= threshold < hi else ""
        rows.append(f"{lo:+.2f}..{hi:+.2f} {'█' * round(c / peak * width):<{width}} {c:>6} {mark}".rstrip())
    return rows


def marked_tokens(match: dict, width: int = 12) -> str:
    """The tokens around a match, the matched span in [brackets]."""
    toks, s, e = match["tokens"], match["start"], match["end"]
    left = toks[max(0, s - width) : s]
    return " ".join([*left, "[", *toks[s:e], "]", *toks[e : e + width]]).replace("[ ", "[").replace(" ]", "]")
