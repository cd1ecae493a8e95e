"""Positioning accuracy: does each control token appear exactly at its position T under greedy decoding?

Scored on a checkpoint's recorded held-out block (never training text) or on a new corpus."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..checkpoint.format import Checkpoint
from ..errors import ParameterError, UserError
from ..model.examples import Example
from ..model.seq2seq import Seq2Seq, trim_at_eos
from ..model.tokenizer import Vocab
from .corpus import Corpus, ExampleSource, SamplingConfig, collate


@dataclass
class Accuracy:
    correct: int = 0
    total: int = 0

    @property
    def value(self) -> float:
        return self.correct / self.total if self.total else float("nan")

    def add(self, other: Accuracy) -> None:
        self.correct += other.correct
        self.total += other.total

    def to_json(self) -> dict:
        return {"accuracy": self.value, "correct": self.correct, "n": self.total}


@dataclass
class PositioningReport:
    overall: Accuracy = field(default_factory=Accuracy)  # per example: every control landed
    per_signal: Accuracy = field(default_factory=Accuracy)  # per control signal
    per_position: dict[int, Accuracy] = field(default_factory=lambda: defaultdict(Accuracy))
    per_n_signals: dict[int, Accuracy] = field(default_factory=lambda: defaultdict(Accuracy))
    loss: float | None = None

    def to_json(self) -> dict:
        return {
            "overall": self.overall.to_json(),
            "per_signal": self.per_signal.to_json(),
            "per_position": {str(k): v.to_json() for k, v in sorted(self.per_position.items())},
            "per_n_signals": {str(k): v.to_json() for k, v in sorted(self.per_n_signals.items())},
            "heldout_loss": self.loss,
        }


def landed(output_ids: Sequence[int], token_id: int, position: int) -> bool:
    return len(output_ids) >= position and output_ids[position - 1] == token_id


def score(examples: Sequence[Example], outputs: Sequence[Sequence[int]]) -> PositioningReport:
    report = PositioningReport()
    for ex, out in zip(examples, outputs):
        hits = [landed(out, tok, pos) for tok, pos in ex.controls]
        for (_, pos), hit in zip(ex.controls, hits):
            report.per_signal.total += 1
            report.per_signal.correct += hit
            report.per_position[pos].total += 1
            report.per_position[pos].correct += hit
        report.overall.total += 1
        report.overall.correct += all(hits)
        report.per_n_signals[len(ex.controls)].total += 1
        report.per_n_signals[len(ex.controls)].correct += all(hits)
    return report


DecodeFn = Callable[[Seq2Seq, Vocab, Sequence[Example]], list[list[int]]]


@torch.no_grad()
def teacher_forced_loss(model: Seq2Seq, vocab: Vocab, examples: Sequence[Example], batch_size: int = 512) -> float:
    total, count = 0.0, 0
    for i in range(0, len(examples), batch_size):
        b = collate(examples[i : i + batch_size], vocab)
        n = b.n_target_tokens
        total += float(model.loss(b.src, b.src_len, b.tgt_in, b.tgt_out, pad_id=vocab.pad_id)) * n
        count += n
    return total / max(count, 1)


def evaluate(
    model: Seq2Seq, vocab: Vocab, examples: Sequence[Example], decode: DecodeFn | None = None, with_loss: bool = True
) -> PositioningReport:
    """Greedy-decode every example (through the instrumented stepper by default) and score positioning."""
    if decode is None:
        from ..model.stepper import decode_examples

        decode = decode_examples
    outputs = decode(model, vocab, examples)
    report = score(examples, [trim_at_eos(o, vocab.eos_id) for o in outputs])
    if with_loss and all(e.target_ids is not None for e in examples):
        report.loss = teacher_forced_loss(model, vocab, examples)
    return report

def heldout_examples(
    ckpt: Checkpoint,
    corpus: Sequence[Path] | None = None,
    corpus_dir: Sequence[Path] | None = None,
    n: int = 3000,
    seed: int = 4321,
    signals: int | None = None,
) -> tuple[str, list[Example]]:
    """Examples drawn from the checkpoint's held-out block (or all of a new corpus), never training text."""
    rec = ckpt.heldout
    cfg = ckpt.config
    if not ckpt.vocab.has_positions:
        raise UserError("this model has no position tokens, so there is no positioning to evaluate")
    if n < 1:
        raise ParameterError("examples", "{param} must be at least 1")
    k = signals or cfg.n_signals
    if not 1 <= k <= cfg.max_position:
        raise ParameterError("n_signals", f"{{param}} {k}: must be between 1 and {cfg.max_position}")
    sampling = SamplingConfig(rec.get("mode", "spans"), rec.get("min_len", 4), rec.get("max_len", cfg.max_len), k)
    if corpus:
        lines = Corpus.load(corpus, heldout_fraction=0.0).lines("all")
        label = f"all of {', '.join(str(c) for c in corpus)}"
    else:
        if not rec.get("files"):
            raise UserError("this checkpoint records no held-out block; pass a CORPUS to score")
        lines = Corpus.from_heldout_record(rec, corpus_dir, _folder(ckpt)).lines("heldout")
        label = f"held-out block of {len(rec['files'])} corpus files"
    return label, ExampleSource(ckpt.vocab, lines, sampling).sample_many(n, seed, cfg.max_position)


def _folder(ckpt: Checkpoint) -> Path | None:
    return Path(ckpt.path).parent if ckpt.path else None


def evaluate_checkpoint(ckpt: Checkpoint, corpus=None, corpus_dir=None, n: int = 3000, seed: int = 4321,
                        signals: int | None = None) -> dict:
    label, examples = heldout_examples(ckpt, corpus, corpus_dir, n, seed, signals)
    report = evaluate(ckpt.model, ckpt.vocab, examples)
    return {"checkpoint": str(ckpt.path), "source": label, "seed": seed, "report": report.to_json()}
