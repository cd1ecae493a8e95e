"""Word-level tokenizer and vocabulary with special and position tokens.

The control signal `TOKEN <pos_T>` is appended to the source, so position tokens
are ordinary vocabulary entries; they follow the four specials so that ids are
stable for a given max position.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<bos>", "<eos>"
SPECIALS = (PAD, UNK, BOS, EOS)
PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3

_TOKEN_RE = re.compile(r"[a-z0-9]+(?:[-'][a-z0-9]+)*|'[a-z]+|[^\sa-z0-9]")


def tokenize(text: str) -> list[str]:
    """Lowercase and split into words, with punctuation as tokens of its own."""
    return _TOKEN_RE.findall(text.lower())


def position_token(position: int) -> str:
    return f"<pos_{position}>"


@dataclass
class Vocab:
    """Token <-> id map: specials, then `<pos_1>`..`<pos_N>`, then words by frequency."""

    words: list[str]
    max_position: int
    itos: list[str] = field(init=False)
    stoi: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        self.itos = [*SPECIALS, *(position_token(p) for p in range(1, self.max_position + 1)), *self.words]
        self.stoi = {tok: i for i, tok in enumerate(self.itos)}

    @classmethod
    def build(cls, token_lists: Iterable[list[str]], size: int, max_position: int) -> Vocab:
        """Keep the `size` most frequent words (ties broken alphabetically, so builds are reproducible)."""
        counts: Counter[str] = Counter()
        for tokens in token_lists:
            counts.update(tokens)
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        return cls([w for w, _ in ranked[:size]], max_position)

    def __len__(self) -> int:
        return len(self.itos)

    @property
    def first_word_id(self) -> int:
        return len(SPECIALS) + self.max_position

    def position_id(self, position: int) -> int:
        return len(SPECIALS) + position - 1

    def is_word_id(self, token_id: int) -> bool:
        return token_id >= self.first_word_id

    def encode(self, tokens: Iterable[str]) -> list[int]:
        return [self.stoi.get(t, UNK_ID) for t in tokens]

    def decode(self, ids: Iterable[int]) -> list[str]:
        return [self.itos[i] if 0 <= i < len(self.itos) else UNK for i in ids]

    def to_json(self) -> dict:
        return {"words": self.words, "max_position": self.max_position}

    @classmethod
    def from_json(cls, data: dict) -> Vocab:
        return cls(list(data["words"]), int(data["max_position"]))
