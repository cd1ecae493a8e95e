"""When an analysis cannot vouch for its answer: a model or a token that positions too few examples, or a cell
with too few examples to read a rate from. The warnings go into the results file, and every face shows them
above the tables (the CLI in its output, the explorer as a notification).

A hypothesis is plausible only when the lower end of its accuracy's 95% interval clears the threshold
(`plausible`), not when the point estimate does.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from .stats import wilson

MIN_ACCURACY = 0.90  # below this share of examples positioned, the roles describe a model that does not position
MIN_CELL_N = 100  # a Table 1 cell (or a curve point) from fewer examples than this is flagged


def plausible(accuracy: float, n: int, threshold: float) -> tuple[bool, tuple[float, float]]:
    """Whether the lower end of the 95% Wilson interval of `accuracy` over `n` held-out samples clears
    `threshold`, and the interval."""
    if n <= 0 or accuracy != accuracy:
        return False, (float("nan"), float("nan"))
    lo, hi = wilson(int(round(accuracy * n)), n)
    return lo >= threshold, (lo, hi)


def positioning_warnings(landed: np.ndarray, token_ids: np.ndarray, itos: list[str]) -> list[str]:
    """The model as a whole, and each control token, positioning below MIN_ACCURACY."""
    out: list[str] = []
    n = len(landed)
    if n == 0:
        return ["no examples were recorded: nothing here can be trusted"]
    overall = float(np.mean(landed))
    if overall < MIN_ACCURACY:
        out.append(f"the model positions only {overall:.1%} of the {n} examples (below {MIN_ACCURACY:.0%}): the "
                   "roles below describe a model that does not do the task; do not read them as its mechanism")
    weak = []
    for tid in dict.fromkeys(token_ids.tolist()):
        mask = token_ids == tid
        acc = float(np.mean(landed[mask]))
        if acc < MIN_ACCURACY:
            weak.append(f"{itos[tid]} {acc:.0%} of {int(mask.sum())}")
    if weak:
        out.append(f"{len(weak)} control token(s) position below {MIN_ACCURACY:.0%}: " + ", ".join(weak[:10])
                   + ("…" if len(weak) > 10 else ""))
    return out


def small_cell_warnings(cells: Iterable[tuple[str, int]], min_n: int = MIN_CELL_N) -> list[str]:
    """Rows whose rate rests on fewer than `min_n` examples."""
    small = [f"{name} (n={n})" for name, n in cells if n < min_n]
    if not small:
        return []
    return [f"{len(small)} row(s) rest on fewer than {min_n} examples, too few for a rate: " + "; ".join(small[:6])
            + ("…" if len(small) > 6 else "")]


def table_warnings(table: dict) -> list[str]:
    """Small cells of a functions table (`table[row]["set"]["n"]`)."""
    return small_cell_warnings((name, int(row.get("set", {}).get("n", 0))) for name, row in table.items())


def results_warnings(data: dict) -> list[str]:
    """The warnings of a results document; for a functions file written before warnings were recorded, the
    ones its accuracy and table show."""
    if "warnings" in data:
        return [str(w) for w in data["warnings"]]
    out = []
    acc = data.get("positioning_accuracy")
    if isinstance(acc, (int, float)) and acc < MIN_ACCURACY:
        out.append(f"the model positions only {acc:.1%} of the {data.get('n_examples', '?')} examples (below "
                   f"{MIN_ACCURACY:.0%}): the roles below describe a model that does not do the task")
    if isinstance(data.get("table"), dict):
        out += table_warnings(data["table"])
    return out
