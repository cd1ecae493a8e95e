"""Activations of any corpus, streamed: sentences are run through the stepper in batches and handed on one by one,
so a writer can put them on disk as they come and memory stays bounded whatever the corpus size.

Each sentence gives its tokens and an array [tracks, tokens, hidden], one track per (state, layer) asked for
(`h/l0`, `z/l0`, …). The encoder part gives the state after each source word (sentences cut to the model's
max_len, as every encoder analysis reads them); the decoder part runs each sentence greedily with a control
signal (its own first word at a random T) and gives the state that emitted each output token.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..checkpoint.format import Checkpoint
from ..errors import ParameterError, UserError
from ..model.examples import Example
from ..model.interventions import value_hooks
from ..model.stepper import Stepper

PARTS = ("encoder", "decoder")
CONTROLS = ("random", "none")


@dataclass(frozen=True)
class ExportConfig:
    part: str = "encoder"
    states: tuple[str, ...] = ("h",)
    layers: tuple[int, ...] = ()  # empty: every layer
    limit: int | None = None  # sentences
    controls: str = "random"  # decoder runs: each sentence's first word at a random T, or none
    batch: int = 1024  # sentences per stepper run: larger batches use the cores better, memory stays small
    seed: int = 0

    def check(self, ckpt: Checkpoint) -> None:
        cfg = ckpt.config
        known = value_hooks(cfg.cell)
        if self.part not in PARTS:
            raise ParameterError("part", f"{{param}} {self.part!r}: use encoder or decoder")
        bad = [s for s in self.states if s not in known]
        if bad or not self.states:
            raise ParameterError("states", f"{{param}} {','.join(bad) or 'empty'}: a {cfg.cell.upper()} has "
                                           f"{', '.join(known)}")
        if any(not 0 <= k < cfg.layers for k in self.layers):
            raise ParameterError("layers", f"{{param}} {self.layers}: the model has layers 0..{cfg.layers - 1}")
        if self.controls not in CONTROLS:
            raise ParameterError("controls", f"{{param}} {self.controls!r}: use random or none")
        if self.part == "decoder" and self.controls == "random" and not ckpt.vocab.has_positions:
            raise ParameterError("controls", "this model takes no control signals: give {param} none")
        if self.limit is not None and self.limit < 1:
            raise ParameterError("limit", "{param} must be at least 1")

    def tracks(self, n_layers: int) -> list[tuple[str, int]]:
        return [(s, k) for k in (self.layers or range(n_layers)) for s in self.states]


def read_sentences(paths: Sequence[Path], limit: int | None = None) -> Iterator[str]:
    """Non-empty lines of text files (folders give their .txt files), read lazily; a file that is not UTF-8
    text is one line naming it."""
    from ..training.corpus import corpus_files

    given = 0
    for f in corpus_files(paths):
        try:
            with f.open(encoding="utf-8") as lines:
                for line in lines:
                    if "\x00" in line:
                        raise UserError(f"corpus file {f} is not text (it holds NUL bytes)")
                    if line.strip():
                        yield line
                        given += 1
                        if limit is not None and given >= limit:
                            return
        except UnicodeDecodeError:
            raise UserError(f"corpus file {f} is not UTF-8 text") from None


def read_tagged_sentences(paths: Sequence[Path], limit: int | None = None) -> Iterator[list[tuple[str, str]]]:
    """(word, TAG) sentences of `word/TAG` files, each word as the model's tokenizer reads it (a word it would
    split is left out, with its tag, as the probes do)."""
    from ..model.tokenizer import tokenize
    from .probes import read_tagged

    for sentence in read_tagged(paths, limit):
        kept = [(toks[0], tag) for word, tag in sentence if len(toks := tokenize(word)) == 1]
        if kept:
            yield kept


Sentence = tuple[list[str], "np.ndarray", "list[str] | None"]  # tokens, [tracks, tokens, hidden], tags


def stream_activations(ckpt: Checkpoint, lines: Iterable[str | list[tuple[str, str]]], cfg: ExportConfig,
                       progress: Callable[[int], None] = lambda n: None) -> Iterator[Sentence]:
    """(tokens, [tracks, tokens, hidden] float32, tags or None) per sentence, in corpus order; a line is text,
    or (word, TAG) pairs from a tagged corpus (tags only on the encoder part); empty sentences are skipped."""
    cfg.check(ckpt)
    stepper = Stepper(ckpt.model, ckpt.vocab)
    tracks = cfg.tracks(ckpt.config.layers)
    rng = np.random.default_rng(cfg.seed)
    batch: list[list[str]] = []
    tags: list[list[str] | None] = []
    for line in lines:
        if isinstance(line, str):
            words, line_tags = ckpt.vocab.tokenize(line)[: ckpt.config.max_len], None
        else:
            words, line_tags = [w for w, _ in line][: ckpt.config.max_len], [t for _, t in line][: ckpt.config.max_len]
        if words:
            batch.append(words)
            tags.append(line_tags)
        if len(batch) == cfg.batch:
            yield from _run(stepper, ckpt, batch, tags, tracks, cfg, rng)
            progress(len(batch))
            batch, tags = [], []
    if batch:
        yield from _run(stepper, ckpt, batch, tags, tracks, cfg, rng)
        progress(len(batch))


def _run(stepper: Stepper, ckpt: Checkpoint, batch: list[list[str]], tags: list[list[str] | None],
         tracks: list[tuple[str, int]], cfg: ExportConfig, rng: np.random.Generator) -> Iterator[Sentence]:
    vocab = ckpt.vocab
    gates = any(s not in ("h", "c") for s, _ in tracks)
    if cfg.part == "encoder":
        examples = [Example(vocab.src.encode(w), []) for w in batch]
        trace = stepper.run(examples, max_steps=1, record_gates=gates, topk=0, stop_at_eos=False)
    else:
        examples = [Example(vocab.src.encode(w), _control(vocab, w, ckpt.config.max_position, cfg, rng))
                    for w in batch]
        trace = stepper.run(examples, record_gates=gates, topk=0)
    values = {(s, k): trace.for_layer(k).at_hook(s).numpy() for s, k in tracks}
    for b, words in enumerate(batch):
        sentence_tags = tags[b] if cfg.part == "encoder" else None
        if cfg.part == "encoder":
            rows = range(trace.n_enc - len(words), trace.n_enc)
            tokens = words
        else:
            out = trace.output_ids(b)
            if not out:
                continue
            rows = range(trace.n_enc, trace.n_enc + len(out))
            tokens = vocab.decode(out)
        acts = np.stack([values[key][b, rows.start : rows.stop] for key in tracks]).astype(np.float32)
        yield tokens, acts, sentence_tags


def _control(vocab, words: list[str], max_position: int, cfg: ExportConfig, rng: np.random.Generator
             ) -> list[tuple[int, int]]:
    if cfg.controls == "none":
        return []
    tid = vocab.stoi.get(words[0], vocab.unk_id)
    if not vocab.is_word_id(tid):
        tid = int(vocab.word_ids[0])
    return [(tid, int(rng.integers(1, max_position + 1)))]


def track_names(cfg: ExportConfig, n_layers: int) -> list[str]:
    return [f"{s}/l{k}" for s, k in cfg.tracks(n_layers)]
