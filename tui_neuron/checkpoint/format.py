"""Checkpoints: one .safetensors file, torch module tensor names, JSON metadata. Never pickles.

docs/checkpoint-format.md is the specification (format tui-neuron/2; tui-neuron/1 still loads).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import save as save_bytes

from ..errors import UserError
from ..model.seq2seq import ModelConfig, Seq2Seq
from ..model.tokenizer import Vocab
from .metadata import metadata_v2, parse_metadata
from .validate import load_tensors, one_line, read_header, tensors_digest

FORMAT = "tui-neuron/2"


@dataclass
class Checkpoint:
    model: Seq2Seq
    vocab: Vocab
    heldout: dict = field(default_factory=dict)
    training: dict = field(default_factory=dict)
    path: Path | None = None
    warnings: list[str] = field(default_factory=list)  # loaded, but the user should know (e.g. no data digest)
    analysis_layer: int | None = None  # the layer analyses read (None: the top one); set by --layer
    tensors_sha256: str | None = None  # the weights' digest as loaded: results files name the exact model

    def provenance(self) -> dict:
        """What a results file records about the model it came from."""
        return {"checkpoint": str(self.path) if self.path else None, "checkpoint_sha256": self.tensors_sha256,
                "layer": self.config.layers - 1 if self.analysis_layer is None else self.analysis_layer}

    @property
    def config(self) -> ModelConfig:
        return self.model.config


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write to a temporary file beside `path`, fsync, then rename: a crash leaves the old file intact.

    A write that fails (a full disk, a read-only folder) is one UserError line; the earlier file stays.
    """
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.fchmod(fd, 0o644)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        if tmp:
            Path(tmp).unlink(missing_ok=True)
        raise UserError(f"cannot write {path}: {e.strerror or e}; the earlier file, if any, is kept") from None
    except BaseException:
        if tmp:
            Path(tmp).unlink(missing_ok=True)
        raise


def remove_stale_temps(path: str | Path) -> None:
    """Remove temporary files a killed save of `path` left behind (they are never read)."""
    path = Path(path)
    if path.parent.is_dir():
        for stale in path.parent.glob(f".{path.name}.*.tmp"):
            stale.unlink(missing_ok=True)


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def expected_shapes(config: ModelConfig) -> dict[str, tuple[int, ...]]:
    """Every tensor name and shape a model of `config` has, worked out from the config alone (building the module,
    even on torch's meta device, costs a second and a half the first time in a process: every load paid it).
    tests/test_checkpoint_cli.py checks these against `Seq2Seq(config).state_dict()` for every wiring."""
    arch, gates = config.architecture, 3 if config.cell == "gru" else 4
    e, h, he, v = config.emb_dim, config.hidden, config.encoder_hidden, config.vocab_size
    widths = {"embedding": e, "context": h, "feed": h, "h": h, "attentional": h}
    shapes: dict[str, tuple[int, ...]] = {}
    if config.shared_embedding:
        shapes["embedding.weight"] = (v, e)
    else:
        shapes.update({"src_embedding.weight": (config.source_vocab_size, e), "tgt_embedding.weight": (v, e)})
    directions = ("", "_reverse") if arch.bidirectional else ("",)
    for part, width, first in (("encoder", he, e), ("decoder", h, sum(widths[p] for p in arch.rnn_input))):
        below = width * len(directions) if part == "encoder" else width
        for k in range(config.layers):
            for d in directions if part == "encoder" else ("",):
                shapes[f"{part}.weight_ih_l{k}{d}"] = (gates * width, first if k == 0 else below)
                shapes[f"{part}.weight_hh_l{k}{d}"] = (gates * width, width)
                shapes[f"{part}.bias_ih_l{k}{d}"] = (gates * width,)
                shapes[f"{part}.bias_hh_l{k}{d}"] = (gates * width,)
    if arch.bridge == "linear_tanh":
        shapes.update({"bridge.weight": (h, h), "bridge.bias": (h,)})
    if arch.attention == "additive":
        shapes.update({"attention.query.weight": (h, h), "attention.query.bias": (h,), "attention.key.weight": (h, h),
                       "attention.key.bias": (h,), "attention.v.weight": (1, h)})
    elif arch.attention == "general":
        shapes["attention.query.weight"] = (h, h)
    if arch.attentional:
        shapes.update({"attention.out.weight": (h, 2 * h), "attention.out.bias": (h,)})
    shapes.update({"output.weight": (v, sum(widths[p] for p in arch.output_input)), "output.bias": (v,)})
    return shapes


def save_checkpoint(ckpt: Checkpoint, path: str | Path, dtype: torch.dtype = torch.float32) -> None:
    tensors = {k: v.detach().cpu().to(dtype).contiguous() for k, v in ckpt.model.state_dict().items()}
    metadata = metadata_v2(ckpt.config, ckpt.vocab, ckpt.heldout, ckpt.training, tensors_digest(tensors))
    atomic_write_bytes(path, save_bytes(tensors, metadata=metadata))


def _check_entries(entries: dict, shapes: dict[str, tuple[int, ...]], path: Path) -> None:
    """The header's tensor names and shapes against the format, before any tensor is read."""
    missing = sorted(set(shapes) - set(entries))
    if missing:
        raise UserError(f"{path}: tensor {missing[0]} is missing ({len(missing)} missing in all)")
    extra = sorted(set(entries) - set(shapes))
    if extra:
        raise UserError(f"{path}: unexpected tensor {one_line(extra[0], 80)} ({len(extra)} in all); names must follow "
                        "the documented format")
    for name, shape in shapes.items():
        if tuple(entries[name]["shape"]) != shape:
            raise UserError(f"{path}: tensor {name} has shape {tuple(entries[name]['shape'])}, expected {shape}")


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Load and validate; every problem becomes a UserError naming the file and the fix."""
    path = Path(path)
    meta, entries = read_header(path, "checkpoint", floats_only=True)
    parsed = parse_metadata(meta, path)
    config, vocab = parsed.config, parsed.vocab
    _check_entries(entries, expected_shapes(config), path)
    tensors = load_tensors(path, "checkpoint")
    warnings = []
    if parsed.format != FORMAT:
        warnings.append(f"{path} is in the older {parsed.format} format; `tui-neuron upgrade` rewrites it as {FORMAT}")
    elif parsed.tensors_sha256 is None:
        warnings.append(f"{path} carries no tensors_sha256, so damaged weights cannot be detected; "
                        "re-save it with `tui-neuron upgrade`")
    elif parsed.metadata_sha256 is None:
        warnings.append(f"{path} carries no metadata_sha256, so a changed vocabulary or config cannot be detected; "
                        "re-save it with `tui-neuron upgrade`")
    digest = tensors_digest(tensors)
    if parsed.format == FORMAT and parsed.tensors_sha256 is not None and digest != parsed.tensors_sha256:
        raise UserError(f"{path}: the weights do not match their recorded sha256 (the file is damaged); "
                        "use an intact copy")
    for name, t in tensors.items():
        if not bool(torch.isfinite(t).all()):
            raise UserError(f"{path}: tensor {name} holds NaN or infinite values; the model cannot be used")
    model = Seq2Seq(config)
    model.load_state_dict({k: v.float() for k, v in tensors.items()})
    model.eval()
    return Checkpoint(model, vocab, parsed.heldout, parsed.training, path, warnings, tensors_sha256=digest)
