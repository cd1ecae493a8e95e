"""Diagnostic classifiers (van der Ouderaa) and NeuroX's analyses (Dalvi et al., AAAI 2019).

Token-level states come from the stepper: encoder states of source words (labels such as part of
speech, position, identity) and decoder states of the token-positioning recording (steps remaining,
is-the-control-step). Probes are scikit-learn logistic regressions (plain and class-balanced) or
ridge regressions for continuous labels; NeuroX's ranking uses an elastic-net multinomial logistic
regression and the cumulative weight mass of its Algorithm 1.
"""

from __future__ import annotations

import importlib.util
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import accuracy_score, precision_recall_fscore_support, r2_score

from ..errors import UserError
from ..model.checkpoint import Checkpoint
from ..model.data import Example
from ..model.stepper import Stepper
from .recording import FIRST_T, Recording

# ----------------------------------------------------------------------------- token states


@dataclass
class TokenStates:
    """One row per token: the state after reading it, its word, its tag (if any), position, sentence id."""

    X: np.ndarray  # [N,H]
    words: list[str]
    tags: list[str | None]
    index: np.ndarray  # [N] 1-based position in the sentence
    sentence: np.ndarray  # [N] sentence id (for splits that keep sentences whole)
    sentences: list[list[str]] = field(default_factory=list)


def read_tagged(paths: Sequence[Path], max_sentences: int | None = None) -> list[list[tuple[str, str]]]:
    """Sentences of (word, TAG) from `word/TAG` files (the part-of-speech-tagged Gutenberg books)."""
    from ..model.data import corpus_files

    out = []
    for f in corpus_files(paths):
        for line in f.read_text(encoding="utf-8", errors="replace").splitlines():
            pairs = []
            for item in line.split():
                word, sep, tag = item.rpartition("/")
                if sep and word:
                    pairs.append((word.lower(), tag))
            if pairs:
                out.append(pairs)
            if max_sentences and len(out) >= max_sentences:
                return out
    if not out:
        raise UserError("no word/TAG tokens found in the tagged corpus")
    return out


def encoder_states(ckpt: Checkpoint, sentences: Sequence[Sequence[str]], tags: Sequence[Sequence[str]] | None = None,
                   max_len: int | None = None, batch_size: int = 512) -> TokenStates:
    """Encoder h after each source word (sentences cut to the model's max_len; the encoder is causal)."""
    stepper = Stepper(ckpt.model, ckpt.vocab, ckpt.analysis_layer)
    max_len = max_len or ckpt.config.max_len
    vocab = ckpt.vocab
    dummy = (int(vocab.word_ids[0]), 1)
    X, words, tag_out, index, sent = [], [], [], [], []
    kept = []
    for start in range(0, len(sentences), batch_size):
        chunk = [list(s)[:max_len] for s in sentences[start : start + batch_size]]
        exs = [Example(vocab.encode(s), [dummy]) for s in chunk]
        tr = stepper.run(exs, max_steps=1, record_gates=False, topk=0, stop_at_eos=False)
        h = tr.h.numpy()
        for b, s in enumerate(chunk):
            n_src = len(s)
            first = tr.n_enc - (n_src + 2)  # the source starts n_src + 2 steps before t=0
            for i, w in enumerate(s):
                X.append(h[b, first + i])
                words.append(w)
                tag_out.append(tags[start + b][i] if tags is not None else None)
                index.append(i + 1)
                sent.append(start + b)
            kept.append(s)
    return TokenStates(np.array(X, dtype=np.float32), words, tag_out, np.array(index), np.array(sent), kept)


def decoder_states(rec: Recording, label: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Decoder states of correctly positioned examples for t in 1..T, labelled by `label`:
    steps-remaining (T - t, continuous), is-control (t == T), position (t)."""
    X, y, g = [], [], []
    for e in np.nonzero(rec.landed)[0]:
        T = int(rec.positions[e])
        for t in range(1, T + 1):
            X.append(rec.h[e, t - FIRST_T])
            y.append({"steps-remaining": T - t, "is-control": int(t == T), "position": t}[label])
            g.append(e)
    return np.array(X, dtype=np.float32), np.array(y), np.array(g)


# ----------------------------------------------------------------------------- hypotheses

ENCODER_HYPOTHESES = ("pos", "position", "token", "word-set", "span")
DECODER_HYPOTHESES = ("steps-remaining", "is-control", "decoder-position")


def encoder_labels(states: TokenStates, hypothesis: str, words: Sequence[str] = (), top_words: int = 20) -> np.ndarray:
    """Labels for encoder tokens; None marks tokens the hypothesis says nothing about."""
    if hypothesis == "pos":
        if any(t is None for t in states.tags):
            raise UserError("the pos hypothesis needs a tagged corpus (word/TAG), e.g. ../shared/data/gutenberg_pos")
        return np.array(states.tags, dtype=object)
    if hypothesis == "position":
        return np.array([str(i) for i in states.index], dtype=object)
    if hypothesis == "token":
        common = {w for w, _ in Counter(states.words).most_common(top_words)}
        return np.array([w if w in common else "<other>" for w in states.words], dtype=object)
    if hypothesis == "word-set":
        if not words:
            raise UserError("the word-set hypothesis needs --words w1,w2,...")
        ws = set(words)
        return np.array(["in" if w in ws else "out" for w in states.words], dtype=object)
    if hypothesis == "span":
        return span_labels(states, words)
    if hypothesis.endswith(".py"):
        return user_labels(Path(hypothesis), states)
    raise UserError(f"hypothesis {hypothesis!r} is unknown; use one of {', '.join(ENCODER_HYPOTHESES + DECODER_HYPOTHESES)}"
                    " or a .py file defining label(words, tags, index)")


def span_labels(states: TokenStates, words: Sequence[str]) -> np.ndarray:
    """'in' for tokens inside a span opened by words[0] and closed by words[1] (e.g. ( and ), or ` and '), else 'out';
    the delimiters themselves are 'out'. The state must remember an unclosed opener across the sentence."""
    if len(words) != 2:
        raise UserError("the span hypothesis needs --words OPEN,CLOSE, e.g. --words '(,)'")
    opener, closer = words
    out = []
    for s in np.unique(states.sentence):
        inside = False
        for r in np.nonzero(states.sentence == s)[0]:
            w = states.words[r]
            if w == opener:
                inside = True
                out.append("out")
            elif w == closer:
                inside = False
                out.append("out")
            else:
                out.append("in" if inside else "out")
    return np.array(out, dtype=object)


def user_labels(path: Path, states: TokenStates) -> np.ndarray:
    """A user hypothesis: a Python file with `def label(words, tags, index) -> str | None` (index is 0-based)."""
    if not path.is_file():
        raise UserError(f"hypothesis file {path} does not exist")
    spec = importlib.util.spec_from_file_location("tui_neuron_user_hypothesis", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)  # type: ignore[union-attr]
        fn = module.label
    except Exception as e:  # noqa: BLE001 - a user's file can fail in any way
        raise UserError(f"hypothesis file {path} failed to load: {e}") from None
    out = []
    for s in np.unique(states.sentence):
        rows = np.nonzero(states.sentence == s)[0]
        ws = [states.words[r] for r in rows]
        ts = [states.tags[r] for r in rows]
        for i in range(len(rows)):
            try:
                lab = fn(ws, ts, i)
            except Exception as e:  # noqa: BLE001
                raise UserError(f"hypothesis file {path}: label() raised {type(e).__name__}: {e}") from None
            out.append(None if lab is None else str(lab))
    return np.array(out, dtype=object)


# ----------------------------------------------------------------------------- probes


def split_by_group(groups: np.ndarray, test_share: float = 0.25, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    uniq = np.unique(groups)
    test = set(rng.choice(uniq, size=max(1, int(len(uniq) * test_share)), replace=False).tolist())
    is_test = np.array([g in test for g in groups])
    return np.nonzero(~is_test)[0], np.nonzero(is_test)[0]


def _logreg(balanced: bool, seed: int, C: float = 1.0) -> LogisticRegression:
    return LogisticRegression(C=C, max_iter=200, class_weight="balanced" if balanced else None, random_state=seed)


def classification_report(y_true, y_pred, majority) -> dict:
    labels = sorted(set(y_true) | set(y_pred), key=str)
    p, r, f, n = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    P, R, F, _ = precision_recall_fscore_support(y_true, y_pred, average="macro", zero_division=0)
    return {"accuracy": float(accuracy_score(y_true, y_pred)), "precision": float(P), "recall": float(R), "f1": float(F),
            "majority_baseline": float(np.mean(np.asarray(y_true) == majority)),
            "per_class": {str(lab): {"precision": float(a), "recall": float(b), "f1": float(c), "n": int(d)}
                          for lab, a, b, c, d in zip(labels, p, r, f, n)}}


def top_neurons(coef: np.ndarray, n: int = 10) -> list[int]:
    """Most responsible neurons: largest absolute weight (over classes for a multinomial probe)."""
    score = np.abs(coef).max(0) if coef.ndim == 2 else np.abs(coef)
    return np.argsort(-score)[:n].tolist()


def control_labels(words: Sequence[str], y: np.ndarray, seed: int = 0) -> np.ndarray:
    """A control task: each word type gets one label drawn from the label distribution (Hewitt & Liang)."""
    rng = np.random.default_rng(seed)
    labels, counts = np.unique(y, return_counts=True)
    p = counts / counts.sum()
    by_type = {w: labels[rng.choice(len(labels), p=p)] for w in dict.fromkeys(words)}
    return np.array([by_type[w] for w in words], dtype=y.dtype)


def probe(X: np.ndarray, y: np.ndarray, groups: np.ndarray, words: Sequence[str] | None = None,
          seed: int = 0, top_n: int = 10) -> dict:
    """Plain and class-balanced logistic probes (and a ridge probe for numeric labels) with metrics,
    the majority baseline, the most responsible neurons and, given words, a control task's selectivity."""
    keep = np.array([v is not None for v in y])
    X, y, groups = X[keep], y[keep], groups[keep]
    words = [w for w, k in zip(words, keep) if k] if words is not None else None
    if len(np.unique(y)) < 2:
        raise UserError("the labels have a single class here; a probe needs at least two")
    tr, te = split_by_group(groups, seed=seed)
    y_cls = y.astype(str)
    majority = Counter(y_cls[tr]).most_common(1)[0][0]
    out: dict = {"n_train": int(len(tr)), "n_test": int(len(te)), "classes": int(len(np.unique(y_cls)))}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for name, balanced in (("plain", False), ("balanced", True)):
            clf = _logreg(balanced, seed).fit(X[tr], y_cls[tr])
            rep = classification_report(y_cls[te], clf.predict(X[te]), majority)
            rep["top_neurons"] = top_neurons(clf.coef_, top_n)
            out[name] = rep
        if words is not None:
            yc = control_labels(words, y_cls, seed)
            ctrl = _logreg(False, seed).fit(X[tr], yc[tr])
            c_acc = float(accuracy_score(yc[te], ctrl.predict(X[te])))
            out["control_accuracy"] = c_acc
            out["selectivity"] = out["plain"]["accuracy"] - c_acc
    if np.issubdtype(np.asarray(y).dtype, np.number):
        ridge = Ridge(alpha=1.0).fit(X[tr], y[tr].astype(float))
        out["ridge"] = {"r2": float(r2_score(y[te].astype(float), ridge.predict(X[te]))),
                        "top_neurons": top_neurons(ridge.coef_, top_n)}
    out["most_responsible_neuron"] = out["plain"]["top_neurons"][0]
    return out


# ----------------------------------------------------------------------------- NeuroX


@dataclass
class ElasticNetProbe:
    """A multinomial logistic regression trained with NeuroX's objective; scikit-learn-like attributes."""

    coef_: np.ndarray  # [C,H]
    intercept_: np.ndarray  # [C]
    classes_: np.ndarray

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        return X @ self.coef_.T + self.intercept_

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.classes_[self.decision_function(X).argmax(1)]


def elastic_net(X: np.ndarray, y: np.ndarray, l1: float = 1e-5, l2: float = 1e-5, seed: int = 0,
                epochs: int = 300, lr: float = 0.02) -> ElasticNetProbe:
    """Minimise mean cross-entropy + l1·|W|₁ + l2·|W|₂² full-batch with Adam, as NeuroX trains its probes.

    (scikit-learn's saga solver reaches the same objective but took minutes on 50k tokens x 256 neurons here.)
    """
    import torch

    classes, yi = np.unique(np.asarray(y).astype(str), return_inverse=True)
    gen = torch.Generator().manual_seed(seed)
    Xt = torch.as_tensor(np.asarray(X, dtype=np.float32))
    yt = torch.as_tensor(yi)
    W = (torch.randn(len(classes), Xt.shape[1], generator=gen) * 0.01).requires_grad_(True)
    b = torch.zeros(len(classes), requires_grad=True)
    opt = torch.optim.Adam([W, b], lr=lr)
    for _ in range(epochs):
        loss = torch.nn.functional.cross_entropy(Xt @ W.T + b, yt) + l1 * W.abs().sum() + l2 * (W * W).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return ElasticNetProbe(W.detach().numpy().astype(np.float64), b.detach().numpy().astype(np.float64), classes)


def neuron_ranking(coef: np.ndarray, stride: float = 0.01) -> list[int]:
    """NeuroX Algorithm 1: raise the share of weight mass p by `stride`; at each p add, for every label, the
    fewest top neurons holding p of that label's absolute weight mass; the order of first addition ranks."""
    W = np.abs(np.atleast_2d(coef))
    order: list[int] = []
    seen: set[int] = set()
    sorted_idx = np.argsort(-W, axis=1)
    cum = np.cumsum(np.take_along_axis(W, sorted_idx, 1), 1) / W.sum(1, keepdims=True)
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
    idx = np.argsort(-w)
    k = int(np.searchsorted(np.cumsum(w[idx]) / w.sum(), mass)) + 1
    return idx[:k].tolist()


def masking_table(clf, X_tr, y_tr, X_te, y_te, ranking: Sequence[int],
                  percents: Sequence[int] = (10, 15, 20), seed: int = 0) -> dict:
    """NeuroX Table 2/4: accuracy keeping only the top / bottom / random N% of neurons, by masking the trained
    probe's input and by retraining on only those neurons."""
    H = X_tr.shape[1]
    rng = np.random.default_rng(seed)
    out = {"all": float(accuracy_score(y_te, clf.predict(X_te)))}
    for pct in percents:
        k = max(1, int(round(H * pct / 100)))
        sets = {"top": list(ranking[:k]), "bottom": list(ranking[-k:]),
                "random": rng.choice(H, k, replace=False).tolist()}
        for name, keep in sets.items():
            mask = np.zeros(H, dtype=np.float32)
            mask[keep] = 1
            masked = float(accuracy_score(y_te, clf.predict(X_te * mask)))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                re = LogisticRegression(max_iter=200, random_state=seed).fit(X_tr[:, keep], y_tr)
            out[f"{name} {pct}%"] = {"masked": masked, "retrained": float(accuracy_score(y_te, re.predict(X_te[:, keep])))}
    return out


def rank(X: np.ndarray, y: np.ndarray, groups: np.ndarray, l1: float = 1e-5, l2: float = 1e-5, stride: float = 0.01,
         percents: Sequence[int] = (10, 15, 20), seed: int = 0) -> dict:
    """Elastic-net probe, neuron ranking, salient neurons per label, and the masking table."""
    keep = np.array([v is not None for v in y])
    X, y, groups = X[keep], y[keep].astype(str), groups[keep]
    tr, te = split_by_group(groups, seed=seed)
    clf = elastic_net(X[tr], y[tr], l1, l2, seed)
    ranking = neuron_ranking(clf.coef_, stride)
    classes = [str(c) for c in clf.classes_]
    coef = clf.coef_
    return {"accuracy": float(accuracy_score(y[te], clf.predict(X[te]))), "ranking": ranking,
            "salient": {c: salient_neurons(coef, classes, c) for c in classes[:50]},
            "masking": masking_table(clf, X[tr], y[tr], X[te], y[te], ranking, percents, seed),
            "l1": l1, "l2": l2, "stride": stride}


def ablation_curve(ckpt: Checkpoint, examples: Sequence[Example], ranking: Sequence[int],
                   percents: Sequence[int] = (0, 5, 10, 20, 30, 50), seed: int = 0,
                   progress: Callable[[int, int], None] | None = None) -> dict:
    """NeuroX Figure 4 in the live model: zero the top / bottom / random N% at every decoder step, positioning
    accuracy as N grows."""
    from ..model.evaluate import score
    from ..model.interventions import NeuronSet, SetValue, StepRef
    from ..model.stepper import decode_examples

    H = ckpt.config.hidden
    rng = np.random.default_rng(seed)
    random_order = rng.permutation(H).tolist()
    curves: dict[str, list[dict]] = {"ranking": [], "reverse": [], "random": []}
    orders = {"ranking": list(ranking), "reverse": list(ranking)[::-1], "random": random_order}
    total, done = len(percents) * 3, 0
    for pct in percents:
        k = int(round(H * pct / 100))
        for name, order in orders.items():
            ivs = [SetValue(NeuronSet.of(order[:k]), StepRef(every=True))] if k else []
            outs = decode_examples(ckpt.model, ckpt.vocab, examples, ivs)
            acc = score(examples, outs).overall.value
            curves[name].append({"percent": pct, "neurons": k, "accuracy": acc})
            done += 1
            if progress:
                progress(done, total)
    return curves


def cross_model_correlation(activations: Sequence[np.ndarray]) -> list[dict]:
    """For each model, each neuron's highest absolute Pearson correlation with any neuron of another model
    over the same tokens (NeuroX / Bau et al.); with the ranking by that score."""
    out = []
    Z = []
    for A in activations:
        A = A - A.mean(0)
        std = A.std(0)
        std[std == 0] = 1.0
        Z.append(A / std)
    n = Z[0].shape[0]
    for i, Zi in enumerate(Z):
        best = np.zeros(Zi.shape[1])
        for j, Zj in enumerate(Z):
            if i == j:
                continue
            corr = np.abs(Zi.T @ Zj) / n
            best = np.maximum(best, corr.max(1))
        out.append({"score": best.tolist(), "ranking": np.argsort(-best).tolist()})
    return out


def top_activating(states: TokenStates, neuron: int, n: int = 10, min_count: int = 3) -> dict:
    """Words with the highest (and lowest) mean activation of a neuron (NeuroX Table 3), with counts."""
    acts: dict[str, list[float]] = {}
    for w, v in zip(states.words, states.X[:, neuron]):
        acts.setdefault(w, []).append(float(v))
    means = [(w, float(np.mean(v)), len(v)) for w, v in acts.items() if len(v) >= min_count]
    means.sort(key=lambda x: -x[1])
    return {"neuron": neuron, "top": [{"word": w, "mean": m, "n": c} for w, m, c in means[:n]],
            "bottom": [{"word": w, "mean": m, "n": c} for w, m, c in means[-n:][::-1]]}
