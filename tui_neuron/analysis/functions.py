"""The token-positioning paper's three-stage method (Lee et al., arXiv 2303.15072, sections 3-5).

Stage 1 (candidates): linear SVMs on h_t per hypothesis; plausible at >= `threshold` held-out
accuracy; recursive feature elimination picks a generous candidate set.
Stage 2 (filtering): integrated gradients of P(A at T) with respect to h_t, from a function that
takes h_t as its input (captum), averaged over examples; candidates with large attribution stay.
Stage 3 (verification): the paper's Table 1 manipulations through the stepper, each beside the same
number of random neurons.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_selection import RFE
from sklearn.svm import LinearSVC

from ..checkpoint.format import Checkpoint
from ..model.stepper import Stepper
from .attribution import ig_filter, integrated_gradients
from .recording import FIRST_T, Recording
from .roles import MANIPULATIONS, ROLES
from .trust import plausible, positioning_warnings, table_warnings
from .verification import aggregate_section5, aggregate_table, section5, verify_token

Progress = Callable[[str, int, int], None]


@dataclass
class FunctionsConfig:
    threshold: float = 0.95  # a hypothesis is plausible when the lower end of its accuracy's 95% CI clears this
    candidate_fraction: float = 0.2  # RFE keeps this share of the neurons (51 of 256)
    ig_keep: float = 0.5  # keep candidates whose |IG| is in the top half of all neurons
    ig_steps: int = 32
    ig_baseline: float = 0.0
    max_samples: int = 6000  # SVM training samples per hypothesis
    draws: int = 10  # random neuron sets per Table 1 cell
    seed: int = 0


@dataclass
class Probe:
    accuracy: float
    n_train: int
    n_test: int
    plausible: bool
    candidates: list[int] = field(default_factory=list)
    ci95: tuple[float, float] = (float("nan"), float("nan"))

    def to_json(self) -> dict:
        return {"accuracy": self.accuracy, "n_train": self.n_train, "n_test": self.n_test,
                "plausible": self.plausible, "ci95": list(self.ci95), "candidates": self.candidates}


def _svm(seed: int) -> LinearSVC:
    return LinearSVC(C=1.0, max_iter=3000, random_state=seed)


def fit_probe(X: np.ndarray, y: np.ndarray, groups: np.ndarray, cfg: FunctionsConfig, select: bool = True) -> Probe:
    """Linear SVM scored on held-out examples (split by example, not by step), then RFE when plausible
    (and `select`: a probe that only reports its accuracy skips the elimination)."""
    rng = np.random.default_rng(cfg.seed)
    uniq = np.unique(groups)
    test_groups = set(rng.choice(uniq, size=max(1, len(uniq) // 4), replace=False).tolist())
    is_test = np.array([g in test_groups for g in groups])
    tr, te = np.nonzero(~is_test)[0], np.nonzero(is_test)[0]
    if len(tr) > cfg.max_samples:
        tr = rng.choice(tr, cfg.max_samples, replace=False)
    if len(np.unique(y[tr])) < 2 or len(te) == 0:
        return Probe(float("nan"), len(tr), len(te), False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = _svm(cfg.seed).fit(X[tr], y[tr])
        acc = float((clf.predict(X[te]) == y[te]).mean())
        ok, ci = plausible(acc, len(te), cfg.threshold)  # the interval's lower end, not the point estimate
        probe = Probe(acc, len(tr), len(te), ok, ci95=ci)
        if probe.plausible and select:
            k = max(1, int(round(cfg.candidate_fraction * X.shape[1])))
            rfe = RFE(_svm(cfg.seed), n_features_to_select=k, step=0.1).fit(X[tr], y[tr])
            probe.candidates = np.nonzero(rfe.support_)[0].tolist()
    return probe


# ----------------------------------------------------------------------------- stage 1 datasets


def storing_data(rec: Recording, token_id: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """h_t for t in [-1, T-1]: examples whose control token is A vs a same-sized sample of the others."""
    ok = np.nonzero(rec.landed)[0]
    pos = ok[rec.token_ids[ok] == token_id]
    neg = ok[rec.token_ids[ok] != token_id]
    neg = rng.choice(neg, size=min(len(neg), len(pos)), replace=False) if len(neg) else neg
    X, y, g = [], [], []
    for e in np.concatenate([pos, neg]):
        T = rec.positions[e]
        for t in range(FIRST_T, T):
            X.append(rec.h[e, t - FIRST_T])
            y.append(int(rec.token_ids[e] == token_id))
            g.append(e)
    return np.array(X), np.array(y), np.array(g)


def counting_data(rec: Recording, examples: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """h_t for t in [0, T-1] labelled with the steps remaining, T - t."""
    ok = np.nonzero(rec.landed)[0] if examples is None else examples
    X, y, g = [], [], []
    for e in ok:
        T = rec.positions[e]
        for t in range(0, T):
            X.append(rec.h[e, t - FIRST_T])
            y.append(T - t)
            g.append(e)
    return np.array(X), np.array(y), np.array(g)


def triggering_data(rec: Recording, token_id: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """h_{T-1} against h_t for 0 <= t < T-1, for examples of token A."""
    ok = np.nonzero(rec.landed & (rec.token_ids == token_id))[0]
    X, y, g = [], [], []
    for e in ok:
        T = rec.positions[e]
        for t in range(0, T):
            X.append(rec.h[e, t - FIRST_T])
            y.append(int(t == T - 1))
            g.append(e)
    return np.array(X), np.array(y), np.array(g)


def outputting_scores(rec: Recording, ckpt: Checkpoint, token_id: int) -> np.ndarray:
    """Mean contribution h_T[j] * W_A[j] to token A's logit, over correct examples of A."""
    ok = np.nonzero(rec.landed & (rec.token_ids == token_id))[0]
    w = ckpt.model.output.weight.detach()[token_id].numpy()
    if not len(ok):
        return np.zeros(len(w))
    return (rec.at(rec.positions[ok], ok) * w).mean(0)


# ----------------------------------------------------------------------------- figures


def figure2_pca(rec: Recording, storing_union: list[int], tokens: list[int]) -> list[dict]:
    """PCA of the storing neurons' h_t, t in [-1, T-1], for a few tokens (the paper's Figure 2)."""
    if not storing_union:
        return []
    rows, X = [], []
    for tid in tokens:
        for e in np.nonzero(rec.landed & (rec.token_ids == tid))[0][:20]:
            for t in range(FIRST_T, int(rec.positions[e])):
                X.append(rec.h[e, t - FIRST_T, storing_union])
                rows.append({"token": rec.itos[tid], "example": int(e), "t": t})
    if len(X) < 3:
        return []
    pcs = PCA(n_components=2, random_state=0).fit_transform(np.array(X))
    for r, (a, b) in zip(rows, pcs):
        r["pc1"], r["pc2"] = float(a), float(b)
    return rows


def figure3_counting(rec: Recording, counting: list[int]) -> list[dict]:
    """Mean of the counting neurons (each signed to rise with steps remaining) against t, per T (Figure 3)."""
    if not counting:
        return []
    X, y, _ = counting_data(rec)
    if len(X) < 3:
        return []
    corr = np.array([np.corrcoef(X[:, j], y)[0, 1] if X[:, j].std() > 0 else 0.0 for j in counting])
    sign = np.where(corr >= 0, 1.0, -1.0)
    rows = []
    for T in sorted(set(rec.positions[rec.landed].tolist())):
        ex = np.nonzero(rec.landed & (rec.positions == T))[0]
        for t in range(0, T + 1):
            v = rec.h[ex, t - FIRST_T][:, counting] * sign
            rows.append({"T": int(T), "t": t, "mean": float(v.mean())})
    return rows


# ----------------------------------------------------------------------------- the whole method


def shared_counting_probe(rec: Recording, cfg: FunctionsConfig, k_out: int) -> Probe:
    """Counting: one probe shared across tokens (steps remaining is the same clock for every token). Below the
    threshold it still ranks neurons, so the verification can say whether they count."""
    Xc, yc, gc = counting_data(rec)
    probe = fit_probe(Xc, yc, gc, cfg) if len(Xc) else Probe(float("nan"), 0, 0, False)
    if not probe.plausible and len(Xc):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            rfe = RFE(_svm(cfg.seed), n_features_to_select=k_out, step=0.1).fit(Xc[: cfg.max_samples], yc[: cfg.max_samples])
        probe.candidates = np.nonzero(rfe.support_)[0].tolist()
    return probe


def analyze_token(ckpt: Checkpoint, rec: Recording, tid: int, cfg: FunctionsConfig, counting_probe: Probe,
                  stepper: Stepper, rngs: tuple[np.random.Generator, np.random.Generator], k_out: int) -> dict:
    """One token's stages: candidates (stage 1), their integrated-gradient filter (stage 2), verification (3)."""
    rng, rng_controls = rngs
    ok = np.nonzero(rec.landed & (rec.token_ids == tid))[0]
    entry: dict = {"token": rec.itos[tid], "examples": int((rec.token_ids == tid).sum()), "correct": len(ok)}
    if len(ok) < 4:
        entry["skipped"] = "fewer than 4 correctly positioned examples"
        return entry
    probes = {"storing": fit_probe(*storing_data(rec, tid, rng), cfg),
              "triggering": fit_probe(*triggering_data(rec, tid), cfg),
              "counting": counting_probe,
              # the counting hypothesis for this token alone: its accuracy only (the shared probe picks)
              "counting_token": fit_probe(*counting_data(rec, ok), cfg, select=False)}
    ig_prev = integrated_gradients(ckpt, rec, ok, False, cfg.ig_steps, cfg.ig_baseline)
    ig_out = integrated_gradients(ckpt, rec, ok, True, cfg.ig_steps, cfg.ig_baseline)
    top = ckpt.analysis_layer in (None, ckpt.config.layers - 1)
    # h_T·W_A is a contribution to A's logit only on the top layer; below it, IG at T stands in for it
    out_scores = outputting_scores(rec, ckpt, tid) if top else ig_out
    out_cands = np.argsort(-out_scores)[:k_out].tolist()
    stage1 = {r: probes[r].candidates for r in ("storing", "counting", "triggering")}
    stage1["outputting"] = out_cands
    attributions = {"storing": ig_prev, "counting": ig_prev, "triggering": ig_prev, "outputting": ig_out}
    stage2 = {r: ig_filter(stage1[r], attributions[r], cfg.ig_keep) for r in ROLES}
    entry["probes"] = {r: p.to_json() for r, p in probes.items()}
    entry["outputting_contribution"] = {str(j): float(out_scores[j]) for j in out_cands}
    entry["stage1"] = stage1
    entry["ig"] = {"h_T-1": [float(x) for x in ig_prev], "h_T": [float(x) for x in ig_out]}
    entry["neurons"] = stage2
    shared = {"counting_shared": stage1["counting"]}  # counting with the one stage-1 set, unfiltered
    entry["verification"] = verify_token(stepper, rec, tid, {**stage2, **shared}, rng_controls, cfg.draws)
    entry["section5"] = section5(stepper, rec, tid, stage2)
    return entry


def analyze_functions(ckpt: Checkpoint, rec: Recording, cfg: FunctionsConfig | None = None,
                      progress: Progress | None = None) -> dict:
    """All three stages for every token in the recording; returns the results document (JSON-ready)."""
    cfg = cfg or FunctionsConfig()
    progress = progress or (lambda stage, i, n: None)
    rngs = (np.random.default_rng(cfg.seed),  # stage-1 samples
            np.random.default_rng([cfg.seed, 1]))  # random neuron sets: more draws leave the roles as they are
    token_ids = list(dict.fromkeys(rec.token_ids.tolist()))
    stepper = Stepper(ckpt.model, ckpt.vocab, ckpt.analysis_layer)
    k_out = max(1, int(round(cfg.candidate_fraction * ckpt.config.hidden)))
    progress("counting probe", 0, 1)
    counting_probe = shared_counting_probe(rec, cfg, k_out)
    progress("counting probe", 1, 1)
    tokens_out: dict[str, dict] = {}
    for n_done, tid in enumerate(token_ids):
        progress("tokens", n_done, len(token_ids))
        tokens_out[rec.itos[tid]] = analyze_token(ckpt, rec, tid, cfg, counting_probe, stepper, rngs, k_out)
    progress("tokens", len(token_ids), len(token_ids))
    analysed = [e for e in tokens_out.values() if "neurons" in e]
    storing_union = sorted({j for e in analysed for j in e["neurons"]["storing"]})
    counting = list(counting_probe.candidates)  # the shared stage-1 set: one clock for every token
    return {
        "checkpoint": str(ckpt.path),
        "config": cfg.__dict__,
        "n_examples": int(len(rec.landed)),
        "positioning_accuracy": float(rec.landed.mean()),
        "counting_probe": counting_probe.to_json(),
        "counting_candidates": {
            "stage1": list(counting_probe.candidates),
            "note": "stage 1 is one probe shared by all tokens; stage 2 filters it by each token's own "
                    "integrated gradients, so roles.counting (used in verification) is per token"},
        "definitions": {m.name: m.definition for m in MANIPULATIONS},
        "tokens": tokens_out,
        "table": (table := aggregate_table(tokens_out)),
        "warnings": positioning_warnings(rec.landed, rec.token_ids, rec.itos) + table_warnings(table),
        "section5": aggregate_section5(tokens_out),
        "figure2": figure2_pca(rec, storing_union, token_ids[:10]),
        "figure3": figure3_counting(rec, counting),
        "roles": role_summary(tokens_out),
    }


def role_summary(tokens: dict[str, dict]) -> dict[str, dict[str, list[int]]]:
    """role -> token -> the filtered neurons verification used (counting too: its stage-1 candidates are
    shared, its filtered set is each token's own)."""
    roles: dict[str, dict[str, list[int]]] = {r: {} for r in ROLES}
    for word, e in tokens.items():
        for r in ROLES:
            if "neurons" in e and e["neurons"][r]:
                roles[r][word] = e["neurons"][r]
    return roles


PAPER = {
    **{m.name: f for k, f in ((1, "99.9%"), (2, "99.9%"), (3, "99.3%")) for m in MANIPULATIONS
       if m.role.value == "counting" and f"(token {k} later)" in m.name},
    **{m.name: f for k, f in ((1, "99.8%"), (2, "96.4%"), (3, "91.2%"), (4, "84.1%")) for m in MANIPULATIONS
       if m.role.value == "triggering" and f"(token {k} earlier)" in m.name},
    "storing: zero at T-1": "10.7%",
    "outputting: zero at T": "near 0%",
    "outputting: keep only at T": "near 99.9%",
    "all: random decoder inputs": "98.0%",
}


def _pct(r: dict) -> str:
    ci = r.get("ci95")
    return f"{r['rate']:.1%} [{ci[0]:.1%}, {ci[1]:.1%}]" if ci else f"{r['rate']:.1%}"


def format_table(results: dict) -> list[tuple[str, str, str, str, str, str]]:
    """Rows of (manipulation, mean set size, n, rate with the set [95% CI], random mean ± sd over draws
    [min-max], paper)."""
    rows = []
    for name, r in results["table"].items():
        s, rand = r["set"], r["random"]
        if rand and rand["n"]:
            sp = rand.get("spread")
            rand_text = (f"{sp['mean']:.1%} ± {sp['sd']:.1%} ({sp['draws']} draws, {sp['min']:.1%}-{sp['max']:.1%})"
                         if sp else f"{rand['rate']:.1%}")
        else:
            rand_text = "-"
        rows.append((name, f"{r['mean_size']:.0f}" if r["mean_size"] else "-", str(s["n"]),
                     _pct(s) if s["n"] else "-", rand_text, PAPER.get(name, "")))
    return rows


__all__ = ["ROLES", "FunctionsConfig", "analyze_functions", "fit_probe", "format_table", "integrated_gradients"]
