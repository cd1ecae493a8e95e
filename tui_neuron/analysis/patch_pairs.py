"""The (clean, corrupted) pairs an activation-patching sweep compares: typed, read from a TSV, or generated.

A side of a pair is text in the swap syntax, `SOURCE WORD@T`, so that every pair can be rerun by hand with
`decode` and every patched cell is the `swap` intervention a user could type. Generated pairs come from the
checkpoint's held-out block:

- `position`: the same source and control token, at T and at T+1 (where the count lives);
- `token`: the same source and T, the control token A and another frequent token B (where the token lives);
- `source`: another source with the same control (where the source's content lives).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..checkpoint.format import Checkpoint
from ..checkpoint.validate import read_bytes
from ..errors import ParameterError, UserError
from ..model.examples import Example, example_from_text, split_controls, unknown_words

PAIR_KINDS = ("position", "token", "source")
MAX_PAIRS_FILE_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class Pair:
    """A clean and a corrupted input, each `SOURCE WORD@T`."""

    clean: str
    corrupt: str

    def examples(self, ckpt: Checkpoint, where: str = "") -> tuple[Example, Example]:
        """Both sides as examples; a side that does not parse is one line naming it (and `where` it came from)."""
        return (example_from_text(ckpt.vocab, self.clean, f"{where}clean input"),
                example_from_text(ckpt.vocab, self.corrupt, f"{where}corrupted input"))


def check_pairs(ckpt: Checkpoint, pairs: Sequence[Pair], where: Sequence[str] | None = None) -> None:
    """Every pair parses against this model (unknown control word, T beyond the model, no control): checked
    before any run, so a bad pair is one line naming it."""
    if not pairs:
        raise ParameterError("pairs", "{param}: no pairs to patch")
    for i, pair in enumerate(pairs):
        at = where[i] if where else ""
        pair.examples(ckpt, at)
        for side, text in (("clean", pair.clean), ("corrupted", pair.corrupt)):
            unknown = unknown_words(ckpt.vocab, split_controls(text)[0])
            if unknown:
                raise UserError(f"{at}{side} input {text!r}: {', '.join(map(repr, unknown[:5]))} not in the model's "
                                "vocabulary (a patch compares known words; pick others)")


def read_pairs_tsv(path: Path) -> list[Pair]:
    """`clean<TAB>corrupted` per line; blank lines and lines starting with # are skipped."""
    raw = read_bytes(path, "pairs file", MAX_PAIRS_FILE_BYTES)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise UserError(f"pairs file {path} is not UTF-8 text") from None
    pairs = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = line.split("\t")
        if len(fields) != 2 or not all(f.strip() for f in fields):
            raise UserError(f"pairs file {path}, line {n}: give two tab-separated inputs, clean then corrupted, "
                            "each like 'the king came king@2'")
        pairs.append(Pair(fields[0].strip(), fields[1].strip()))
    if not pairs:
        raise UserError(f"pairs file {path} holds no pairs (one 'clean<TAB>corrupted' per line)")
    return pairs


def pairs_where(path: Path, pairs: Sequence[Pair]) -> list[str]:
    return [f"pairs file {path}, pair {i + 1}: " for i in range(len(pairs))]


def _text(ckpt: Checkpoint, ex: Example, controls: Sequence[tuple[int, int]]) -> str | None:
    """The example's source with these controls as swap-syntax text, or None when the text would not read back
    as the same ids (a word the tokenizer splits, an unknown word)."""
    vocab = ckpt.vocab
    words = vocab.decode(ex.source_ids)
    text = " ".join(words + [f"{vocab.itos[tok]}@{pos}" for tok, pos in controls])
    try:
        back = example_from_text(vocab, text)
    except UserError:
        return None
    if back.source_ids != ex.source_ids or vocab.unk_id in ex.source_ids:
        return None
    return text


def generate_pairs(ckpt: Checkpoint, kind: str, examples: Sequence[Example], n: int, seed: int = 0) -> list[Pair]:
    """Up to `n` pairs of `kind` built from held-out examples (their first control only)."""
    if kind not in PAIR_KINDS:
        raise ParameterError("pairs", f"{{param}} {kind!r}: use one of {', '.join(PAIR_KINDS)}, or a TSV file")
    rng = np.random.default_rng(seed)
    top = ckpt.config.max_position
    usable = [e for e in examples if e.controls]
    tokens = list(dict.fromkeys(tok for e in usable for tok, _ in e.controls[:1]))
    out: list[Pair] = []
    for i in rng.permutation(len(usable)).tolist():
        ex = usable[i]
        tok, T = ex.controls[0]
        if kind == "position":
            corrupt_controls = [(tok, T + 1)] if T < top else [(tok, T - 1)]
            if T == top and T == 1:
                continue
            corrupt_ex = ex
        elif kind == "token":
            others = [t for t in tokens if t != tok]
            if not others:
                continue
            corrupt_controls, corrupt_ex = [(others[int(rng.integers(len(others)))], T)], ex
        else:
            corrupt_ex = usable[int(rng.integers(len(usable)))]
            if corrupt_ex.source_ids == ex.source_ids:
                continue
            corrupt_controls = [(tok, T)]
        clean, corrupt = _text(ckpt, ex, [(tok, T)]), _text(ckpt, corrupt_ex, corrupt_controls)
        if clean is not None and corrupt is not None:
            out.append(Pair(clean, corrupt))
        if len(out) == n:
            break
    if not out:
        raise UserError(f"no {kind} pairs could be made from {len(examples)} held-out examples (every source held a "
                        "word the model does not know); give pairs with --clean/--corrupt or a pairs file")
    return out
