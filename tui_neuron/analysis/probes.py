"""Diagnostic classifiers (van der Ouderaa et al.); NeuroX's analyses live in `neurox.py`.

Token-level states come from the stepper: encoder states of source words (labels such as part of
speech, position, identity) and decoder states of the token-positioning recording (steps remaining,
is-the-control-step). Probes are scikit-learn logistic regressions (plain and class-balanced) or
ridge regressions for continuous labels.
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

from ..checkpoint.format import Checkpoint
from ..checkpoint.validate import one_line
from ..errors import ParameterError, UserError
from ..model.examples import Example
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
    from ..training.corpus import corpus_files

    out = []
    for f in corpus_files(paths):
        text = f.read_text(encoding="utf-8", errors="replace")
        if "\x00" in text[:65536]:
            raise UserError(f"tagged corpus file {f} is not text (it holds NUL bytes); give word/TAG text files")
        for line in text.splitlines():
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
                   max_len: int | None = None, batch_size: int = 512,
                   progress: Callable[[int, int], None] | None = None) -> TokenStates:
    """Encoder h after each source word (sentences cut to the model's max_len; the encoder is causal)."""
    stepper = Stepper(ckpt.model, ckpt.vocab, ckpt.analysis_layer)
    max_len = max_len or ckpt.config.max_len
    vocab = ckpt.vocab
    dummy = [(int(vocab.word_ids[0]), 1)] if vocab.has_positions else []  # a control, as the model was trained
    after = 2 * len(dummy)  # the control's two tokens follow the source
    X, words, tag_out, index, sent = [], [], [], [], []
    kept = []
    for start in range(0, len(sentences), batch_size):
        chunk = [list(s)[:max_len] for s in sentences[start : start + batch_size]]
        exs = [Example(vocab.src.encode(s), dummy) for s in chunk]
        tr = stepper.run(exs, max_steps=1, record_gates=False, topk=0, stop_at_eos=False)
        h = tr.h.numpy()
        for b, s in enumerate(chunk):
            n_src = len(s)
            first = tr.n_enc - (n_src + after)  # the source starts n_src + after steps before t=0
            for i, w in enumerate(s):
                X.append(h[b, first + i])
                words.append(w)
                tag_out.append(tags[start + b][i] if tags is not None else None)
                index.append(i + 1)
                sent.append(start + b)
            kept.append(s)
        if progress is not None:
            progress(min(start + batch_size, len(sentences)), len(sentences))
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
            raise ParameterError("words", "the word-set hypothesis needs {param} w1,w2,...")
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
        raise ParameterError("words", "the span hypothesis needs {param} OPEN,CLOSE, e.g. (,)")
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
    if spec is None or spec.loader is None:
        raise UserError(f"hypothesis file {path} cannot be loaded as Python")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
        fn = module.label
    except SystemExit as e:  # sys.exit() in a user's file ends its loading, not the tool
        raise UserError(f"hypothesis file {path} called sys.exit({e.code!r}) while loading; it must define "
                        "label(words, tags, index) and return") from None
    except Exception as e:  # noqa: BLE001 - a user's file can fail in any way
        raise UserError(f"hypothesis file {path} failed to load: {type(e).__name__}: {one_line(str(e))}") from None
    if not callable(fn):
        raise UserError(f"hypothesis file {path}: label is not a function; define label(words, tags, index)")
    out = []
    for s in np.unique(states.sentence):
        rows = np.nonzero(states.sentence == s)[0]
        ws = [states.words[r] for r in rows]
        ts = [states.tags[r] for r in rows]
        for i in range(len(rows)):
            try:
                lab = fn(ws, ts, i)
            except SystemExit as e:
                raise UserError(f"hypothesis file {path}: label() called sys.exit({e.code!r})") from None
            except Exception as e:  # noqa: BLE001
                raise UserError(f"hypothesis file {path}: label() raised {type(e).__name__}: "
                                f"{one_line(str(e))}") from None
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
    keep = np.array([v is not None for v in y], dtype=bool)
    if not keep.any():
        raise UserError("no state has a label for this hypothesis (is the tagged corpus word/TAG text the model's "
                        "vocabulary covers?)")
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
