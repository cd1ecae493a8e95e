"""The storing question: zeroing the storing sets at T-1 leaves far more accuracy than the paper's 10.7%. Why?

Three measurements, each beside random sets of the same size:
1. Sets grown in order of importance until accuracy falls below a threshold, for two orders: integrated
   gradients at T-1 only (the pipeline's stage 2), and integrated gradients over every step t in [-1, T-1]
   (a neuron that holds the token's identity throughout, as the paper defines storing).
2. Redundancy: two disjoint sets of the same size (ranks 1..k and k+1..2k of each order), zeroed
   separately and together. If each alone leaves the token in place and both together remove it, identity
   is stored redundantly.
3. For an LSTM, the same with the cell state c zeroed, and with h and c zeroed together.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch

from ..checkpoint.format import Checkpoint
from ..errors import ParameterError, UserError
from ..model.cell import LayerWeights
from ..model.cell import step as cell_step
from ..model.interventions import Intervention, NeuronSet, SetValue, StepRef
from ..model.stepper import Stepper
from .attribution import integrated_gradients
from .recording import FIRST_T, Recording
from .stats import rate_json, spread
from .trust import positioning_warnings
from .verification import by_position, named_set_hits, random_set

Progress = Callable[[str, int, int], None]


@dataclass
class StoringConfig:
    """The one set of defaults for `analyze storing`."""

    grow_step: int = 16  # neurons added per point of the growth curve
    threshold: float = 0.2  # a set "removes" the token once accuracy is below this
    redundancy_share: float = 0.1  # k for the two disjoint sets, as a share of the hidden size
    draws: int = 10
    ig_steps: int = 16
    min_examples: int = 4
    seed: int = 0


def _inputs(ckpt: Checkpoint, rec: Recording, e: int, t: int, T: int) -> tuple[list[str], list[int]]:
    """The (part, token id) the clean run read at steps t+1..T for example e."""
    vocab = ckpt.vocab
    enc = rec.examples[e].encoder_ids(vocab)
    out = []
    for s in range(t + 1, T + 1):
        if s <= 0:
            out.append(("encoder", enc[len(enc) - 1 + s]))
        elif s == 1:
            out.append(("decoder", vocab.bos_id))
        else:
            out.append(("decoder", int(rec.outputs[e, s - 2])))
    return [p for p, _ in out], [i for _, i in out]


def multi_step_ig(ckpt: Checkpoint, rec: Recording, examples: np.ndarray, ig_steps: int) -> np.ndarray:
    """|mean IG| of P(token at T) w.r.t. h_t, averaged over t in [-1, T-1] (one-layer models).

    P is a function of h_t alone: the clean inputs of steps t+1..T are replayed through the cell math
    (c_t held at its recorded value in an LSTM).
    """
    from captum.attr import IntegratedGradients

    if ckpt.config.layers != 1:
        raise UserError("the multi-step storing order needs a one-layer model; on a deeper model, run the curves with a layer")
    weights = ckpt.model.state_dict()
    w = {part: LayerWeights.of(weights, part, 0) for part in ("encoder", "decoder")}
    emb = {"encoder": ckpt.model.source_embedding.weight.detach(), "decoder": ckpt.model.target_embedding.weight.detach()}
    cell = ckpt.config.cell
    H = ckpt.config.hidden
    total, count = np.zeros(H), 0
    for T in sorted(set(rec.positions[examples].tolist())):
        group = examples[rec.positions[examples] == T]
        token = torch.tensor(rec.token_ids[group])
        for t in range(FIRST_T, T):
            parts, _ = _inputs(ckpt, rec, int(group[0]), t, T)
            ids = torch.tensor([_inputs(ckpt, rec, int(e), t, T)[1] for e in group])
            h = torch.tensor(rec.at(t, group), dtype=torch.float32)
            c = torch.tensor(rec.at(t, group, rec.gates["c"]), dtype=torch.float32) if cell == "lstm" else None

            def prob(hh, ids_, tok, cc=None, parts=parts):
                for j, part in enumerate(parts):
                    hh, cc, _ = cell_step(cell, w[part], w[part].input_projection(emb[part][ids_[:, j]]), hh, cc)
                return torch.softmax(ckpt.model.output(hh), -1).gather(1, tok[:, None])[:, 0]

            extra = (ids, token) + ((c,) if c is not None else ())
            attr = IntegratedGradients(prob).attribute(h, baselines=torch.zeros_like(h), additional_forward_args=extra,
                                                       n_steps=ig_steps, internal_batch_size=4096)
            total += np.abs(attr.detach().mean(0).numpy()) * len(group)
            count += len(group)
    return total / max(count, 1)


def _zero_at_T_minus_1(ns: NeuronSet, T: int, states: str, layer: int | None) -> list[Intervention]:
    ivs: list[Intervention] = []
    if "h" in states:
        ivs.append(SetValue(ns, StepRef(T - 1), layer=layer))
    if "c" in states:
        ivs.append(SetValue(ns, StepRef(T - 1), hook="c", layer=layer))
    return ivs


def _rates(stepper: Stepper, rec: Recording, tokens: Sequence[int], sets: dict[str, dict[int, list[int]]],
           states: str) -> dict[str, dict]:
    """Zero at T-1 each named per-token set; the rate each leaves (the token still at T)."""
    positions = {tid: by_position(rec, tid) for tid in tokens}
    hits = named_set_hits(stepper, positions, sets,
                          lambda ns, T: _zero_at_T_minus_1(ns, T, states, stepper.view_layer))
    return {name: rate_json(int(h.sum()), len(h)) for name, h in hits.items()}


def run_storing(ckpt: Checkpoint, rec: Recording, cfg: StoringConfig | None = None,
                progress: Progress | None = None) -> dict:
    cfg = cfg or StoringConfig()
    report = progress or (lambda stage, i, n: None)
    rng = np.random.default_rng(cfg.seed)
    H = ckpt.config.hidden
    stepper = Stepper(ckpt.model, ckpt.vocab, ckpt.analysis_layer)
    tokens = [t for t in dict.fromkeys(rec.token_ids.tolist())
              if int((rec.landed & (rec.token_ids == t)).sum()) >= cfg.min_examples]
    if not tokens:
        raise ParameterError("per_cell", f"no control token has {cfg.min_examples} correctly positioned examples; "
                             "raise {param}")
    orders: dict[str, dict[int, list[int]]] = {"IG at T-1": {}, "IG over t in [-1, T-1]": {}}
    for i, tid in enumerate(tokens):
        report("integrated gradients", i, len(tokens))
        ok = np.nonzero(rec.landed & (rec.token_ids == tid))[0]
        single = integrated_gradients(ckpt, rec, ok, False, cfg.ig_steps)
        orders["IG at T-1"][tid] = np.argsort(-np.abs(single), kind="stable").tolist()
        multi = multi_step_ig(ckpt, rec, ok, cfg.ig_steps)
        orders["IG over t in [-1, T-1]"][tid] = np.argsort(-multi, kind="stable").tolist()
    report("integrated gradients", len(tokens), len(tokens))
    state_sets = ["h"] + (["c", "h+c"] if ckpt.config.cell == "lstm" else [])
    sizes = list(range(cfg.grow_step, H + 1, cfg.grow_step))
    if sizes[-1] != H:
        sizes.append(H)
    results: dict = {}
    for states in state_sets:
        growth = []
        for i, k in enumerate(sizes):
            report(f"growth ({states})", i, len(sizes))
            sets = {name: {tid: order[tid][:k] for tid in tokens} for name, order in orders.items()}
            for d in range(cfg.draws):
                sets[f"random {d}"] = {tid: random_set(H, k, rng) for tid in tokens}
            rates = _rates(stepper, rec, tokens, sets, states)
            growth.append({"neurons": k, **{name: rates[name] for name in orders},
                           "random": spread([rates[f"random {d}"]["rate"] for d in range(cfg.draws)])})
        report(f"growth ({states})", len(sizes), len(sizes))
        results[states] = {"growth": growth, "below_threshold": _first_below(growth, list(orders), cfg.threshold)}
        k = max(1, int(round(cfg.redundancy_share * H)))
        pairs: dict[str, dict[int, list[int]]] = {}
        for name, order in orders.items():
            pairs[f"{name}|A: ranks 1..k"] = {t: order[t][:k] for t in tokens}
            pairs[f"{name}|B: ranks k+1..2k"] = {t: order[t][k : 2 * k] for t in tokens}
            pairs[f"{name}|A and B together"] = {t: order[t][: 2 * k] for t in tokens}
        for d in range(cfg.draws):
            pairs[f"random 2k {d}"] = {t: random_set(H, 2 * k, rng) for t in tokens}
        red = _rates(stepper, rec, tokens, pairs, states)
        redundancy: dict = {"k": k, "random 2k": spread([red[f"random 2k {d}"]["rate"] for d in range(cfg.draws)])}
        for name in orders:
            redundancy[name] = {part: red[f"{name}|{part}"]
                                for part in ("A: ranks 1..k", "B: ranks k+1..2k", "A and B together")}
        results[states]["redundancy"] = redundancy
    return {"kind": "storing", "version": 1, **ckpt.provenance(), "params": asdict(cfg),
            "tokens": [rec.itos[t] for t in tokens], "hidden": H,
            "n_examples": int(sum(int((rec.landed & (rec.token_ids == t)).sum()) for t in tokens)),
            "manipulation": "zero the set at T-1 (h, or c, or both); success: the token still lands at T",
            "states": results, "conclusion": conclusion(results, cfg),
            "warnings": positioning_warnings(rec.landed, rec.token_ids, rec.itos)}


def _first_below(growth: list[dict], orders: list[str], threshold: float) -> dict:
    """For each order (and the random mean), the first set size whose accuracy is below the threshold."""
    out: dict = {}
    for name in orders + ["random"]:
        def rate_of(p: dict, name: str = name) -> float:
            return p[name]["mean"] if name == "random" else p[name]["rate"]
        first = next((p for p in growth if rate_of(p) < threshold), None)
        out[name] = None if first is None else {"neurons": first["neurons"], "rate": rate_of(first),
                                                "random_at_that_size": first["random"]}
    return out


def conclusion(results: dict, cfg: StoringConfig) -> list[str]:
    """Plain sentences that state what the numbers say (the README quotes them)."""
    lines = []
    for states, r in results.items():
        rm = r["below_threshold"]
        for name in ("IG at T-1", "IG over t in [-1, T-1]"):
            got = rm.get(name)
            if got is None:
                lines.append(f"[{states}] {name}: no set size brings accuracy below {cfg.threshold:.0%}.")
            else:
                rnd = got["random_at_that_size"]
                lines.append(f"[{states}] {name}: {got['neurons']} neurons bring accuracy to {got['rate']:.1%} "
                             f"(random sets of that size: {rnd['mean']:.1%} ± {rnd['sd']:.1%}).")
        red = r["redundancy"]
        for name in ("IG at T-1", "IG over t in [-1, T-1]"):
            sets = red[name]
            a, b = sets["A: ranks 1..k"]["rate"], sets["B: ranks k+1..2k"]["rate"]
            ab = sets["A and B together"]["rate"]
            redundant = min(a, b) > 0.5 and ab < 0.5 * min(a, b)
            lines.append(f"[{states}] {name}, k={red['k']}: A (ranks 1..k) alone {a:.1%}, B (ranks k+1..2k) alone "
                         f"{b:.1%}, together {ab:.1%}, random 2k {red['random 2k']['mean']:.1%} — "
                         + ("identity is stored redundantly (each set alone leaves the token, together they remove "
                            "it)." if redundant else "no clear redundancy between the two sets."))
    return lines
