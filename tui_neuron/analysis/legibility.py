"""How legible the four roles are on a model: one number per role that a reader can compare across models,
each beside random neuron sets of the same size, with n and 95% intervals (the recipe study's measure).

- outputting: the smallest top-k set, by the mean contribution h_T·W_A to the token's logit, whose zeroing at T
  stops at least `stop_share` of the tokens; reported as a share of h, with the rate at that size and the rate
  of random sets of that size;
- storing (zero at T-1), counting (k = 1..3, both readings), triggering (k = 1..4) and random decoder inputs:
  the neuron-function method's Table 1 rows (`analyze functions`), each with its random control.

The point: a model on which the roles are spread over half of h can position perfectly and still show no
outputting or storing neurons; this measure says so in one table row per model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np

from ..checkpoint.format import Checkpoint
from ..model.stepper import Stepper
from .curves import dose_response, sizes_for
from .functions import FunctionsConfig, analyze_functions, outputting_scores
from .recording import Recording
from .roles import PRIMARY, Role

Progress = Callable[[str, int, int], None]

# the Table 1 rows the legibility table shows, in its order (each row's random control comes with it)
ROWS = ("storing: zero at T-1",
        *(f"counting: h[T-1] <- h[T-1-{k}] (token {k} later)" for k in (1, 2, 3)),
        *(f"counting: every h[t] <- h[t-{k}] (token {k} later)" for k in (1, 2, 3)),
        *(f"triggering: h[T-1-{k}] <- h[T-1] (token {k} earlier)" for k in (1, 2, 3, 4)),
        "outputting: zero at T", "all: random decoder inputs")


@dataclass
class LegibilityConfig:
    """The one set of defaults for `analyze legibility`."""

    stop_share: float = 0.95  # outputting: the share of tokens its zeroing must stop
    percents: tuple[int, ...] = (2, 5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 60, 70, 80, 90, 100)
    draws: int = 5  # random sets at the outputting size found
    functions: FunctionsConfig = field(default_factory=lambda: FunctionsConfig(draws=5))
    seed: int = 0


def outputting_size(ckpt: Checkpoint, rec: Recording, cfg: LegibilityConfig, progress: Progress) -> dict:
    """The growth curve of the top-k outputting sets (by h_T·W_A) and the smallest that stops `stop_share`."""
    stepper = Stepper(ckpt.model, ckpt.vocab, ckpt.analysis_layer)
    tokens = [t for t in dict.fromkeys(rec.token_ids.tolist()) if int((rec.landed & (rec.token_ids == t)).sum()) >= 4]
    role = Role.OUTPUTTING.value
    orders = {t: {role: np.argsort(-outputting_scores(rec, ckpt, t), kind="stable").tolist()} for t in tokens}
    manipulation = PRIMARY[Role.OUTPUTTING]
    rng = np.random.default_rng([cfg.seed, 2])
    sizes = sizes_for(ckpt.config.hidden, cfg.percents)
    curve = dose_response(stepper, rec, tokens, orders, manipulation, sizes, 0, rng,
                          progress=lambda i, n: progress("outputting sizes", i, n))
    found = next((p for p in curve if p["set"]["n"] and p["set"]["rate"] <= 1 - cfg.stop_share), None)
    at_size = None
    if found is not None:
        at_size = dose_response(stepper, rec, tokens, orders, manipulation, [found["neurons"]], cfg.draws, rng)[0]
    return {"manipulation": manipulation.name, "order": "mean h_T·W_A per token", "stop_share": cfg.stop_share,
            "curve": [{"neurons": p["neurons"], "percent": p["percent"], "set": p["set"]} for p in curve],
            "smallest": None if at_size is None else {
                "neurons": at_size["neurons"], "share_of_h": at_size["neurons"] / ckpt.config.hidden,
                "set": at_size["set"], "random": at_size["random"]}}


def run_legibility(ckpt: Checkpoint, rec: Recording, cfg: LegibilityConfig | None = None,
                   progress: Progress | None = None) -> dict:
    """The legibility document: the functions table's rows and the outputting size, with warnings."""
    cfg = cfg or LegibilityConfig()
    report = progress or (lambda stage, i, n: None)
    functions = analyze_functions(ckpt, rec, cfg.functions, report)
    table = functions["table"]
    return {"kind": "legibility", "version": 1, **ckpt.provenance(), "params": asdict(cfg),
            "n_examples": int(len(rec.landed)), "positioning_accuracy": float(np.mean(rec.landed)),
            "tokens": [t for t, e in functions["tokens"].items() if "neurons" in e],
            "rows": {name: table[name] for name in ROWS if name in table},
            "outputting_size": outputting_size(ckpt, rec, cfg, report),
            "warnings": functions["warnings"]}


def _rate(r: dict | None) -> str:
    if not r or not r.get("n"):
        return "-"
    lo, hi = r.get("ci95", [float("nan")] * 2)
    return f"{r['rate']:.1%} [{lo:.1%}, {hi:.1%}]"


def legibility_rows(res: dict) -> list[tuple[str, str, str, str, str]]:
    """(role, measure, n, the set's rate [CI], random sets' rate [CI]) per row, the outputting size first."""
    rows = []
    size = res["outputting_size"]["smallest"]
    share = f"{res['outputting_size']['stop_share']:.0%}"
    if size is None:
        rows.append(("outputting", f"smallest top-k stopping {share}: none up to all of h", "-", "-", "-"))
    else:
        rows.append(("outputting", f"smallest top-k stopping {share}: {size['neurons']} neurons "
                     f"({size['share_of_h']:.0%} of h)", str(size["set"]["n"]), _rate(size["set"]),
                     f"{size['random']['mean']:.1%} ± {size['random']['sd']:.1%} (sd over draws)"))
    for name, row in res["rows"].items():
        rows.append((name.split(":")[0], name.split(": ", 1)[-1], str(row["set"]["n"]), _rate(row["set"]),
                     _rate(row.get("random"))))
    return rows
