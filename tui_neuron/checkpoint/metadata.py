"""The schema of a checkpoint's metadata, checked field by field before any model or vocabulary is built.

Types are strict (256.0 is not a hidden size, true is not a length) and every size
is bounded, so a hostile or damaged file is one line naming the field, never a
TypeError inside torch or a vocabulary of 10^9 tokens.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta, Struct

from ..errors import UserError
from ..model.config import Architecture, ModelConfig, architecture_problems
from ..model.tokenizer import SPECIALS, SPLIT_RULES, SpecialTokens, Tokenizer, Vocab, position_token
from .validate import parse_json_limited, validated

MAX_VOCAB = 1_000_000
# the metadata entries that decide what the model means; `metadata_sha256` covers them (the training record, a
# free-form history, does not change behaviour and is not covered)
DIGESTED = ("config", "vocab", "special_tokens", "tokenizer", "heldout")
DIGESTED_WHEN_PRESENT = ("source_vocab",)  # a two-vocabulary model's source side (files without it keep their digest)
MAX_POSITION = 1000
Name = Annotated[str, Meta(min_length=1, max_length=200)]  # a token or special token's text
Position = Annotated[int, Meta(ge=0, le=MAX_POSITION)]
Length = Annotated[int, Meta(ge=1, le=MAX_POSITION)]
Size = Annotated[int, Meta(ge=1, le=8192)]
Layers = Annotated[int, Meta(ge=1, le=16)]


class _Strict(Struct):
    """Unknown fields are ignored unless a schema forbids them; types are strict in `validated`. Each schema
    is kw_only (msgspec applies it per class), so required fields may follow ones with defaults."""


class ConfigSchema(_Strict, kw_only=True):
    """Format 1's config (layers and separate embeddings came with format 2)."""

    vocab_size: Annotated[int, Meta(ge=len(SPECIALS) + 1, le=MAX_VOCAB)]
    cell: Literal["gru", "lstm"]
    emb_dim: Size
    hidden: Size
    max_position: Position
    n_signals: Length
    max_len: Length
    layers: Layers = 1
    shared_embedding: bool = True

    def __post_init__(self) -> None:
        if self.max_position > self.max_len:
            raise ValueError(f"max_position {self.max_position} exceeds max_len {self.max_len}")


class ArchitectureSchema(_Strict, kw_only=True, forbid_unknown_fields=True):
    """An imported model's wiring (model.config.Architecture); absent: the plain shape."""

    embed_activation: Literal["none", "relu"] = "none"
    bidirectional: bool = False
    bridge: Literal["none", "concat", "linear_tanh"] = "none"
    attention: Literal["none", "additive", "dot", "general"] = "none"
    query: Literal["previous", "current"] = "previous"
    rnn_input: Annotated[list[Literal["embedding", "context", "feed"]], Meta(min_length=1, max_length=3)] = \
        msgspec.field(default_factory=lambda: ["embedding"])
    attentional: bool = False
    output_input: Annotated[list[Literal["h", "attentional", "context", "embedding"]],
                            Meta(min_length=1, max_length=4)] = msgspec.field(default_factory=lambda: ["h"])
    attentional_activation: Literal["tanh", "none"] = "tanh"


class ConfigV2Schema(ConfigSchema, kw_only=True, forbid_unknown_fields=True):
    """Format 2: every field present, nothing unknown (a misspelt key would otherwise fall back to a default);
    two vocabularies and a declared wiring are optional (absent: one vocabulary, the plain shape)."""

    layers: Layers
    shared_embedding: bool
    src_vocab_size: Annotated[int, Meta(ge=2, le=MAX_VOCAB)] | None = None
    architecture: ArchitectureSchema | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.src_vocab_size is not None and self.shared_embedding:
            raise ValueError("src_vocab_size (a separate source vocabulary) needs shared_embedding false")
        if self.architecture is not None:
            problems = architecture_problems(self.model_architecture(), self.cell, self.hidden, self.layers)
            if problems:
                raise ValueError("architecture: " + "; ".join(problems))

    def model_architecture(self) -> Architecture:
        a = self.architecture
        return Architecture() if a is None else Architecture(
            a.embed_activation, a.bidirectional, a.bridge, a.attention, a.query, tuple(a.rnn_input), a.attentional,
            tuple(a.output_input), a.attentional_activation)


class VocabSchema(_Strict, kw_only=True):
    words: Annotated[list[str], Meta(max_length=MAX_VOCAB)]
    max_position: Position

    def __post_init__(self) -> None:
        reserved = set(SPECIALS) | {position_token(p) for p in range(1, self.max_position + 1)}
        seen: set[str] = set()
        for w in self.words:
            if not w or len(w) > 200:
                raise ValueError("every word must be 1 to 200 characters")
            if w in reserved or w in seen:
                raise ValueError(f"word {w!r} is repeated or reserved")
            seen.add(w)


class VocabV2Schema(_Strict, kw_only=True, forbid_unknown_fields=True):
    itos: Annotated[list[Name], Meta(min_length=len(SPECIALS) + 1, max_length=MAX_VOCAB)]

    def __post_init__(self) -> None:
        if len(set(self.itos)) != len(self.itos):
            raise ValueError("itos: tokens must be distinct")


class SpecialsSchema(_Strict, kw_only=True, forbid_unknown_fields=True):
    pad: Name
    unk: Name
    bos: Name
    eos: Name
    position_pattern: Annotated[str, Meta(max_length=200, pattern=r"^[^{}]*\{T\}[^{}]*$")] | None = None


class TokenizerSchema(_Strict, kw_only=True, forbid_unknown_fields=True):
    name: Literal["tui-neuron-words", "whitespace"]
    version: Literal[1]
    lowercase: bool
    pattern: Annotated[str, Meta(max_length=1000)] | None = None
    source_prefix: Annotated[list[Name], Meta(max_length=8)] = msgspec.field(default_factory=list)
    source_suffix: Annotated[list[Name], Meta(max_length=8)] = msgspec.field(default_factory=list)

    def __post_init__(self) -> None:
        if self.pattern is not None and self.pattern != SPLIT_RULES[self.name]:
            raise ValueError(f"pattern differs from the {self.name!r} split rule (the name decides the rule)")


class HeldoutFileSchema(_Strict, kw_only=True):
    name: Annotated[str, Meta(min_length=1, max_length=4096)]
    path: Annotated[str, Meta(max_length=4096)] | None = None
    sha256: Annotated[str, Meta(pattern=r"^[0-9a-f]{64}$")]
    heldout_start: Annotated[int, Meta(ge=0)]
    lines: Annotated[int, Meta(ge=0)] | None = None


class HeldoutSchema(_Strict, kw_only=True):
    files: Annotated[list[HeldoutFileSchema], Meta(max_length=100_000)] = []
    mode: Literal["spans", "lines"] = "spans"
    min_len: Length = 4
    max_len: Length = 16
    n_signals: Length = 1
    heldout_fraction: Annotated[float, Meta(ge=0, lt=1)] = 0.05


class TrainingSchema(_Strict, kw_only=True):
    steps: Annotated[int, Meta(ge=0)] | None = None
    heldout_accuracy: float | None = None
    seconds: Annotated[float, Meta(ge=0)] | None = None


@dataclass
class Metadata:
    config: ModelConfig
    vocab: Vocab
    heldout: dict
    training: dict
    tensors_sha256: str | None
    format: str = "tui-neuron/2"
    metadata_sha256: str | None = None


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
    recorded = _check_metadata_digest(meta, path) if fmt == "tui-neuron/2" else None
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
                          cfg.max_position, Tokenizer(tk.name, tk.version, tk.lowercase, tuple(tk.source_prefix),
                                                      tuple(tk.source_suffix)))
        except ValueError as e:
            raise UserError(f"{path}: special_tokens: {e}") from None
    heldout = _field(meta, "heldout", path, required=False)
    validated(HeldoutSchema, heldout, f"{path}: heldout")
    training = _field(meta, "training", path, required=False)
    validated(TrainingSchema, training, f"{path}: training")
    if len(vocab) != cfg.vocab_size or vocab.max_position != cfg.max_position:
        raise UserError(f"{path}: vocabulary ({len(vocab)} tokens, max position {vocab.max_position}) does not match "
                        f"config vocab_size {cfg.vocab_size}, max_position {cfg.max_position}")
    found = _positions_in(vocab)
    if found != cfg.max_position:
        raise UserError(f"{path}: the vocabulary holds position tokens for T = 1..{found} but config max_position is "
                        f"{cfg.max_position}; the two must agree")
    digest = meta.get("tensors_sha256")
    if digest is not None and (len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest)):
        raise UserError(f"{path}: metadata 'tensors_sha256' is not a sha256 hex digest")
    src_size, arch = None, Architecture()
    if isinstance(cfg, ConfigV2Schema):
        src_size, arch = cfg.src_vocab_size, cfg.model_architecture()
        if src_size is not None:
            vocab.source = _source_vocab(meta, path, vocab, cfg)
    if src_size is None and "source_vocab" in meta:
        raise UserError(f"{path}: metadata has a source_vocab but config has no src_vocab_size; the two go together")
    config = ModelConfig(cfg.vocab_size, cfg.cell, cfg.emb_dim, cfg.hidden, cfg.max_position, cfg.n_signals,
                         cfg.max_len, cfg.layers, cfg.shared_embedding, src_size, arch)
    return Metadata(config, vocab, heldout, training, digest, fmt, recorded)


class SourceVocabSchema(_Strict, kw_only=True, forbid_unknown_fields=True):
    itos: Annotated[list[Name], Meta(min_length=2, max_length=MAX_VOCAB)]
    special_tokens: SpecialsSchema

    def __post_init__(self) -> None:
        if len(set(self.itos)) != len(self.itos):
            raise ValueError("itos: tokens must be distinct")


def _source_vocab(meta: dict[str, str], path: Path, target: Vocab, cfg: ConfigV2Schema) -> Vocab:
    """A two-vocabulary model's source side: its own tokens and specials, the target's tokenizer, no positions."""
    if "source_vocab" not in meta:
        raise UserError(f"{path}: config has src_vocab_size but the metadata has no source_vocab")
    if cfg.max_position:
        raise UserError(f"{path}: a model with two vocabularies takes no control signals (config max_position must "
                        "be 0)")
    sv = validated(SourceVocabSchema, _field(meta, "source_vocab", path), f"{path}: source_vocab")
    sp = sv.special_tokens
    try:
        source = Vocab(list(sv.itos), SpecialTokens(sp.pad, sp.unk, sp.bos, sp.eos, None), 0, target.tokenize)
    except ValueError as e:
        raise UserError(f"{path}: source_vocab: {e}") from None
    if len(source) != cfg.src_vocab_size:
        raise UserError(f"{path}: source_vocab has {len(source)} tokens but config src_vocab_size is "
                        f"{cfg.src_vocab_size}")
    return source


def _positions_in(vocab: Vocab) -> int:
    """How many position tokens, T = 1, 2, … consecutively, the vocabulary holds."""
    if vocab.specials.position_pattern is None:
        return 0
    found = 0
    while found < MAX_POSITION and position_token(found + 1, vocab.specials.position_pattern) in vocab.stoi:
        found += 1
    return found


def metadata_digest(meta: dict[str, str]) -> str:
    """sha256 over the DIGESTED entries as stored: for each, its key, the length of its value and the value
    (UTF-8), each followed by a newline; an absent entry counts as empty."""
    h = hashlib.sha256()
    for key in (*DIGESTED, *(k for k in DIGESTED_WHEN_PRESENT if k in meta)):
        value = meta.get(key, "").encode("utf-8", errors="surrogatepass")
        h.update(f"{key}\n{len(value)}\n".encode() + value + b"\n")
    return h.hexdigest()


def _check_metadata_digest(meta: dict[str, str], path: Path) -> str | None:
    """The recorded metadata digest, checked; None when the file has none (older files load with a warning)."""
    recorded = meta.get("metadata_sha256")
    if recorded is None:
        return None
    if len(recorded) != 64 or any(c not in "0123456789abcdef" for c in recorded):
        raise UserError(f"{path}: metadata 'metadata_sha256' is not a sha256 hex digest")
    if metadata_digest(meta) != recorded:
        raise UserError(f"{path}: the metadata (vocabulary, special tokens, tokenizer, config or held-out record) does "
                        "not match its recorded sha256: the file was changed or damaged; use an intact copy")
    return recorded


def metadata_v2(config: ModelConfig, vocab: Vocab, heldout: dict, training: dict, digest: str) -> dict[str, str]:
    """The metadata block `save_checkpoint` writes (docs/checkpoint-format.md describes each entry)."""
    meta = {
        "format": "tui-neuron/2",
        "config": json.dumps(config.to_json()),
        "vocab": json.dumps({"itos": vocab.itos}),
        "special_tokens": json.dumps(vocab.specials.to_json()),
        "tokenizer": json.dumps(vocab.tokenize.to_json()),
        "heldout": json.dumps(heldout),
        "training": json.dumps(training),
        "tensors_sha256": digest,
    }
    if vocab.source is not None:
        meta["source_vocab"] = json.dumps({"itos": vocab.source.itos, "special_tokens": vocab.source.specials.to_json()})
    meta["metadata_sha256"] = metadata_digest(meta)
    return meta
