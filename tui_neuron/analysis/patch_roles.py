"""Does a patching sweep find the paper's roles? The overlap of each pair's strongest single neurons with the
functions results' set for its token, against random sets of the same size.

For each pair and role, the k neurons whose patch moves the metric most at the role's step (storing, counting
and triggering at T−1, outputting at T; k = the role set's size for the pair's clean token) are compared with
that set: the share of them inside it, its mean over pairs with a 95% interval, beside the same share for
random k-sets (which is k/h on average).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from .stats import mean_ci

ROLE_STEPS = {"storing": "T-1", "counting": "T-1", "triggering": "T-1", "outputting": "T"}


def role_overlap(pair_effects: Sequence[tuple[str, Mapping[str, np.ndarray]]],
                 roles: Mapping[str, Mapping[str, Sequence[int]]], hidden: int, draws: int = 200,
                 seed: int = 0) -> dict:
    """`pair_effects`: per pair, its clean token and {step label: [hidden] effect of patching each neuron}."""
    rng = np.random.default_rng(seed)
    out = {}
    for role, label in ROLE_STEPS.items():
        found, chance, sizes = [], [], []
        for token, effects in pair_effects:
            neurons = list(roles.get(role, {}).get(token, ()))
            if not neurons or label not in effects:
                continue
            k = len(neurons)
            top = np.argsort(-effects[label], kind="stable")[:k]
            found.append(len(set(top.tolist()) & set(neurons)) / k)
            random_top = [rng.choice(hidden, k, replace=False) for _ in range(draws)]
            chance.append(float(np.mean([len(set(r.tolist()) & set(neurons)) / k for r in random_top])))
            sizes.append(k)
        if not found:
            out[role] = {"step": label, "pairs": 0}
            continue
        m, ci = mean_ci(found)
        r, rci = mean_ci(chance)
        out[role] = {"step": label, "pairs": len(found), "mean_set_size": float(np.mean(sizes)),
                     "overlap": m, "ci95": list(ci), "random": r, "random_ci95": list(rci)}
    return out
