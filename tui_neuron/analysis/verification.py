"""Stage 3: the paper's manipulations run through the stepper, each beside random neuron sets of the same size.

Every (manipulation, neuron set, position T) is a group of examples; all groups of a token run as a few
large batches (each intervention limited to its group's rows, repeated sources encoded once), so ten
random draws per cell cost about what one did when each group ran alone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from ..model.examples import Example
from ..model.interventions import Intervention, KeepOnly, NeuronSet, RandomInput, SetValue, StepRef
from ..model.stepper import Stepper
from ..training.evaluate import landed
from .recording import Recording
from .roles import MANIPULATIONS, Manipulation
from .stats import rate_json, spread

ROW_BUDGET = 1500  # rows per batched run: enough to amortise Python; small, so rows of one T share a run


@dataclass
class Group:
    """Examples that share one list of interventions and one expected landing shift."""

    examples: list[Example]
    interventions: list[Intervention]
    shift: int = 0


def landing_hits(stepper: Stepper, groups: Sequence[Group], row_budget: int | None = None) -> list[np.ndarray]:
    """For each group, per example: does the control land at T + shift under the group's interventions?"""
    row_budget = row_budget or ROW_BUDGET
    need = [max(e.controls[0][1] for e in g.examples) + max(g.shift, 0) if g.examples else 0 for g in groups]
    order = sorted(range(len(groups)), key=lambda i: need[i])
    out: list[np.ndarray] = [np.zeros(0, dtype=bool)] * len(groups)
    chunk: list[int] = []

    def flush() -> None:
        if not chunk:
            return
        examples: list[Example] = []
        ivs: list[Intervention] = []
        for i in chunk:
            rows = tuple(range(len(examples), len(examples) + len(groups[i].examples)))
            examples += groups[i].examples
            ivs += [_limited(iv, rows) for iv in groups[i].interventions]
        tr = stepper.run(examples, ivs, max_steps=max(need[i] for i in chunk), record_gates=False, topk=0,
                         stop_at_eos=False)
        b = 0
        for i in chunk:
            hits = []
            for e in groups[i].examples:
                tok, T = e.controls[0]
                hits.append(landed(tr.output_ids(b), tok, T + groups[i].shift))
                b += 1
            out[i] = np.array(hits, dtype=bool)
        chunk.clear()

    rows = 0
    for i in order:
        if not groups[i].examples:
            continue
        if rows + len(groups[i].examples) > row_budget:
            flush()
            rows = 0
        chunk.append(i)
        rows += len(groups[i].examples)
    flush()
    return out


def _limited(iv: Intervention, rows: tuple[int, ...]) -> Intervention:
    return replace(iv, rows=rows)


def random_set(hidden: int, size: int, rng: np.random.Generator) -> list[int]:
    return sorted(rng.choice(hidden, size=min(size, hidden), replace=False).tolist())


def by_position(rec: Recording, token_id: int) -> dict[int, list[Example]]:
    """The correctly positioned examples of a token, by T."""
    out: dict[int, list[Example]] = {}
    for e in np.nonzero(rec.landed & (rec.token_ids == token_id))[0]:
        out.setdefault(int(rec.positions[e]), []).append(rec.examples[e])
    return dict(sorted(out.items()))


def named_set_hits(stepper: Stepper, positions: dict[int, dict[int, list[Example]]],
                   sets: dict[str, dict[int, list[int]]], build: Callable[[NeuronSet, int], list[Intervention]],
                   shift: int = 0, min_T: int = 1) -> dict[str, np.ndarray]:
    """Each named set of per-token neurons, built into interventions for that token's examples at every T >= min_T,
    all in one batched pass: name -> did the control land at T + shift, over every example it ran on."""
    groups: list[Group] = []
    names: list[str] = []
    for tid, by_T in positions.items():
        for name, per_token in sets.items():
            for T, exs in by_T.items():
                if T >= min_T:
                    groups.append(Group(exs, build(NeuronSet.of(per_token[tid]), T), shift))
                    names.append(name)
    collected: dict[str, list[np.ndarray]] = {name: [] for name in sets}
    for name, hits in zip(names, landing_hits(stepper, groups)):
        collected[name].append(hits)
    return {name: np.concatenate(h) if h else np.zeros(0, dtype=bool) for name, h in collected.items()}


def _cell(hits_by_T: dict[int, np.ndarray]) -> dict:
    """A rate over all T, and the same per T."""
    allh = np.concatenate(list(hits_by_T.values())) if hits_by_T else np.zeros(0, bool)
    return {**rate_json(int(allh.sum()), len(allh)),
            "by_T": {str(T): rate_json(int(h.sum()), len(h)) for T, h in hits_by_T.items()}}


def verify_token(stepper: Stepper, rec: Recording, token_id: int, sets: dict[str, list[int]],
                 rng: np.random.Generator, draws: int = 10,
                 manipulations: Sequence[Manipulation] = MANIPULATIONS) -> dict[str, dict]:
    """Table 1 for one token: each manipulation with its neuron set and with `draws` random sets of its size.

    A cell holds the set's rate (hits, n, 95% CI, per T) and the random draws' rates, each draw on every
    example, so their spread is the spread of the random control itself.
    """
    H, layer = stepper.hidden, stepper.view_layer
    exs_by_T = by_position(rec, token_id)
    groups: list[Group] = []
    index: list[tuple[str, str, int]] = []  # (manipulation, "set" | draw number, T) per group
    sizes: dict[str, int] = {}
    for m in manipulations:
        neurons = sets.get(m.set_key, [])
        if not neurons:
            continue
        sizes[m.name] = len(neurons)
        choices = [("set", neurons)] + [(str(d), random_set(H, len(neurons), rng)) for d in range(draws)]
        for which, ns in choices:
            for T, exs in exs_by_T.items():
                if T >= m.min_T:
                    groups.append(Group(exs, m.interventions(NeuronSet.of(ns), T, layer), m.shift))
                    index.append((m.name, which, T))
    seed = int(rng.integers(1 << 30))
    for T, exs in exs_by_T.items():
        groups.append(Group(exs, [RandomInput(NeuronSet(None), StepRef(every=True), seed=seed)]))
        index.append(("all: random decoder inputs", "set", T))
        groups.append(Group(exs, []))
        index.append(("none: clean run", "set", T))
    hits = landing_hits(stepper, groups)
    collected: dict[str, dict[str, dict[int, np.ndarray]]] = {}
    for (name, which, T), h in zip(index, hits):
        collected.setdefault(name, {}).setdefault(which, {})[T] = h
    out: dict[str, dict] = {}
    for name, per in collected.items():
        draws_ = [per[w] for w in per if w != "set"]
        out[name] = {"size": sizes.get(name, 0), "set": _cell(per["set"]),
                     "random": _random_cell(draws_) if draws_ else None}
    return out


def _random_cell(draws: list[dict[int, np.ndarray]]) -> dict:
    """Pooled hits over draws (rate = mean over draws), the spread of per-draw rates, and per T."""
    Ts = sorted({T for d in draws for T in d})
    pooled = [np.concatenate([d[T] for T in Ts if T in d]) for d in draws]
    hits, n = sum(int(p.sum()) for p in pooled), sum(len(p) for p in pooled)
    per_draw = [float(p.mean()) if len(p) else float("nan") for p in pooled]
    by_T = {}
    for T in Ts:
        hs = [d[T] for d in draws if T in d]
        by_T[str(T)] = rate_json(sum(int(h.sum()) for h in hs), sum(len(h) for h in hs))
    return {**rate_json(hits, n), "draw_hits": [int(p.sum()) for p in pooled], "draw_n": [len(p) for p in pooled],
            "spread": spread(per_draw), "by_T": by_T}


def aggregate_table(tokens: dict[str, dict]) -> dict[str, dict]:
    """Sum each manipulation's hits and n over tokens (each token with its own neuron sets); draw d of the
    random control pools draw d of every token, so the spread is over whole-table draws."""
    table: dict[str, dict] = {}
    definitions = {m.name: m.definition for m in MANIPULATIONS}
    for entry in tokens.values():
        for name, res in entry.get("verification", {}).items():
            row = table.setdefault(name, {"set": {}, "random": None, "sizes": []})
            for T, r in res["set"]["by_T"].items():
                acc = row["set"].setdefault(T, [0, 0])
                acc[0] += r["hits"]
                acc[1] += r["n"]
            if res.get("random"):
                rnd = row["random"] = row["random"] or {"hits": None, "by_T": {}}
                dh, dn = res["random"]["draw_hits"], res["random"]["draw_n"]
                if rnd["hits"] is None:
                    rnd["hits"], rnd["n"] = [0] * len(dh), [0] * len(dn)
                for d in range(min(len(dh), len(rnd["hits"]))):
                    rnd["hits"][d] += dh[d]
                    rnd["n"][d] += dn[d]
                for T, r in res["random"]["by_T"].items():
                    acc = rnd["by_T"].setdefault(T, [0, 0])
                    acc[0] += r["hits"]
                    acc[1] += r["n"]
            row["sizes"].append(res["size"])
    out = {}
    for name, r in table.items():
        hits, n = sum(h for h, _ in r["set"].values()), sum(k for _, k in r["set"].values())
        entry = {"set": {**rate_json(hits, n), "by_T": {T: rate_json(*hn) for T, hn in sorted(
                     r["set"].items(), key=lambda kv: int(kv[0]))}},
                 "random": None, "mean_size": float(np.mean(r["sizes"])) if r["sizes"] else 0.0,
                 "definition": definitions.get(name, "")}
        if r["random"] is not None:
            rh, rn = r["random"]["hits"], r["random"]["n"]
            entry["random"] = {**rate_json(sum(rh), sum(rn)),
                               "spread": spread([h / k for h, k in zip(rh, rn) if k]),
                               "by_T": {T: rate_json(*hn) for T, hn in sorted(r["random"]["by_T"].items(),
                                                                               key=lambda kv: int(kv[0]))}}
        out[name] = entry
    return out


def section5(stepper: Stepper, rec: Recording, token_id: int, sets: dict[str, list[int]]) -> dict | None:
    """Gates at step T with only the triggering neurons kept in h_{T-1}, vs all of h_{T-1} masked.

    GRU (the paper's Section 5): z over the outputting neurons and r over the storing neurons. LSTM, the
    analogues: the output gate o over the outputting neurons (how much of c reaches h_T) and the forget
    gate f over the storing neurons (how much of their cell state is kept).
    """
    Tr, O, S = sets.get("triggering", []), sets.get("outputting", []), sets.get("storing", [])
    if not Tr or not O or not S:
        return None
    out_gate, store_gate = ("z", "r") if stepper.config.cell == "gru" else ("o", "f")
    exs = [e for T, group in by_position(rec, token_id).items() for e in group]
    if not exs:
        return None
    layer = stepper.view_layer
    ivs: dict[str, Callable[[int], list[Intervention]]] = {
        "with_triggering": lambda T: [KeepOnly(NeuronSet.of(Tr), StepRef(T - 1), layer=layer)],
        "without_triggering": lambda T: [SetValue(NeuronSet(None), StepRef(T - 1), layer=layer)],
        "clean": lambda T: [],
    }
    out = {}
    for key, build in ivs.items():
        a, b = [], []
        for T in sorted({e.controls[0][1] for e in exs}):
            group = [e for e in exs if e.controls[0][1] == T]
            tr = stepper.run(group, build(T), max_steps=T + 1, topk=0, stop_at_eos=False)
            i = tr.index(T)
            a += tr.gates[out_gate][:, i][:, O].mean(1).tolist()
            b += tr.gates[store_gate][:, i][:, S].mean(1).tolist()
        out[key] = {f"{out_gate}_outputting": float(np.mean(a)), f"{store_gate}_storing": float(np.mean(b)),
                    "n": len(a)}
    return out


def aggregate_section5(tokens: dict[str, dict]) -> dict | None:
    rows = [e["section5"] for e in tokens.values() if e.get("section5")]
    if not rows:
        return None
    out = {}
    for key in rows[0]:
        n = sum(r[key]["n"] for r in rows)
        measures = [m for m in rows[0][key] if m != "n"]
        out[key] = {m: sum(r[key][m] * r[key]["n"] for r in rows) / n for m in measures}
        out[key]["n"] = n
    return out
