"""The cheap neuron rankers NeuroX has beside its probes: probeless ranking by the difference of class means
(Antverg & Belinkov), and correlation clustering, which finds redundant neurons and keeps one of each group.

Neither trains anything, so both answer in a second where the elastic-net ranking takes minutes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import ParameterError


def probeless_ranking(X: np.ndarray, y: np.ndarray) -> tuple[list[int], np.ndarray]:
    """Neurons by Σ over class pairs of |mean_a − mean_b| (largest first), and those scores."""
    classes = [c for c in np.unique(y)]
    if len(classes) < 2:
        raise ParameterError("hypothesis", "{param}: the states hold one class only; nothing to tell apart")
    means = np.stack([X[y == c].mean(axis=0) for c in classes])  # [classes, H]
    # Σ_{a<b} |m_a − m_b| per neuron, from the sorted means: each value's rank times it, minus the rest
    s = np.sort(means, axis=0)
    k = np.arange(len(classes))[:, None]
    scores = ((2 * k - len(classes) + 1) * s).sum(axis=0)
    return np.argsort(-scores, kind="stable").tolist(), scores


def correlation_clusters(X: np.ndarray, threshold: float = 0.3) -> tuple[list[list[int]], list[int]]:
    """Groups of neurons whose |correlation| is above 1 − threshold (average linkage on 1 − |r|), and one
    representative each (the neuron closest to the rest of its group). Constant neurons form their own group."""
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import squareform

    if not 0 < threshold < 1:
        raise ParameterError("threshold", "{param} must be in (0, 1)")
    if X.shape[0] < 3:
        raise ParameterError("sentences", "{param}: too few states to correlate (need at least 3 tokens)")
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.corrcoef(X, rowvar=False)
    r = np.nan_to_num(r, nan=0.0)
    np.fill_diagonal(r, 1.0)
    dist = np.clip(1.0 - np.abs(r), 0.0, None)
    np.fill_diagonal(dist, 0.0)
    labels = fcluster(linkage(squareform(dist, checks=False), method="average"), t=threshold, criterion="distance")
    clusters: dict[int, list[int]] = {}
    for neuron, label in enumerate(labels.tolist()):
        clusters.setdefault(label, []).append(neuron)
    groups = sorted(clusters.values(), key=lambda g: (-len(g), g[0]))
    return groups, [_representative(g, dist) for g in groups]


def _representative(group: Sequence[int], dist: np.ndarray) -> int:
    if len(group) == 1:
        return group[0]
    sub = dist[np.ix_(group, group)]
    return int(group[int(np.argmin(sub.sum(axis=1)))])
