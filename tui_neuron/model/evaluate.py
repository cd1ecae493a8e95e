"""Positioning accuracy: does each control token appear exactly at its position T under greedy decoding?"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from .data import Example, collate
from .seq2seq import Seq2Seq, trim_at_eos
from .tokenizer import Vocab


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
        from .stepper import decode_examples

        decode = decode_examples
    outputs = decode(model, vocab, examples)
    report = score(examples, [trim_at_eos(o, vocab.eos_id) for o in outputs])
    if with_loss and all(e.target_ids is not None for e in examples):
        report.loss = teacher_forced_loss(model, vocab, examples)
    return report
