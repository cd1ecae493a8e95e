"""NeuroX's analyses (Dalvi et al., AAAI 2019): elastic-net probes, neuron ranking, masking, ablation,
cross-model correlation and top words.

The elastic net is solved to a convergence tolerance (L-BFGS-B on the exact split W = W⁺ − W⁻, stopped by
the projected gradient), so that a ranking is a property of the data and the penalty, not of where an
optimiser stopped. Two objectives (mean cross-entropy plus):

- ``squared`` (default): l1·|W|₁ + l2·|W|₂², the usual elastic net; equal to scikit-learn's
  ``LogisticRegression(penalty="elasticnet")`` at ``C = 1/(n·(l1 + 2·l2))``, ``l1_ratio = l1/(l1 + 2·l2)``.
- ``neurox``: l1·|W|₁ + l2·|W|₂ (the plain Frobenius norm), NeuroX's ``linear_probe`` objective.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score

from ..checkpoint.format import Checkpoint
from ..model.examples import Example

Objective = Literal["squared", "neurox"]
OBJECTIVES: tuple[str, ...] = ("squared", "neurox")


@dataclass
class ElasticNetProbe:
    """A multinomial logistic regression with scikit-learn-like attributes and its convergence record."""

    coef_: np.ndarray  # [C,H]
    intercept_: np.ndarray  # [C]
    classes_: np.ndarray
    converged: bool = True
    iterations: int = 0
    objective: float = float("nan")

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        return X @ self.coef_.T + self.intercept_

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.classes_[self.decision_function(X).argmax(1)]


def _penalised_loss(Xt, Y, l1: float, l2: float, objective: str):
    """The split of the parameter vector into W⁺, W⁻, b, and the penalised cross-entropy with its gradient."""
    import torch

    n, H = Xt.shape
    K = Y.shape[1]
    m = K * H

    def split(v: np.ndarray):
        t = torch.as_tensor(v)
        return t[:m].view(K, H), t[m : 2 * m].view(K, H), t[2 * m :]

    def value_and_grad(v: np.ndarray) -> tuple[float, np.ndarray]:
        Wp, Wm, b = split(v)
        W = Wp - Wm
        logits = Xt @ W.T + b
        p = torch.softmax(logits, 1)
        loss = float(torch.logsumexp(logits, 1).mean() - (logits * Y).sum(1).mean()) + l1 * float((Wp + Wm).sum())
        gW = (p - Y).T @ Xt / n
        if objective == "squared":
            loss += l2 * float((W * W).sum())
            gW = gW + 2 * l2 * W
        else:
            norm = float(torch.linalg.vector_norm(W))
            loss += l2 * norm
            gW = gW + (l2 / norm) * W if norm > 0 else gW
        return loss, torch.cat([(gW + l1).ravel(), (l1 - gW).ravel(), (p - Y).mean(0)]).numpy()

    return split, value_and_grad


def elastic_net(X: np.ndarray, y: np.ndarray, l1: float = 1e-5, l2: float = 1e-5, seed: int = 0,
                objective: Objective = "squared", tol: float = 1e-6, max_iter: int = 20000,
                progress: Callable[[int, int], None] | None = None,
                start: ElasticNetProbe | None = None) -> ElasticNetProbe:
    """Minimise mean cross-entropy + the penalty with L-BFGS-B until the projected gradient is below `tol`.

    The L1 term is made smooth exactly by writing W = W⁺ − W⁻ with both parts ≥ 0, so |W|₁ = ΣW⁺ + ΣW⁻
    (a bound-constrained problem L-BFGS-B solves to an optimality test, not to an iteration count).
    `seed` only sets the small random start, or `start` warm-starts from another fit: a converged
    solution depends on neither, which is what the seed-stability figure checks.
    """
    import torch
    from scipy.optimize import minimize

    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {OBJECTIVES}")
    classes, yi = np.unique(np.asarray(y).astype(str), return_inverse=True)
    Xt = torch.as_tensor(np.asarray(X, dtype=np.float64))
    n, H = Xt.shape
    K = len(classes)
    Y = torch.nn.functional.one_hot(torch.as_tensor(yi), K).double()
    m = K * H
    if start is not None and list(start.classes_) == list(classes):
        W0, b0 = np.asarray(start.coef_, dtype=np.float64), np.asarray(start.intercept_, dtype=np.float64)
    else:
        W0 = np.random.default_rng(seed).normal(0, 0.01, (K, H))
        b0 = np.zeros(K)

    split, value_and_grad = _penalised_loss(Xt, Y, l1, l2, objective)

    iterations = [0]

    def callback(_v) -> None:
        iterations[0] += 1
        if progress and iterations[0] % 25 == 0:
            progress(iterations[0], max_iter)

    v0 = np.concatenate([np.maximum(W0, 0).ravel(), np.maximum(-W0, 0).ravel(), b0])
    bounds = [(0.0, None)] * (2 * m) + [(None, None)] * K
    res = minimize(value_and_grad, v0, jac=True, method="L-BFGS-B", bounds=bounds, callback=callback,
                   options={"maxiter": max_iter, "gtol": tol, "ftol": 0.0, "maxcor": 20})
    Wp, Wm, b = split(res.x)
    converged = "PROJECTED GRADIENT" in str(res.message).upper()
    return ElasticNetProbe((Wp - Wm).numpy().copy(), b.numpy().copy(), classes, converged, int(res.nit),
                           float(res.fun))


def sklearn_equivalent(l1: float, l2: float, n: int) -> dict:
    """scikit-learn's (C, l1_ratio) for the squared objective at (l1, l2) on n training rows."""
    return {"C": 1.0 / (n * (l1 + 2 * l2)), "l1_ratio": l1 / (l1 + 2 * l2)}


def neuron_ranking(coef: np.ndarray, stride: float = 0.01) -> list[int]:
    """NeuroX Algorithm 1: raise the share of weight mass p by `stride`; at each p add, for every label, the
    fewest top neurons holding p of that label's absolute weight mass; the order of first addition ranks."""
    W = np.abs(np.atleast_2d(coef))
    order: list[int] = []
    seen: set[int] = set()
    sorted_idx = np.argsort(-W, axis=1, kind="stable")
    mass = W.sum(1, keepdims=True)
    mass[mass == 0] = 1.0
    cum = np.cumsum(np.take_along_axis(W, sorted_idx, 1), 1) / mass
    p = 0.0
    while len(order) < W.shape[1] and p < 1.0 + stride:
        p += stride
        for row in range(W.shape[0]):
            k = int(np.searchsorted(cum[row], min(p, 1.0))) + 1
            for j in sorted_idx[row, :k]:
                if j not in seen:
                    seen.add(int(j))
                    order.append(int(j))
    order += [j for j in range(W.shape[1]) if j not in seen]
    return order


def salient_neurons(coef: np.ndarray, classes: Sequence[str], label: str, mass: float = 0.5) -> list[int]:
    """The fewest neurons holding `mass` of one label's absolute weight."""
    row = list(map(str, classes)).index(label)
    w = np.abs(coef[row])
    if w.sum() == 0:
        return []
    idx = np.argsort(-w)
    k = int(np.searchsorted(np.cumsum(w[idx]) / w.sum(), mass)) + 1
    return idx[:k].tolist()


def jaccard(a: Sequence[int], b: Sequence[int]) -> float:
    sa, sb = set(a), set(b)
    return len(sa & sb) / len(sa | sb) if sa | sb else 1.0


def top_share(ranking: Sequence[int], share: float) -> list[int]:
    return list(ranking[: max(1, int(round(len(ranking) * share)))])


def overlap_summary(rankings: Sequence[Sequence[int]], shares: Sequence[float] = (0.1, 0.2)) -> dict:
    """Pairwise Jaccard of the top shares of several rankings: mean and min per share."""
    out = {}
    for share in shares:
        vals = [jaccard(top_share(a, share), top_share(b, share))
                for i, a in enumerate(rankings) for b in rankings[i + 1 :]]
        out[f"top{round(share * 100)}%"] = {"mean": float(np.mean(vals)) if vals else 1.0,
                                             "min": float(np.min(vals)) if vals else 1.0}
    return out


def masking_table(clf, X_tr, y_tr, X_te, y_te, ranking: Sequence[int],
                  percents: Sequence[int] = (10, 15, 20), seed: int = 0, draws: int = 10) -> dict:
    """NeuroX Table 2/4: accuracy keeping only the top / bottom / random N% of neurons, by masking the trained
    probe's input and by retraining on only those neurons; "random" is the mean of `draws` sets, with spread."""
    from .stats import spread

    H = X_tr.shape[1]
    rng = np.random.default_rng(seed)

    def scores(keep: Sequence[int]) -> tuple[float, float]:
        mask = np.zeros(H, dtype=np.float32)
        mask[list(keep)] = 1
        masked = float(accuracy_score(y_te, clf.predict(X_te * mask)))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            re = LogisticRegression(max_iter=200, random_state=seed).fit(X_tr[:, keep], y_tr)
        return masked, float(accuracy_score(y_te, re.predict(X_te[:, keep])))

    out: dict = {"all": float(accuracy_score(y_te, clf.predict(X_te)))}
    for pct in percents:
        k = max(1, int(round(H * pct / 100)))
        for name, keep in (("top", list(ranking[:k])), ("bottom", list(ranking[-k:]))):
            masked, retrained = scores(keep)
            out[f"{name} {pct}%"] = {"masked": masked, "retrained": retrained}
        runs = [scores(rng.choice(H, k, replace=False).tolist()) for _ in range(draws)]
        m, r = spread([a for a, _ in runs]), spread([b for _, b in runs])
        out[f"random {pct}%"] = {"masked": m["mean"], "retrained": r["mean"], "masked_spread": m,
                                 "retrained_spread": r}
    return out


@dataclass
class RankConfig:
    """The one set of defaults for `analyze rank` (CLI and explorer)."""

    l1: float = 1e-5
    l2: float = 1e-5
    objective: Objective = "squared"
    tol: float = 1e-6
    max_iter: int = 20000
    stride: float = 0.01
    percents: tuple[int, ...] = (10, 15, 20)
    seed: int = 0
    stability_seeds: int = 3  # extra fits from other starts: converged fits agree
    resamples: int = 3  # fits on random 80% subsamples of the training sentences: how much the data moves it


def rank(X: np.ndarray, y: np.ndarray, groups: np.ndarray, cfg: RankConfig | None = None,
         progress: Callable[[str, int, int], None] | None = None) -> dict:
    """Elastic-net probe, neuron ranking, salient neurons, the masking table, and the ranking's stability."""
    from .probes import split_by_group

    cfg = cfg or RankConfig()
    report = progress or (lambda stage, i, n: None)
    keep = np.array([v is not None for v in y])
    X, y, groups = X[keep], y[keep].astype(str), groups[keep]
    tr, te = split_by_group(groups, seed=0)  # one fixed split: --seed moves the start, not the data

    def fit(rows: np.ndarray, seed: int, label: str, start: ElasticNetProbe | None = None) -> ElasticNetProbe:
        return elastic_net(X[rows], y[rows], cfg.l1, cfg.l2, seed, cfg.objective, cfg.tol, cfg.max_iter,
                           progress=lambda i, n: report(label, i, n), start=start)

    clf = fit(tr, cfg.seed, "elastic net")
    ranking = neuron_ranking(clf.coef_, cfg.stride)
    fits = [{"seed": cfg.seed, "converged": clf.converged, "iterations": clf.iterations}]
    seed_rankings = [ranking]
    for s in range(1, cfg.stability_seeds):
        other = fit(tr, cfg.seed + s, f"stability: seed {cfg.seed + s}")
        seed_rankings.append(neuron_ranking(other.coef_, cfg.stride))
        fits.append({"seed": cfg.seed + s, "converged": other.converged, "iterations": other.iterations})
    rng = np.random.default_rng(cfg.seed)
    train_groups = np.unique(groups[tr])
    sample_rankings = [ranking]
    for r in range(cfg.resamples):
        chosen = set(rng.choice(train_groups, size=max(1, int(0.8 * len(train_groups))), replace=False).tolist())
        rows = tr[np.array([g in chosen for g in groups[tr]])]
        other = fit(rows, cfg.seed, f"stability: resample {r + 1}", start=clf)
        sample_rankings.append(neuron_ranking(other.coef_, cfg.stride))
        fits.append({"resample": r + 1, "converged": other.converged, "iterations": other.iterations})
    classes = [str(c) for c in clf.classes_]
    stability = {"seeds": overlap_summary(seed_rankings) if len(seed_rankings) > 1 else None,
                 "resamples": overlap_summary(sample_rankings) if len(sample_rankings) > 1 else None,
                 "n_seeds": len(seed_rankings), "n_resamples": len(sample_rankings) - 1}
    return {"kind": "rank", "accuracy": float(accuracy_score(y[te], clf.predict(X[te]))), "ranking": ranking,
            "converged": all(f["converged"] for f in fits), "iterations": clf.iterations,
            "objective": cfg.objective, "objective_value": clf.objective, "fits": fits, "stability": stability,
            "salient": {c: salient_neurons(clf.coef_, classes, c) for c in classes[:50]},
            "masking": masking_table(clf, X[tr], y[tr], X[te], y[te], ranking, cfg.percents, cfg.seed),
            "l1": cfg.l1, "l2": cfg.l2, "stride": cfg.stride, "tol": cfg.tol, "seed": cfg.seed,
            "n_train": int(len(tr)), "n_test": int(len(te))}


def stability_line(res: dict) -> str:
    """One line for the CLI and the explorer: the ranking's top-10% overlap across seeds and resamples."""
    st = res.get("stability") or {}
    parts = []
    for key, what in (("seeds", "starts"), ("resamples", "80% resamples")):
        s = st.get(key)
        if s:
            j = s["top10%"]
            parts.append(f"top-10% Jaccard across {st['n_' + key]} {what}: mean {j['mean']:.2f}, min {j['min']:.2f}")
    if not parts:
        return "ranking stability not measured"
    worst = min(st[k]["top10%"]["min"] for k in ("seeds", "resamples") if st.get(k))
    verdict = "stable" if worst >= 0.9 else "NOT stable (below 0.9): read the top neurons as a tendency"
    conv = "" if res.get("converged", True) else "; a fit did not converge: raise --max-iter"
    return "; ".join(parts) + f" — {verdict}{conv}"


def ablation_curve(ckpt: Checkpoint, examples: Sequence[Example], ranking: Sequence[int],
                   percents: Sequence[int] = (0, 5, 10, 20, 30, 50), seed: int = 0, draws: int = 10,
                   progress: Callable[[int, int], None] | None = None) -> dict:
    """NeuroX Figure 4 in the live model: zero the top / bottom / random N% at every decoder step, positioning
    accuracy as N grows; "random" is the mean over `draws` random orders (spread in "random_spread")."""
    from ..model.interventions import NeuronSet, SetValue, StepRef
    from ..model.stepper import decode_examples
    from ..training.evaluate import score
    from .stats import spread

    H = ckpt.config.hidden
    rng = np.random.default_rng(seed)
    randoms = [rng.permutation(H).tolist() for _ in range(draws)]
    curves: dict[str, list[dict]] = {"ranking": [], "reverse": [], "random": []}
    total, done = len(percents) * (2 + draws), 0

    def accuracy(order: list[int], k: int) -> float:
        ivs = [SetValue(NeuronSet.of(order[:k]), StepRef(every=True))] if k else []
        return score(examples, decode_examples(ckpt.model, ckpt.vocab, examples, ivs)).overall.value

    for pct in percents:
        k = int(round(H * pct / 100))
        for name, order in (("ranking", list(ranking)), ("reverse", list(ranking)[::-1])):
            curves[name].append({"percent": pct, "neurons": k, "accuracy": accuracy(order, k)})
            done += 1
            if progress:
                progress(done, total)
        accs = []
        for order in randoms:
            accs.append(accuracy(order, k) if k else curves["ranking"][-1]["accuracy"])
            done += 1
            if progress:
                progress(done, total)
        sp = spread(accs)
        curves["random"].append({"percent": pct, "neurons": k, "accuracy": sp["mean"], "spread": sp})
    return curves


def cross_model_correlation(activations: Sequence[np.ndarray]) -> list[dict]:
    """For each model, each neuron's highest absolute Pearson correlation with any neuron of another model
    over the same tokens (NeuroX / Bau et al.); with the ranking by that score."""
    Z = []
    for A in activations:
        A = A - A.mean(0)
        std = A.std(0)
        std[std == 0] = 1.0
        Z.append(A / std)
    n = Z[0].shape[0]
    out = []
    for i, Zi in enumerate(Z):
        best = np.zeros(Zi.shape[1])
        for j, Zj in enumerate(Z):
            if i != j:
                best = np.maximum(best, (np.abs(Zi.T @ Zj) / n).max(1))
        out.append({"score": best.tolist(), "ranking": np.argsort(-best, kind="stable").tolist(),
                    "share_at_least_0.8": float((best >= 0.8).mean())})
    return out


def roles_in_ranking(score: Sequence[float], roles: dict[str, dict[str, list[int]]]) -> dict[str, dict]:
    """Where each role's neurons (the union over tokens) fall among neurons ranked by cross-model score."""
    sc = np.asarray(score, dtype=float)
    top = set(np.argsort(-sc, kind="stable")[: max(1, int(round(0.2 * len(sc))))].tolist())
    out = {}
    for role, per_token in roles.items():
        neurons = sorted({j for ns in per_token.values() for j in ns if 0 <= j < len(sc)})
        if not neurons:
            continue
        others = np.setdiff1d(np.arange(len(sc)), neurons)
        out[role] = {"neurons": len(neurons), "mean_score": float(sc[neurons].mean()),
                     "others_mean": float(sc[others].mean()) if len(others) else float("nan"),
                     "share_in_top_20%": len(top & set(neurons)) / len(neurons)}
    return out


def top_activating(states, neuron: int, n: int = 10, min_count: int = 3) -> dict:
    """Words with the highest (and lowest) mean activation of a neuron (NeuroX Table 3), with counts."""
    acts: dict[str, list[float]] = {}
    for w, v in zip(states.words, states.X[:, neuron]):
        acts.setdefault(w, []).append(float(v))
    means = [(w, float(np.mean(v)), len(v)) for w, v in acts.items() if len(v) >= min_count]
    means.sort(key=lambda x: -x[1])
    return {"neuron": neuron, "top": [{"word": w, "mean": m, "n": c} for w, m, c in means[:n]],
            "bottom": [{"word": w, "mean": m, "n": c} for w, m, c in means[-n:][::-1]]}
