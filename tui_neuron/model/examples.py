"""Control signals and examples: a typed source with `WORD@T` controls, as the model reads it."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import UserError
from .tokenizer import Vocab

_CONTROL_RE = re.compile(r"^(?P<word>\S+)@(?P<pos>\d+)$")


@dataclass(frozen=True)
class ControlSignal:
    """Ask the decoder to put `token` at 1-based output position `position`."""

    token: str
    position: int

    @classmethod
    def parse(cls, text: str) -> ControlSignal:
        match = _CONTROL_RE.match(text.strip())
        if not match:
            raise UserError(f"control {text!r} is not WORD@POSITION (for example king@3)")
        return cls(match["word"].lower(), int(match["pos"]))

    def __str__(self) -> str:
        return f"{self.token}@{self.position}"


def split_controls(text: str) -> tuple[str, list[ControlSignal]]:
    """`the king is here king@2` -> ("the king is here", [king@2]): trailing WORD@T words are controls (the swap
    syntax and the compare view's source B)."""
    words = text.split()
    controls: list[ControlSignal] = []
    while words and "@" in words[-1]:
        controls.insert(0, ControlSignal.parse(words.pop()))
    return " ".join(words), controls


@dataclass
class Example:
    """One source with its control signals, and the reference target when known."""

    source_ids: list[int]
    controls: list[tuple[int, int]]  # (token id, position T)
    target_ids: list[int] | None = None

    def encoder_ids(self, vocab: Vocab) -> list[int]:
        """`x1 … xn TOKEN <pos_T>` for every signal, with no separator (as in the paper)."""
        ids = list(self.source_ids)
        for tok, pos in self.controls:
            ids += [tok, vocab.position_id(pos)]
        return ids


def make_example(vocab: Vocab, source: str, controls: Sequence[ControlSignal]) -> Example:
    """Validate a user-typed source and controls against the vocabulary; raise UserError with a fix."""
    tokens = vocab.tokenize(source)
    if not tokens:
        raise UserError("the source is empty: type a sentence, e.g. \"the queen is here\"")
    tokens = vocab.tokenize.wrap_source(tokens)
    if not vocab.has_positions:
        if controls:
            raise UserError("this model has no position tokens, so it takes no control signals; "
                            "run it on the source alone")
        return Example(vocab.src.encode(tokens), [])
    if not controls:
        raise UserError("no control signal: add one as WORD@POSITION, e.g. queen@2")
    pairs = []
    for c in controls:
        if c.position < 1 or c.position > vocab.max_position:
            raise UserError(
                f"control {c}: position {c.position} is outside 1..{vocab.max_position}, the model's maximum"
            )
        tid = vocab.stoi.get(c.token)
        if tid is None or not vocab.is_word_id(tid):
            raise UserError(f"control {c}: {c.token!r} is not in the model's vocabulary; pick another word")
        pairs.append((tid, c.position))
    return Example(vocab.encode(tokens), pairs)


def example_from_text(vocab: Vocab, text: str, what: str = "source") -> Example:
    """A sentence whose trailing WORD@T words are its controls (the swap syntax, a patching pair's side)."""
    source, controls = split_controls(text)
    if not controls and vocab.has_positions:
        raise UserError(f"{what} {text!r} needs control signals at its end, e.g. 'the queen came queen@2'")
    return make_example(vocab, source, controls)


def unknown_words(vocab: Vocab, source: str) -> list[str]:
    """The source's words the vocabulary lacks (the model reads each as its unknown token)."""
    return [w for w in vocab.tokenize(source) if w not in vocab.src.stoi]


def unknown_warning(vocab: Vocab, source: str) -> str | None:
    """A warning when at least half of the source is unknown to the model, else None."""
    words, unknown = vocab.tokenize(source), unknown_words(vocab, source)
    if not words or 2 * len(unknown) < len(words):
        return None
    shown = ", ".join(unknown[:6]) + ("…" if len(unknown) > 6 else "")
    return (f"{len(unknown)} of {len(words)} source words are unknown to this model and read as "
            f"{vocab.src.itos[vocab.src.unk_id]}: {shown}")
