"""The schema of a checkpoint's metadata, checked field by field before any model or vocabulary is built.

Types are strict (256.0 is not a hidden size, true is not a length) and every size
is bounded, so a hostile or damaged file is one line naming the field, never a
TypeError inside torch or a vocabulary of 10^9 tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..errors import UserError
from .seq2seq import ModelConfig
from .tokenizer import SPECIALS, Vocab, position_token
from .validate import parse_json_limited, validated

MAX_VOCAB = 1_000_000
MAX_POSITION = 1000


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)


class ConfigSchema(_Strict):
    vocab_size: int = Field(ge=len(SPECIALS) + 1, le=MAX_VOCAB)
    cell: Literal["gru", "lstm"]
    emb_dim: int = Field(ge=1, le=8192)
    hidden: int = Field(ge=1, le=8192)
    max_position: int = Field(ge=0, le=MAX_POSITION)
    n_signals: int = Field(default=1, ge=1, le=MAX_POSITION)
    max_len: int = Field(default=16, ge=1, le=MAX_POSITION)

    @model_validator(mode="after")
    def _positions_fit(self) -> ConfigSchema:
        if self.max_position > self.max_len:
            raise ValueError(f"max_position {self.max_position} exceeds max_len {self.max_len}")
        return self


class VocabSchema(_Strict):
    words: list[str] = Field(max_length=MAX_VOCAB)
    max_position: int = Field(ge=0, le=MAX_POSITION)

    @model_validator(mode="after")
    def _distinct(self) -> VocabSchema:
        reserved = set(SPECIALS) | {position_token(p) for p in range(1, self.max_position + 1)}
        seen: set[str] = set()
        for w in self.words:
            if not w or len(w) > 200:
                raise ValueError("every word must be 1 to 200 characters")
            if w in reserved or w in seen:
                raise ValueError(f"word {w!r} is repeated or reserved")
            seen.add(w)
        return self


class HeldoutFileSchema(_Strict):
    model_config = ConfigDict(strict=True, extra="allow", frozen=True)
    name: str = Field(min_length=1, max_length=4096)
    path: str | None = Field(default=None, max_length=4096)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    heldout_start: int = Field(ge=0)
    lines: int | None = Field(default=None, ge=0)


class HeldoutSchema(_Strict):
    model_config = ConfigDict(strict=True, extra="allow", frozen=True)
    files: list[HeldoutFileSchema] = Field(default_factory=list, max_length=100_000)
    mode: Literal["spans", "lines"] = "spans"
    min_len: int = Field(default=4, ge=1, le=MAX_POSITION)
    max_len: int = Field(default=16, ge=1, le=MAX_POSITION)
    n_signals: int = Field(default=1, ge=1, le=MAX_POSITION)
    heldout_fraction: float = Field(default=0.05, ge=0, lt=1)


class TrainingSchema(_Strict):
    model_config = ConfigDict(strict=False, extra="allow", frozen=True)
    steps: int | None = Field(default=None, ge=0, strict=True)
    heldout_accuracy: float | None = None
    seconds: float | None = Field(default=None, ge=0)


@dataclass
class Metadata:
    config: ModelConfig
    vocab: Vocab
    heldout: dict
    training: dict
    tensors_sha256: str | None


def _field(meta: dict[str, str], key: str, path: Path, required: bool = True) -> Any:
    if key not in meta:
        if required:
            raise UserError(f"{path}: metadata field {key!r} is missing; is this a tui-neuron checkpoint?")
        return {}
    value = parse_json_limited(meta[key], f"{path}: metadata field {key!r}")
    if not isinstance(value, dict):
        raise UserError(f"{path}: metadata field {key!r} must be a JSON object")
    return value


def parse_metadata(meta: dict[str, str], path: Path) -> Metadata:
    """Validate a tui-neuron/1 metadata block; the first problem is one UserError naming the field."""
    from .checkpoint import FORMAT

    if meta.get("format") != FORMAT:
        raise UserError(f"{path}: metadata 'format' is {str(meta.get('format'))[:40]!r}, expected {FORMAT!r}")
    cfg = validated(ConfigSchema, _field(meta, "config", path), f"{path}: config")
    voc = validated(VocabSchema, _field(meta, "vocab", path), f"{path}: vocab")
    heldout = _field(meta, "heldout", path, required=False)
    validated(HeldoutSchema, heldout, f"{path}: heldout")
    training = _field(meta, "training", path, required=False)
    validated(TrainingSchema, training, f"{path}: training")
    vocab = Vocab(list(voc.words), voc.max_position)
    if len(vocab) != cfg.vocab_size or voc.max_position != cfg.max_position:
        raise UserError(f"{path}: vocabulary ({len(vocab)} tokens, max position {voc.max_position}) does not match "
                        f"config vocab_size {cfg.vocab_size}, max_position {cfg.max_position}")
    digest = meta.get("tensors_sha256")
    if digest is not None and (len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest)):
        raise UserError(f"{path}: metadata 'tensors_sha256' is not a sha256 hex digest")
    config = ModelConfig(cfg.vocab_size, cfg.cell, cfg.emb_dim, cfg.hidden, cfg.max_position, cfg.n_signals, cfg.max_len)
    return Metadata(config, vocab, heldout, training, digest)
