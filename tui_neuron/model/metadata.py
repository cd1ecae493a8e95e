"""The schema of a checkpoint's metadata, checked field by field before any model or vocabulary is built.

Types are strict (256.0 is not a hidden size, true is not a length) and every size
is bounded, so a hostile or damaged file is one line naming the field, never a
TypeError inside torch or a vocabulary of 10^9 tokens.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..errors import UserError
from .seq2seq import ModelConfig
from .tokenizer import SPECIALS, SPLIT_RULES, SpecialTokens, Tokenizer, Vocab, position_token
from .validate import parse_json_limited, validated

MAX_VOCAB = 1_000_000
MAX_POSITION = 1000


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True, defer_build=True)


class ConfigSchema(_Strict):
    """Format 1's config (layers and separate embeddings came with format 2)."""

    vocab_size: int = Field(ge=len(SPECIALS) + 1, le=MAX_VOCAB)
    cell: Literal["gru", "lstm"]
    emb_dim: int = Field(ge=1, le=8192)
    hidden: int = Field(ge=1, le=8192)
    max_position: int = Field(ge=0, le=MAX_POSITION)
    n_signals: int = Field(ge=1, le=MAX_POSITION)
    max_len: int = Field(ge=1, le=MAX_POSITION)
    layers: int = Field(default=1, ge=1, le=16)
    shared_embedding: bool = True

    @model_validator(mode="after")
    def _positions_fit(self) -> ConfigSchema:
        if self.max_position > self.max_len:
            raise ValueError(f"max_position {self.max_position} exceeds max_len {self.max_len}")
        return self


class ConfigV2Schema(ConfigSchema):
    """Format 2: every field present, nothing unknown (a misspelt key would otherwise fall back to a default)."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, defer_build=True)
    layers: int = Field(ge=1, le=16)
    shared_embedding: bool


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


class VocabV2Schema(_Strict):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, defer_build=True)
    itos: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(min_length=len(SPECIALS) + 1,
                                                                            max_length=MAX_VOCAB)

    @model_validator(mode="after")
    def _distinct(self) -> VocabV2Schema:
        if len(set(self.itos)) != len(self.itos):
            raise ValueError("tokens must be distinct")
        return self


class SpecialsSchema(_Strict):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, defer_build=True)
    pad: str = Field(min_length=1, max_length=200)
    unk: str = Field(min_length=1, max_length=200)
    bos: str = Field(min_length=1, max_length=200)
    eos: str = Field(min_length=1, max_length=200)
    position_pattern: str | None = Field(default=None, max_length=200, pattern=r"^[^{}]*\{T\}[^{}]*$")


class TokenizerSchema(_Strict):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, defer_build=True)
    name: Literal["tui-neuron-words", "whitespace"]
    version: Literal[1]
    lowercase: bool
    pattern: str | None = Field(default=None, max_length=1000)

    @model_validator(mode="after")
    def _pattern_is_the_named_one(self) -> TokenizerSchema:
        if self.pattern is not None and self.pattern != SPLIT_RULES[self.name]:
            raise ValueError(f"pattern differs from the {self.name!r} split rule (the name decides the rule)")
        return self


class HeldoutFileSchema(_Strict):
    model_config = ConfigDict(strict=True, extra="allow", frozen=True, defer_build=True)
    name: str = Field(min_length=1, max_length=4096)
    path: str | None = Field(default=None, max_length=4096)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    heldout_start: int = Field(ge=0)
    lines: int | None = Field(default=None, ge=0)


class HeldoutSchema(_Strict):
    model_config = ConfigDict(strict=True, extra="allow", frozen=True, defer_build=True)
    files: list[HeldoutFileSchema] = Field(default_factory=list, max_length=100_000)
    mode: Literal["spans", "lines"] = "spans"
    min_len: int = Field(default=4, ge=1, le=MAX_POSITION)
    max_len: int = Field(default=16, ge=1, le=MAX_POSITION)
    n_signals: int = Field(default=1, ge=1, le=MAX_POSITION)
    heldout_fraction: float = Field(default=0.05, ge=0, lt=1)


class TrainingSchema(_Strict):
    model_config = ConfigDict(strict=False, extra="allow", frozen=True, defer_build=True)
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
    format: str = "tui-neuron/2"


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
    """Validate a tui-neuron/1 or /2 metadata block; the first problem is one UserError naming the field."""
    fmt = meta.get("format")
    if fmt not in ("tui-neuron/1", "tui-neuron/2"):
        raise UserError(f"{path}: metadata 'format' is {str(fmt)[:40]!r}, expected 'tui-neuron/2' (or /1)")
    schema = ConfigSchema if fmt == "tui-neuron/1" else ConfigV2Schema
    cfg = validated(schema, _field(meta, "config", path), f"{path}: config")
    if fmt == "tui-neuron/1":
        voc = validated(VocabSchema, _field(meta, "vocab", path), f"{path}: vocab")
        vocab = Vocab.standard(list(voc.words), voc.max_position)
    else:
        itos = validated(VocabV2Schema, _field(meta, "vocab", path), f"{path}: vocab").itos
        sp = validated(SpecialsSchema, _field(meta, "special_tokens", path), f"{path}: special_tokens")
        tk = validated(TokenizerSchema, _field(meta, "tokenizer", path), f"{path}: tokenizer")
        try:
            vocab = Vocab(list(itos), SpecialTokens(sp.pad, sp.unk, sp.bos, sp.eos, sp.position_pattern),
                          cfg.max_position, Tokenizer(tk.name, tk.version, tk.lowercase))
        except ValueError as e:
            raise UserError(f"{path}: special_tokens: {e}") from None
    heldout = _field(meta, "heldout", path, required=False)
    validated(HeldoutSchema, heldout, f"{path}: heldout")
    training = _field(meta, "training", path, required=False)
    validated(TrainingSchema, training, f"{path}: training")
    if len(vocab) != cfg.vocab_size or vocab.max_position != cfg.max_position:
        raise UserError(f"{path}: vocabulary ({len(vocab)} tokens, max position {vocab.max_position}) does not match "
                        f"config vocab_size {cfg.vocab_size}, max_position {cfg.max_position}")
    digest = meta.get("tensors_sha256")
    if digest is not None and (len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest)):
        raise UserError(f"{path}: metadata 'tensors_sha256' is not a sha256 hex digest")
    config = ModelConfig(cfg.vocab_size, cfg.cell, cfg.emb_dim, cfg.hidden, cfg.max_position, cfg.n_signals,
                         cfg.max_len, cfg.layers, cfg.shared_embedding)
    return Metadata(config, vocab, heldout, training, digest, fmt)


def metadata_v2(config: ModelConfig, vocab: Vocab, heldout: dict, training: dict, digest: str) -> dict[str, str]:
    """The metadata block `save_checkpoint` writes (docs/checkpoint-format.md describes each entry)."""
    return {
        "format": "tui-neuron/2",
        "config": json.dumps(config.to_json()),
        "vocab": json.dumps({"itos": vocab.itos}),
        "special_tokens": json.dumps(vocab.specials.to_json()),
        "tokenizer": json.dumps(vocab.tokenize.to_json()),
        "heldout": json.dumps(heldout),
        "training": json.dumps(training),
        "tensors_sha256": digest,
    }
