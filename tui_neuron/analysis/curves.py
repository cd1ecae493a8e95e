"""Dose-response curves: each role's manipulation on the top k neurons by integrated-gradient importance,
as k grows, beside random sets of the same size (a band over draws).

A single Table 1 point says a set matters; the curve says how specific the role is (how far the set's
line lies from the random band) and how many neurons it takes (where the line falls).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace

import numpy as np

from ..checkpoint.format import Checkpoint
from ..model.interventions import Intervention, NeuronSet
from ..model.stepper import Stepper
from .attribution import integrated_gradients
from .recording import Recording
from .roles import PRIMARY, ROLES, Manipulation, Role
from .stats import rate_json, spread
from .trust import positioning_warnings, small_cell_warnings
from .verification import by_position, named_set_hits, random_set

Progress = Callable[[str, int, int], None]


@dataclass
class CurvesConfig:
    """The one set of defaults for `analyze curves`."""

    percents: tuple[int, ...] = (2, 5, 10, 15, 20, 30, 50)
    draws: int = 10
    roles: tuple[str, ...] = ROLES
    ig_steps: int = 32
    min_examples: int = 4
    seed: int = 0
    on_cell: bool = False  # LSTM: manipulate the cell state c instead of h


def ig_orders(ckpt: Checkpoint, rec: Recording, token_id: int, ig_steps: int) -> dict[str, list[int]]:
    """Neurons by |mean IG| of P(token at T): w.r.t. h_{T-1} for storing, counting and triggering, h_T for
    outputting (the steps each role's manipulation writes)."""
    ok = np.nonzero(rec.landed & (rec.token_ids == token_id))[0]
    prev = integrated_gradients(ckpt, rec, ok, False, ig_steps)
    at_T = integrated_gradients(ckpt, rec, ok, True, ig_steps)
    order_prev = np.argsort(-np.abs(prev), kind="stable").tolist()
    order_T = np.argsort(-np.abs(at_T), kind="stable").tolist()
    return {r: (order_T if r == Role.OUTPUTTING.value else order_prev) for r in ROLES}


def sizes_for(hidden: int, percents: Sequence[int]) -> list[int]:
    return sorted({max(1, int(round(hidden * p / 100))) for p in percents})


def dose_response(stepper: Stepper, rec: Recording, tokens: Sequence[int], orders: dict[int, dict[str, list[int]]],
                  manipulation: Manipulation, sizes: Sequence[int], draws: int, rng: np.random.Generator,
                  on_cell: bool = False, progress: Callable[[int, int], None] | None = None) -> list[dict]:
    """Rates of one manipulation with the top-k neurons of each token's order and with `draws` random k-sets."""
    H, layer = stepper.hidden, stepper.view_layer
    positions = {tid: by_position(rec, tid) for tid in tokens}

    def build(ns: NeuronSet, T: int) -> list[Intervention]:
        ivs = manipulation.interventions(ns, T, layer)
        return [replace(iv, hook="c") for iv in ivs] if on_cell else ivs

    rows = []
    for i, k in enumerate(sizes):
        sets: dict[str, dict[int, list[int]]] = {"set": {}, **{str(d): {} for d in range(draws)}}
        for tid in tokens:
            sets["set"][tid] = orders[tid][manipulation.role.value][:k]
            for d in range(draws):
                sets[str(d)][tid] = random_set(H, k, rng)
        hits = named_set_hits(stepper, positions, sets, build, manipulation.shift, manipulation.min_T)
        per_draw = [float(hits[str(d)].mean()) if len(hits[str(d)]) else float("nan") for d in range(draws)]
        rows.append({"neurons": k, "percent": 100 * k / H, "set": rate_json(int(hits["set"].sum()), len(hits["set"])),
                     "random": spread(per_draw)})
        if progress:
            progress(i + 1, len(sizes))
    return rows


def run_curves(ckpt: Checkpoint, rec: Recording, cfg: CurvesConfig | None = None,
               progress: Progress | None = None) -> dict:
    """Every role's curve (its PRIMARY manipulation) over the recording's tokens."""
    cfg = cfg or CurvesConfig()
    report = progress or (lambda stage, i, n: None)
    rng = np.random.default_rng(cfg.seed)
    stepper = Stepper(ckpt.model, ckpt.vocab, ckpt.analysis_layer)
    token_ids = [t for t in dict.fromkeys(rec.token_ids.tolist())
                 if int((rec.landed & (rec.token_ids == t)).sum()) >= cfg.min_examples]
    orders = {}
    for i, tid in enumerate(token_ids):
        report("integrated gradients", i, len(token_ids))
        orders[tid] = ig_orders(ckpt, rec, tid, cfg.ig_steps)
    report("integrated gradients", len(token_ids), len(token_ids))
    sizes = sizes_for(ckpt.config.hidden, cfg.percents)
    curves = {}
    for role in cfg.roles:
        m = PRIMARY[Role(role)]

        def role_progress(i: int, n: int, role: str = role) -> None:
            report(f"curve: {role}", i, n)
        curves[role] = {"manipulation": m.name, "definition": m.definition,
                        "points": dose_response(stepper, rec, token_ids, orders, m, sizes, cfg.draws, rng,
                                                cfg.on_cell, role_progress)}
    return {"kind": "curves", "version": 1, **ckpt.provenance(), "params": asdict(cfg),
            "state": "c" if cfg.on_cell else "h", "tokens": [rec.itos[t] for t in token_ids],
            "n_examples": int(sum(int((rec.landed & (rec.token_ids == t)).sum()) for t in token_ids)),
            "hidden": ckpt.config.hidden, "order": "|mean integrated gradient| per token", "curves": curves,
            "warnings": positioning_warnings(rec.landed, rec.token_ids, rec.itos)
            + small_cell_warnings([("the curves", int(sum(int((rec.landed & (rec.token_ids == t)).sum())
                                                              for t in token_ids)))])}


def curves_csv_rows(res: dict) -> list[dict]:
    rows = []
    for role, c in res["curves"].items():
        for p in c["points"]:
            lo, hi = p["set"]["ci95"]
            rows.append({"role": role, "neurons": p["neurons"], "percent": round(p["percent"], 2),
                         "set_rate": p["set"]["rate"], "set_ci_low": lo, "set_ci_high": hi, "n": p["set"]["n"],
                         "random_mean": p["random"]["mean"], "random_sd": p["random"]["sd"],
                         "random_min": p["random"]["min"], "random_max": p["random"]["max"],
                         "draws": p["random"]["draws"]})
    return rows


def plot_curves(res: dict, width: int = 100, height: int = 30, color: bool = True) -> str:
    """A plotext figure: one panel per role, the set's line beside the random band's mean, min and max
    (plain characters without `color`, for files and the README)."""
    import plotext as plt

    roles = list(res["curves"])
    plt.clear_figure()
    cols = 2 if len(roles) > 1 else 1
    rows = (len(roles) + cols - 1) // cols
    plt.subplots(rows, cols)
    plt.plotsize(width, height)
    for i, role in enumerate(roles):
        plt.subplot(i // cols + 1, i % cols + 1)
        pts = res["curves"][role]["points"]
        x = [p["neurons"] for p in pts]
        plt.plot(x, [100 * p["set"]["rate"] for p in pts], label=f"{role} (IG order)", marker="braille")
        plt.plot(x, [100 * p["random"]["mean"] for p in pts], label="random mean", marker="+")
        plt.plot(x, [100 * p["random"]["min"] for p in pts], label="random min-max", marker="·", color="gray")
        plt.plot(x, [100 * p["random"]["max"] for p in pts], marker="·", color="gray")
        plt.ylim(0, 100)
        plt.xticks(x)
        plt.title(res["curves"][role]["manipulation"])
        plt.xlabel("neurons manipulated")
        plt.ylabel("% success")
    out = plt.build()
    plt.clear_figure()
    return out if color else re.sub(r"\x1b\[[0-9;]*m", "", out)
