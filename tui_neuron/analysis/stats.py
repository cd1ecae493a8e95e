"""Confidence intervals and spreads for the verification tables."""

from __future__ import annotations

import math
from collections.abc import Sequence


def wilson(hits: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """The Wilson score interval for a binomial rate (95% by default); (nan, nan) without examples."""
    if n <= 0:
        return (float("nan"), float("nan"))
    p = hits / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # the interval always holds p; rounding must not push an end past it at p = 0 or 1
    return (max(0.0, min(p, centre - half)), min(1.0, max(p, centre + half)))


def spread(values: Sequence[float]) -> dict:
    """Mean, sample standard deviation, min and max of per-draw rates."""
    vals = [v for v in values if v == v]
    if not vals:
        return {"mean": float("nan"), "sd": float("nan"), "min": float("nan"), "max": float("nan"), "draws": 0}
    mean = sum(vals) / len(vals)
    sd = math.sqrt(sum((v - mean) ** 2 for v in vals) / (len(vals) - 1)) if len(vals) > 1 else 0.0
    return {"mean": mean, "sd": sd, "min": min(vals), "max": max(vals), "draws": len(vals)}


def rate_json(hits: int, n: int) -> dict:
    """A rate as results files store it: rate, hits, n and its 95% Wilson interval."""
    lo, hi = wilson(hits, n)
    return {"rate": hits / n if n else float("nan"), "hits": int(hits), "n": int(n), "ci95": [lo, hi]}


def mean_ci(values: Sequence[float], level: float = 0.95) -> tuple[float, tuple[float | None, float | None]]:
    """The mean and its Student-t interval; (None, None) for the interval of a single value."""
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, (None, None)
    from scipy.stats import t as student_t

    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = float(student_t.ppf(0.5 + level / 2, n - 1)) * sd / math.sqrt(n)
    return mean, (mean - half, mean + half)
