"""Checkpoints: one .safetensors file, torch module tensor names, JSON metadata. Never pickles.

Tensors: embedding.weight, encoder.{weight_ih_l0,weight_hh_l0,bias_ih_l0,bias_hh_l0},
the same under decoder., output.weight, output.bias. Metadata (string values):
format, config, vocab, heldout, training, all JSON.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as save_bytes

from ..errors import UserError
from .seq2seq import CELLS, ModelConfig, Seq2Seq
from .tokenizer import Vocab

FORMAT = "tui-neuron/1"
_PICKLE_MAGICS = (b"\x80", b"PK\x03\x04")


@dataclass
class Checkpoint:
    model: Seq2Seq
    vocab: Vocab
    heldout: dict = field(default_factory=dict)
    training: dict = field(default_factory=dict)
    path: Path | None = None

    @property
    def config(self) -> ModelConfig:
        return self.model.config


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write to a temporary file beside `path`, fsync, then rename: a crash leaves the old file intact."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o644)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def expected_shapes(config: ModelConfig) -> dict[str, tuple[int, ...]]:
    gates = 3 if config.cell == "gru" else 4
    e, h, v = config.emb_dim, config.hidden, config.vocab_size
    shapes: dict[str, tuple[int, ...]] = {"embedding.weight": (v, e), "output.weight": (v, h), "output.bias": (v,)}
    for part in ("encoder", "decoder"):
        shapes[f"{part}.weight_ih_l0"] = (gates * h, e)
        shapes[f"{part}.weight_hh_l0"] = (gates * h, h)
        shapes[f"{part}.bias_ih_l0"] = (gates * h,)
        shapes[f"{part}.bias_hh_l0"] = (gates * h,)
    return shapes


def save_checkpoint(ckpt: Checkpoint, path: str | Path, dtype: torch.dtype = torch.float32) -> None:
    tensors = {k: v.detach().to(dtype).contiguous() for k, v in ckpt.model.state_dict().items()}
    metadata = {
        "format": FORMAT,
        "config": json.dumps(ckpt.config.to_json()),
        "vocab": json.dumps(ckpt.vocab.to_json()),
        "heldout": json.dumps(ckpt.heldout),
        "training": json.dumps(ckpt.training),
    }
    atomic_write_bytes(path, save_bytes(tensors, metadata=metadata))


def _json_field(meta: dict, key: str, path: Path) -> dict:
    if key not in meta:
        raise UserError(f"{path}: metadata field {key!r} is missing; is this a tui-neuron checkpoint?")
    try:
        value = json.loads(meta[key])
    except json.JSONDecodeError:
        raise UserError(f"{path}: metadata field {key!r} is not valid JSON") from None
    if not isinstance(value, dict):
        raise UserError(f"{path}: metadata field {key!r} must be a JSON object")
    return value


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Load and validate; every problem becomes a UserError naming the file and the fix."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"checkpoint {path} does not exist")
    if path.is_dir():
        raise UserError(f"checkpoint {path} is a folder; give a .safetensors file")
    with open(path, "rb") as f:
        head = f.read(8)
    if head.startswith(_PICKLE_MAGICS):
        raise UserError(
            f"{path} is a pickle / torch.save file; tui-neuron only loads .safetensors "
            "(export with safetensors.torch.save_file)"
        )
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise UserError(f"{path} is not a readable .safetensors file (truncated or corrupt: {reason})") from None
    if meta.get("format") != FORMAT:
        raise UserError(f"{path}: metadata 'format' is {meta.get('format')!r}, expected {FORMAT!r}")
    try:
        config = ModelConfig.from_json(_json_field(meta, "config", path))
        vocab = Vocab.from_json(_json_field(meta, "vocab", path))
    except (KeyError, TypeError) as e:
        raise UserError(f"{path}: config or vocab metadata is incomplete ({e})") from None
    if config.cell not in CELLS:
        raise UserError(f"{path}: cell {config.cell!r} is not one of {CELLS}")
    if len(vocab) != config.vocab_size or vocab.max_position != config.max_position:
        raise UserError(f"{path}: vocabulary ({len(vocab)} tokens) does not match config vocab_size {config.vocab_size}")
    shapes = expected_shapes(config)
    missing = sorted(set(shapes) - set(tensors))
    if missing:
        raise UserError(f"{path}: tensor {missing[0]} is missing ({len(missing)} missing in all)")
    extra = sorted(set(tensors) - set(shapes))
    if extra:
        raise UserError(f"{path}: unexpected tensor {extra[0]}; names must follow the documented format")
    for name, shape in shapes.items():
        if tuple(tensors[name].shape) != shape:
            raise UserError(f"{path}: tensor {name} has shape {tuple(tensors[name].shape)}, expected {shape}")
    model = Seq2Seq(config)
    model.load_state_dict({k: v.float() for k, v in tensors.items()})
    model.eval()
    return Checkpoint(model, vocab, _json_field(meta, "heldout", path), _json_field(meta, "training", path), path)
