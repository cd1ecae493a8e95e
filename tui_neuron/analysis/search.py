"""Pattern search as a job (MatchJob): the states it searches — encoder states over a corpus, or decoder states of
positioning examples — and the places found in them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..checkpoint.format import Checkpoint
from ..errors import ParameterError, UserError
from .places import find_places, histograms


@dataclass(frozen=True)
class MatchJob:
    """LSTMVis's match: the places where the selected neurons are on (or off) for a window of steps."""

    neurons: tuple[int, ...] = ()
    threshold: float = 0.5
    below: bool = False  # on means below the threshold
    window: int = 3
    min_share: float = 1.0  # share of (neuron, step) cells that must be on
    part: str = "encoder"  # encoder: states over a corpus; decoder: states of positioning examples
    corpus: tuple[str, ...] = ()  # text files (default: the checkpoint's held-out text)
    sentences: int = 2000  # encoder: sentences searched; decoder: positioning examples
    top: int = 50
    bins: int = 20
    seed: int = 0
    preset: str = "full"



Sequences = tuple[list[np.ndarray], list[list[str]], list[str], list[list[str]], list[int]]


def _check(ckpt: Checkpoint, job: MatchJob) -> None:
    H = ckpt.config.hidden
    if not job.neurons:
        raise ParameterError("neurons", "{param}: select at least one neuron, e.g. 3,17")
    bad = [n for n in job.neurons if not 0 <= n < H]
    if bad:
        raise UserError(f"neuron {bad[0]} does not exist: this model has neurons 0..{H - 1}")
    if job.window < 1:
        raise ParameterError("window", f"{{param}} {job.window}: give at least 1 step")
    if not 0 < job.min_share <= 1:
        raise ParameterError("min_share", f"{{param}} {job.min_share}: give a share in (0, 1]")
    if job.part not in ("encoder", "decoder"):
        raise ParameterError("part", f"{{param}} {job.part!r}: use encoder or decoder")
    if job.sentences < 1 or job.top < 1 or job.bins < 1:
        raise ParameterError("sentences", "{param}, top and bins must be positive")


def encoder_sequences(ckpt: Checkpoint, job: MatchJob, progress: Callable[[str, int, int], None]) -> Sequences:
    """One sequence a sentence: the encoder state after each of its words."""
    from .probes import encoder_states
    from .recording import heldout_lines

    lines = heldout_lines(ckpt, [Path(c) for c in job.corpus] or None)[: job.sentences]
    if not lines:
        raise UserError("the corpus has no sentences to search")
    states = encoder_states(ckpt, lines, progress=lambda d, t: progress("recording encoder states", d, t))
    cols = list(job.neurons)
    seqs, tokens = [], []
    for i, sentence in enumerate(states.sentences):
        seqs.append(states.X[states.sentence == i][:, cols])
        tokens.append(list(sentence))
    return seqs, tokens, [" ".join(s) for s in tokens], [[] for _ in tokens], [1] * len(seqs)


def decoder_sequences(ckpt: Checkpoint, job: MatchJob, progress: Callable[[str, int, int], None]) -> Sequences:
    """One sequence a positioning example: the decoder state at t = -1 … T+1 (t ≤ 0: the last source tokens)."""
    from .recording import FIRST_T, build_examples, frequent_targets, heldout_lines, record

    lines = heldout_lines(ckpt, [Path(c) for c in job.corpus] or None)
    vocab = ckpt.vocab
    if not vocab.has_positions:
        raise ParameterError("part", "this model takes no control signals: search its encoder states ({param} encoder)")
    positions = range(1, ckpt.config.max_position + 1)
    words = frequent_targets(ckpt, lines, 10)
    per_cell = max(1, job.sentences // (len(words) * len(positions)))
    rec = record(ckpt, build_examples(ckpt, lines, words, positions, per_cell, job.seed), gates=False,
                 progress=lambda d, t: progress("recording decoder states", d, t))
    cols = list(job.neurons)
    seqs, tokens, sources, controls = [], [], [], []
    for e, ex in enumerate(rec.examples):
        T = int(rec.positions[e])
        n = T + 1 - FIRST_T + 1  # t = -1 … T+1
        seqs.append(rec.h[e, :n][:, cols])
        enc = ex.encoder_ids(vocab)
        labels = [vocab.itos[enc[len(enc) - 1 + t]] for t in range(FIRST_T, 1)]
        labels += [vocab.itos[int(o)] for o in rec.outputs[e, : T + 1]]
        tokens.append(labels)
        sources.append(" ".join(vocab.itos[i] for i in ex.source_ids))
        controls.append([f"{vocab.itos[tok]}@{pos}" for tok, pos in ex.controls])
    return seqs, tokens, sources, controls, [FIRST_T] * len(seqs)


def match_document(ckpt: Checkpoint, job: MatchJob, progress: Callable[[str, int, int], None]) -> dict:
    """Search, rank and describe the matches; the histograms of the selected neurons over every state."""
    _check(ckpt, job)
    seqs, tokens, sources, controls, first = (encoder_sequences if job.part == "encoder" else decoder_sequences)(
        ckpt, job, progress)
    progress("searching", 0, 1)
    places = find_places(seqs, job.threshold, job.below, job.window, job.min_share)
    progress("searching", 1, 1)
    everything = np.concatenate(seqs) if seqs else np.zeros((0, len(job.neurons)))
    matches = []
    for rank, p in enumerate(places[: job.top], 1):
        match = {"rank": rank, "sequence": p.sequence, "tokens": tokens[p.sequence], "start": p.start,
                 "end": p.start + job.window, "share": round(p.share, 6), "margin": round(p.margin, 6),
                 "source": sources[p.sequence], "controls": controls[p.sequence]}
        if job.part == "decoder":
            match["t_start"] = first[p.sequence] + p.start
        matches.append(match)
    return {"part": job.part, "neurons": list(job.neurons), "threshold": job.threshold, "below": job.below,
            "window": job.window, "min_share": job.min_share, "n_sequences": len(seqs),
            "n_states": int(len(everything)), "n_matches": len(places), "matches": matches,
            "histograms": histograms(everything, job.neurons, job.bins) if len(everything) else {}}
