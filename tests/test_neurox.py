"""The elastic net solved to convergence: it matches scikit-learn at the equivalent penalties, and its
ranking does not depend on the start."""

import warnings

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from tui_neuron.analysis.neurox import (
    RankConfig,
    elastic_net,
    jaccard,
    neuron_ranking,
    overlap_summary,
    rank,
    sklearn_equivalent,
    stability_line,
)


def planted_problem(n=3000, hidden=40, seed=0):
    """Three classes driven by eight planted neurons (3 + 3 + 2); the other 32 are noise."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, hidden))
    W = np.zeros((3, hidden))
    W[0, :3] = [3, 2, 1.5]
    W[1, 3:6] = [-2, 2.5, 1]
    W[2, 6:8] = [2, -3]
    logits = X @ W.T
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    y = np.array([rng.choice(3, p=row) for row in p]).astype(str)
    return X, y


def test_converged_elastic_net_matches_scikit_learn_at_the_equivalent_penalties():
    X, y = planted_problem()
    l1, l2 = 2e-3, 1e-3
    ours = elastic_net(X, y, l1, l2, tol=1e-8)
    eq = sklearn_equivalent(l1, l2, len(y))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = LogisticRegression(penalty="elasticnet", solver="saga", C=eq["C"], l1_ratio=eq["l1_ratio"],
                                    tol=1e-8, max_iter=20000).fit(X, y)
    assert ours.converged
    assert list(ours.classes_) == list(theirs.classes_)
    assert np.corrcoef(ours.coef_.ravel(), theirs.coef_.ravel())[0, 1] >= 0.99
    top = lambda coef: set(np.argsort(-np.abs(coef).max(0))[:8].tolist())  # noqa: E731
    assert top(ours.coef_) == top(theirs.coef_) == set(range(8))


def test_the_neurox_objective_differs_from_the_squared_one_and_both_converge():
    X, y = planted_problem(n=1500)
    sq = elastic_net(X, y, 1e-3, 5e-2, objective="squared")
    nx = elastic_net(X, y, 1e-3, 5e-2, objective="neurox")
    assert sq.converged and nx.converged
    # |W|₂ penalises less than |W|₂² once the norm is above 1: the plain-norm weights are larger
    assert np.linalg.norm(nx.coef_) > np.linalg.norm(sq.coef_)


def test_an_unconverged_fit_says_so():
    X, y = planted_problem(n=1500)
    assert not elastic_net(X, y, 1e-4, 1e-4, tol=1e-12, max_iter=3).converged


@pytest.mark.parametrize("seed", [1, 2])
def test_converged_rankings_do_not_depend_on_the_start(seed):
    X, y = planted_problem(n=1500)
    a = neuron_ranking(elastic_net(X, y, 1e-3, 1e-4, seed=0).coef_)
    b = neuron_ranking(elastic_net(X, y, 1e-3, 1e-4, seed=seed).coef_)
    assert jaccard(a[:8], b[:8]) == 1.0


def test_rank_reports_stability_across_starts_and_resamples():
    X, y = planted_problem(n=1200)
    groups = np.arange(len(y)) // 10
    res = rank(X, y, groups, RankConfig(l1=1e-3, l2=1e-4, percents=(10,), stability_seeds=3, resamples=2))
    st = res["stability"]
    assert st["n_seeds"] == 3 and st["n_resamples"] == 2
    assert st["seeds"]["top10%"]["min"] == 1.0
    assert 0.0 <= st["resamples"]["top20%"]["min"] <= 1.0
    assert res["converged"] and len(res["fits"]) == 5
    assert "Jaccard" in stability_line(res)


def test_overlap_summary_is_pairwise_jaccard():
    s = overlap_summary([[0, 1, 2, 3, 4, 5, 6, 7, 8, 9], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9][::-1]], shares=(0.2,))
    assert s["top20%"]["mean"] == 0.0
