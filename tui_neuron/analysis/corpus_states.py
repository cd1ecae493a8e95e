"""Glue from checkpoints and corpora to the probes, rankings and memory analyses (shared by CLI and explorer)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ..checkpoint.format import Checkpoint
from ..errors import ParameterError, UserError
from ..model.tokenizer import tokenize
from . import memory, probes
from .recording import build_examples, frequent_targets, heldout_lines, record


def tagged_tail(paths: Sequence[Path], fraction: float = 0.05, max_sentences: int = 2000) -> list[list[tuple[str, str]]]:
    """The last `fraction` of each tagged file (the same tail the checkpoints hold out), up to max_sentences."""
    from ..training.corpus import corpus_files

    out: list[list[tuple[str, str]]] = []
    files = corpus_files(paths)
    per_file = max(1, max_sentences // max(len(files), 1))
    for f in files:
        sents = probes.read_tagged([f])
        tail = sents[len(sents) - max(1, int(len(sents) * fraction)) :]
        out += tail[:per_file]
    return out[:max_sentences]


def sentence_states(ckpt: Checkpoint, tagged: Sequence[Path] | None, sentences: int,
                    text: Sequence[Path] | None = None):
    """Encoder token states for held-out sentences (tagged ones when a tagged corpus is given)."""
    if tagged:
        sents = tagged_tail(tagged, max_sentences=sentences)
        words = [[w for w, _ in s] for s in sents]
        # the tagger's tokens, re-tokenized the model's way; keep tokens that stay one word
        keep_words, keep_tags = [], []
        for s in sents:
            ws, ts = [], []
            for w, t in s:
                toks = tokenize(w)
                if len(toks) == 1:
                    ws.append(toks[0])
                    ts.append(t)
            if ws:
                keep_words.append(ws)
                keep_tags.append(ts)
        words = keep_words
        return probes.encoder_states(ckpt, words, keep_tags)
    lines = heldout_lines(ckpt, text)[:sentences]
    return probes.encoder_states(ckpt, lines)


def file_states(ckpt: Checkpoint, path: Path, sentences: int | None = None) -> probes.TokenStates:
    """Token states from a NeuroX activations file (its first `sentences`); its width must be this model's h."""
    from .activation_files import read_activations

    data = read_activations(path, sentences)
    width = data.acts[0].shape[1]
    if width != ckpt.config.hidden:
        raise ParameterError("activations", f"{{param}} {path} holds {width} values per token; this model's analyses "
                                            f"read one state of {ckpt.config.hidden} neurons (export one: --states h "
                                            "--layers K)")
    keep, acts = data.tokens, data.acts
    sent = np.concatenate([np.full(len(t), i) for i, t in enumerate(keep)])
    index = np.concatenate([np.arange(1, len(t) + 1) for t in keep])
    words = [w for t in keep for w in t]
    return probes.TokenStates(np.concatenate(acts).astype(np.float32), words, [None] * len(words), index, sent,
                              [list(t) for t in keep])


def labelled(ckpt: Checkpoint, hypothesis: str, tagged=None, sentences: int = 2000, words: Sequence[str] = (),
             per_cell: int = 6, text: Sequence[Path] | None = None, activations: Path | None = None):
    """(X, y, groups, words-or-None, states-or-None) for a hypothesis on the encoder or the decoder; with
    `activations`, from a NeuroX file's states and tokens instead of the model's runs."""
    if activations is not None:
        if hypothesis in probes.DECODER_HYPOTHESES:
            raise ParameterError("activations", f"{{param}}: {hypothesis} is a decoder hypothesis, which needs the "
                                                "model's own positioning runs; give an encoder hypothesis")
        states = file_states(ckpt, activations, sentences)
        y = probes.encoder_labels(states, hypothesis, words)
        return states.X, y, states.sentence, states.words, states
    if hypothesis in probes.DECODER_HYPOTHESES:
        lines = heldout_lines(ckpt, text)
        toks = frequent_targets(ckpt, lines, 20)
        rec = record(ckpt, build_examples(ckpt, lines, toks, range(1, ckpt.config.max_position + 1), per_cell),
                     gates=False)
        name = "position" if hypothesis == "decoder-position" else hypothesis
        X, y, g = probes.decoder_states(rec, name)
        return X, y, g, None, None
    states = sentence_states(ckpt, tagged, sentences, text)
    y = probes.encoder_labels(states, hypothesis, words)
    return states.X, y, states.sentence, states.words, states


def memory_for(ckpt: Checkpoint, part: str = "encoder", state: str = "h", max_delay: int = 20, sequences: int = 64,
               tagged=None, text: Sequence[Path] | None = None, progress: Callable[[int, int], None] | None = None,
               diff: tuple[str, str] | None = None, words: Sequence[str] = ()) -> dict:
    """σ curves of the encoder or decoder over held-out windows of max_delay + 4 tokens, per POS tag if tagged."""
    if part not in ("encoder", "decoder"):
        raise ParameterError("part", "{param} must be encoder or decoder")
    if state == "c" and ckpt.config.cell != "lstm":
        raise ParameterError("state", "{param} c needs an LSTM checkpoint")
    if ckpt.config.layers > 1 and ckpt.analysis_layer != 0:
        raise UserError(f"state gradients support the first layer of a {ckpt.config.layers}-layer model so far "
                        "(its Jacobians to the inputs); pass --layer 0")
    arch = ckpt.config.architecture
    if part == "encoder" and arch.bidirectional:
        raise UserError("state gradients follow a state forward in time; this encoder is bidirectional (its "
                        "backward direction reads the future): analyse the decoder, or a one-directional model")
    if part == "decoder" and (arch.rnn_input != ("embedding",) or arch.embed_activation != "none"):
        other = "the encoder is bidirectional too" if arch.bidirectional else "analyse the encoder (--part encoder)"
        raise UserError(f"state gradients of this decoder need its inputs' Jacobians, and it reads more than its "
                        f"embedding ({arch.describe()}); {other}")
    vocab = ckpt.vocab.src if part == "encoder" else ckpt.vocab
    cell = memory.Cell.from_module(getattr(ckpt.model, part))
    embedding = ckpt.model.source_embedding if part == "encoder" else ckpt.model.target_embedding
    emb = embedding.weight.detach().numpy()
    length = max_delay + 4
    if tagged:
        sents = tagged_tail(tagged, max_sentences=20000)
        stream = [(tokenize(w), t) for s in sents for w, t in s]
        ids = np.array([vocab.stoi.get(toks[0], vocab.unk_id) for toks, _ in stream if len(toks) == 1])
        tags = np.array([t for toks, t in stream if len(toks) == 1], dtype=object)
    else:
        lines = heldout_lines(ckpt, text)
        ids = np.array([i for line in lines for i in vocab.encode(line)])
        tags = None
    if len(ids) < length:
        raise UserError("not enough held-out text for state gradients")
    starts = np.linspace(0, len(ids) - length, num=min(sequences, len(ids) // length)).astype(int)
    seqs = [ids[s : s + length] for s in starts]
    classes = [tags[s : s + length] for s in starts] if tags is not None else None
    if words:  # a word-list class instead of (or without) tags: 'in-list' where the input is one of the words
        wanted = {vocab.stoi[w] for w in words if w in vocab.stoi}
        if not wanted:
            raise ParameterError("words", "{param}: none of these words is in the model's vocabulary")
        classes = [np.array(["in-list" if i in wanted else None for i in seq], dtype=object) for seq in seqs]
    rep = memory.memory_report(cell, emb, seqs, max_delay, state, classes, progress=progress)
    G, D = rep.pop("_G"), rep.pop("_D")
    if diff is not None and tags is not None:
        means = []
        for tag in diff:
            sel = ids[tags == tag]
            if not len(sel):
                raise ParameterError("diff", f"{{param}}: tag {tag!r} does not occur in the tagged corpus")
            means.append(emb[sel].mean(0))
        rep["relative_memory"] = {"diff": f"{diff[0]} - {diff[1]}", **memory.relative_memory(G, D, means[0] - means[1])}
    rep.update(part=part, sequences=len(seqs), length=length)
    return rep
