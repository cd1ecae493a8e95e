"""Word-level tokenizer and vocabulary with special and position tokens.

The control signal `TOKEN <pos_T>` is appended to the source, so position tokens
are ordinary vocabulary entries. A vocabulary built by `tui-neuron train` puts the
four specials first, then `<pos_1>`..`<pos_N>`, then words by frequency; an
imported one keeps its own order (`itos`), names its specials, and may have no
position tokens at all (then controls are unavailable, but the model still runs).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<bos>", "<eos>"
SPECIALS = (PAD, UNK, BOS, EOS)
PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3  # in vocabularies built by `tui-neuron train`
POSITION_PATTERN = "<pos_{T}>"

# the split rules a checkpoint may name; a file names one of these, never a pattern of its own (no ReDoS)
SPLIT_RULES = {
    "tui-neuron-words": r"[a-z0-9]+(?:[-'][a-z0-9]+)*|'[a-z]+|[^\sa-z0-9]",  # words; punctuation its own token
    "whitespace": r"\S+",
}
_TOKEN_RE = re.compile(SPLIT_RULES["tui-neuron-words"])


def tokenize(text: str) -> list[str]:
    """Lowercase and split into words, with punctuation as tokens of its own."""
    return _TOKEN_RE.findall(text.lower())


@dataclass(frozen=True)
class Tokenizer:
    """How text becomes tokens: a named split rule (see SPLIT_RULES), lowercasing first or not."""

    name: str = "tui-neuron-words"
    version: int = 1
    lowercase: bool = True
    source_prefix: tuple[str, ...] = ()  # tokens the model's own code put before every source (e.g. <sos>)
    source_suffix: tuple[str, ...] = ()  # and after it (e.g. <eos>)

    def __call__(self, text: str) -> list[str]:
        return re.findall(SPLIT_RULES[self.name], text.lower() if self.lowercase else text)

    def wrap_source(self, tokens: list[str]) -> list[str]:
        """A typed source with the recorded source specials added, unless it already has them."""
        head, tail = list(self.source_prefix), list(self.source_suffix)
        if head and tokens[: len(head)] != head:
            tokens = head + tokens
        if tail and tokens[len(tokens) - len(tail) :] != tail:
            tokens = tokens + tail
        return tokens

    def to_json(self) -> dict:
        data: dict = {"name": self.name, "version": self.version, "lowercase": self.lowercase,
                      "pattern": SPLIT_RULES[self.name]}
        if self.source_prefix or self.source_suffix:  # only when asked: older files keep their digest
            data.update(source_prefix=list(self.source_prefix), source_suffix=list(self.source_suffix))
        return data


def position_token(position: int, pattern: str = POSITION_PATTERN) -> str:
    return pattern.replace("{T}", str(position))


@dataclass(frozen=True)
class SpecialTokens:
    """The spelling of the four specials and of position tokens (`{T}` stands for the position; None: none)."""

    pad: str = PAD
    unk: str = UNK
    bos: str = BOS
    eos: str = EOS
    position_pattern: str | None = POSITION_PATTERN

    def to_json(self) -> dict:
        return {"pad": self.pad, "unk": self.unk, "bos": self.bos, "eos": self.eos,
                "position_pattern": self.position_pattern}


class Vocab:
    """Token <-> id map over a full id-ordered token list, with the ids of the specials and positions."""

    def __init__(self, itos: list[str], specials: SpecialTokens = SpecialTokens(), max_position: int | None = None,
                 tokenizer: Tokenizer = Tokenizer()):
        self.itos = list(itos)
        self.specials = specials
        self.tokenize = tokenizer
        self.stoi = {tok: i for i, tok in enumerate(self.itos)}
        missing = [t for t in (specials.pad, specials.unk, specials.bos, specials.eos) if t not in self.stoi]
        if missing:
            raise ValueError(f"special token {missing[0]!r} is not in the vocabulary")
        self.pad_id, self.unk_id = self.stoi[specials.pad], self.stoi[specials.unk]
        self.bos_id, self.eos_id = self.stoi[specials.bos], self.stoi[specials.eos]
        found = 0
        if specials.position_pattern:
            while position_token(found + 1, specials.position_pattern) in self.stoi:
                found += 1
        self.max_position = found if max_position is None else min(max_position, found)
        reserved = {self.pad_id, self.unk_id, self.bos_id, self.eos_id}
        reserved |= {self.position_id(p) for p in range(1, self.max_position + 1)}
        self._reserved = frozenset(reserved)
        self._word_list = [i for i in range(len(self.itos)) if i not in self._reserved]
        self._word_ids = None
        self.source: Vocab | None = None  # a two-vocabulary model's source side (None: this vocabulary reads both)

    @property
    def src(self) -> Vocab:
        """The vocabulary the encoder reads: the source side of a two-vocabulary model, else this one."""
        return self if self.source is None else self.source

    @property
    def word_ids(self):
        """The word ids as a tensor (made on first use: the vocabulary itself needs no torch)."""
        if self._word_ids is None:
            import torch

            self._word_ids = torch.tensor(self._word_list, dtype=torch.long)
        return self._word_ids

    @classmethod
    def standard(cls, words: list[str], max_position: int) -> Vocab:
        """The layout `tui-neuron train` builds: specials, `<pos_1..N>`, then the words."""
        return cls([*SPECIALS, *(position_token(p) for p in range(1, max_position + 1)), *words],
                   SpecialTokens(), max_position)

    @classmethod
    def build(cls, token_lists: Iterable[list[str]], size: int, max_position: int) -> Vocab:
        """Keep the `size` most frequent words (ties broken alphabetically, so builds are reproducible)."""
        counts: Counter[str] = Counter()
        for tokens in token_lists:
            counts.update(tokens)
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        return cls.standard([w for w, _ in ranked[:size]], max_position)

    def __len__(self) -> int:
        return len(self.itos)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocab) and self.itos == other.itos and self.specials == other.specials \
            and self.max_position == other.max_position and self.tokenize == other.tokenize \
            and self.source == other.source

    @property
    def words(self) -> list[str]:
        return [self.itos[i] for i in self._word_list]

    @property
    def first_word_id(self) -> int:
        return self._word_list[0]

    @property
    def has_positions(self) -> bool:
        return self.max_position > 0

    def position_id(self, position: int) -> int:
        assert self.specials.position_pattern is not None
        return self.stoi[position_token(position, self.specials.position_pattern)]

    def is_word_id(self, token_id: int) -> bool:
        return 0 <= token_id < len(self.itos) and token_id not in self._reserved

    def encode(self, tokens: Iterable[str]) -> list[int]:
        return [self.stoi.get(t, self.unk_id) for t in tokens]

    def decode(self, ids: Iterable[int]) -> list[str]:
        return [self.itos[i] if 0 <= i < len(self.itos) else self.specials.unk for i in ids]

    def to_json(self) -> dict:
        """The full id-ordered list, the specials, the tokenizer and the largest position."""
        return {"itos": self.itos, "max_position": self.max_position, "special_tokens": self.specials.to_json(),
                "tokenizer": self.tokenize.to_json()}

    @classmethod
    def from_json(cls, data: dict) -> Vocab:
        """The inverse of to_json, for files this tool wrote (untrusted files go through metadata.py)."""
        tk = data["tokenizer"]
        return cls(list(data["itos"]), SpecialTokens(**data["special_tokens"]), int(data["max_position"]),
                   Tokenizer(tk["name"], tk["version"], tk["lowercase"], tuple(tk.get("source_prefix", ())),
                             tuple(tk.get("source_suffix", ()))))

    __hash__ = None  # type: ignore[assignment]
