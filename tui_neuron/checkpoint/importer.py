"""`tui-neuron import`: a torch GRU/LSTM Seq2Seq trained elsewhere becomes a tui-neuron checkpoint.

The state dict is read from .safetensors, or from .pt/.pth with torch.load(weights_only=True)
and nothing else (never a general unpickle). Key names are a plain Seq2Seq's module names
(`embedding` or `src_embedding` + `tgt_embedding`, `encoder`, `decoder`, `output`), after
`--rename old=new` prefix maps; cell type, sizes and layer count are read off the shapes.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import ParameterError, UserError
from ..model.seq2seq import ModelConfig, Seq2Seq
from ..model.tokenizer import SPLIT_RULES, SpecialTokens, Tokenizer, Vocab
from .format import Checkpoint, expected_shapes, save_checkpoint
from .validate import parse_json_limited, read_bytes, read_safetensors, require_regular_file

MAX_STATE_BYTES = 4 << 30
_PARAM = re.compile(r"^(encoder|decoder)\.(weight_ih|weight_hh|bias_ih|bias_hh)_l(\d+)$")


@dataclass(frozen=True)
class ImportOptions:
    specials: SpecialTokens = SpecialTokens()
    tokenizer: Tokenizer = Tokenizer()
    renames: tuple[tuple[str, str], ...] = ()
    max_len: int = 50
    n_signals: int = 1


def parse_renames(items: Sequence[str]) -> tuple[tuple[str, str], ...]:
    out = []
    for item in items:
        old, sep, new = item.partition("=")
        if not sep or not old:
            raise ParameterError("rename", f"{{param}} {item!r}: write OLD=NEW, e.g. fc.=output.")
        out.append((old, new))
    return tuple(out)


def read_state(path: Path) -> dict[str, torch.Tensor]:
    """A state dict from .safetensors, or .pt/.pth through torch.load(weights_only=True) only."""
    size = require_regular_file(path, "state dict")
    if size > MAX_STATE_BYTES:
        raise UserError(f"state dict {path} is {size:,} bytes; larger than this tool reads")
    if path.suffix.lower() in (".pt", ".pth", ".bin", ".ckpt"):
        try:
            with warnings.catch_warnings():  # torch warns about pickle protocols; the user gets our one line
                warnings.simplefilter("ignore")
                obj = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # noqa: BLE001 - torch.load raises many types; each means "not a plain state dict"
            reason = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
            raise UserError(f"{path} cannot be read with torch.load(weights_only=True) ({reason}); tui-neuron never "
                            "unpickles anything else: save model.state_dict() with torch.save or "
                            "safetensors.torch.save_file") from None
        if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
            obj = obj["state_dict"]
        if not isinstance(obj, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                                for k, v in obj.items()):
            raise UserError(f"{path} does not hold a state dict (a mapping of names to tensors)")
        return dict(obj)
    _, tensors = read_safetensors(path, "state dict")
    return tensors


def read_vocab(path: Path) -> list[str]:
    """One token per line (line number = id), or a JSON list of tokens."""
    raw = read_bytes(path, "vocabulary file", limit=256 << 20)
    text = raw.decode("utf-8", errors="strict") if _utf8(raw) else None
    if text is None:
        raise UserError(f"vocabulary file {path} is not UTF-8 text")
    if text.lstrip().startswith("["):
        tokens = parse_json_limited(text, f"vocabulary file {path}", max_depth=2)
        if not isinstance(tokens, list) or not all(isinstance(t, str) and t for t in tokens):
            raise UserError(f"vocabulary file {path}: a JSON vocabulary must be a list of non-empty strings")
    else:
        tokens = text.split("\n")
        if tokens and tokens[-1] == "":
            tokens.pop()
        tokens = [t.rstrip("\r") for t in tokens]
        empty = [i for i, t in enumerate(tokens) if not t]
        if empty:
            raise UserError(f"vocabulary file {path}: line {empty[0] + 1} is empty (one token per line)")
    if len(set(tokens)) != len(tokens):
        seen: set[str] = set()
        dup = next(t for t in tokens if t in seen or seen.add(t))  # type: ignore[func-returns-value]
        raise UserError(f"vocabulary file {path}: token {dup!r} appears twice")
    return tokens


def _utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _renamed(state: dict[str, torch.Tensor], renames: Sequence[tuple[str, str]]) -> dict[str, torch.Tensor]:
    out = {}
    for key, value in state.items():
        for old, new in renames:
            if key.startswith(old):
                key = new + key[len(old) :]
                break
        out[key] = value
    return out


def infer_config(state: dict[str, torch.Tensor], vocab_size: int, options: ImportOptions,
                 max_position: int) -> ModelConfig:
    """Cell, sizes and layers from the shapes; anything unsupported is one line naming the key."""
    for key in sorted(state):
        if "_reverse" in key:
            raise UserError(f"key {key}: bidirectional encoders are not supported (tui-neuron steps a "
                            "one-directional encoder whose last state starts the decoder)")
        if re.search(r"attn|attention", key, re.I):
            raise UserError(f"key {key}: attention weights are not supported; the model must be a plain "
                            "encoder-decoder (embedding, encoder, decoder, output)")
    shared = "embedding.weight" in state
    if not shared and not {"src_embedding.weight", "tgt_embedding.weight"} <= set(state):
        raise UserError("no embedding: expected embedding.weight, or src_embedding.weight and tgt_embedding.weight "
                        f"(found {', '.join(sorted(state)[:6])}…; map other names with --rename OLD=NEW)")
    if not {"output.weight", "output.bias"} <= set(state):
        raise UserError("no output layer: expected output.weight and output.bias (map yours with --rename, "
                        "e.g. --rename fc.=output.)")
    for part in ("encoder", "decoder"):
        if f"{part}.weight_ih_l0" not in state:
            raise UserError(f"no {part}: expected {part}.weight_ih_l0 of an nn.GRU or nn.LSTM (map yours with "
                            "--rename, e.g. --rename enc.rnn.=encoder.)")
    emb = state["embedding.weight" if shared else "src_embedding.weight"]
    hidden = state["encoder.weight_hh_l0"].shape[-1] if "encoder.weight_hh_l0" in state else 0
    rows = state["encoder.weight_ih_l0"].shape[0]
    if hidden < 1 or rows % hidden or rows // hidden not in (3, 4):
        raise UserError(f"key encoder.weight_ih_l0 has {rows} rows for hidden size {hidden}: expected 3×hidden (GRU) "
                        "or 4×hidden (LSTM)")
    cell = "gru" if rows // hidden == 3 else "lstm"
    layers = 1 + max(int(m.group(3)) for k in state if (m := _PARAM.match(k)) and m.group(1) == "encoder")
    dec_emb = state["embedding.weight" if shared else "tgt_embedding.weight"].shape[-1]
    enc_in, dec_in = state["encoder.weight_ih_l0"].shape[-1], state["decoder.weight_ih_l0"].shape[-1]
    if enc_in != dec_in or emb.shape[-1] != enc_in or dec_emb != dec_in:
        raise UserError(f"the embedding size differs between encoder ({enc_in}) and decoder ({dec_in}) or their "
                        f"embeddings ({emb.shape[-1]}, {dec_emb}); tui-neuron needs one embedding size")
    if emb.shape[0] != vocab_size:
        raise UserError(f"the vocabulary has {vocab_size} tokens but the embedding has {emb.shape[0]} rows; "
                        "give the vocabulary the model was trained with")
    config = ModelConfig(vocab_size, cell, int(emb.shape[-1]), int(hidden), max_position, options.n_signals,
                         max(options.max_len, max_position), layers, shared)
    shapes = expected_shapes(config)
    for key in sorted(set(shapes) - set(state)):
        what = "biases are required" if ".bias" in key else "the layers must match in encoder and decoder"
        raise UserError(f"key {key} is missing ({what}); a {layers}-layer {cell.upper()} was inferred")
    for key in sorted(set(state) - set(shapes)):
        raise UserError(f"unexpected key {key}: expected only embedding, encoder, decoder and output tensors "
                        "(map or drop others with --rename OLD=NEW)")
    for key, shape in shapes.items():
        if tuple(state[key].shape) != shape:
            raise UserError(f"key {key} has shape {tuple(state[key].shape)}; a {layers}-layer {cell.upper()} with "
                            f"hidden {hidden} needs {shape}")
        if not state[key].is_floating_point() or not bool(torch.isfinite(state[key]).all()):
            raise UserError(f"key {key} must hold finite floating-point values")
    return config


def import_model(state_path: Path, vocab_path: Path, out: Path, options: ImportOptions) -> Checkpoint:
    state = _renamed(read_state(state_path), options.renames)
    itos = read_vocab(vocab_path)
    try:
        vocab = Vocab(itos, options.specials, None, options.tokenizer)
    except ValueError as e:
        raise UserError(f"vocabulary file {vocab_path}: {e} (name the specials with --pad/--unk/--bos/--eos)") from None
    if options.specials.position_pattern and not vocab.has_positions:
        example = options.specials.position_pattern.replace("{T}", "1")
        raise UserError(f"vocabulary file {vocab_path} has no position token {example!r}; give --position-pattern "
                        "or --no-positions")
    config = infer_config(state, len(vocab), options, vocab.max_position)
    model = Seq2Seq(config)
    model.load_state_dict({k: v.float() for k, v in state.items()})
    record = {"imported_from": state_path.name, "vocab_file": vocab_path.name,
              "renames": [f"{o}={n}" for o, n in options.renames]}
    ckpt = Checkpoint(model.eval(), vocab, {}, record, out)
    save_checkpoint(ckpt, out)
    return ckpt


def describe(config: ModelConfig, vocab: Vocab) -> str:
    emb = "one shared embedding" if config.shared_embedding else "separate source and target embeddings"
    pos = (f"positions 1..{vocab.max_position}" if vocab.has_positions else "no position tokens (controls off)")
    return (f"{config.layers}-layer {config.cell.upper()}, embedding {config.emb_dim}, hidden {config.hidden}, "
            f"{len(vocab)} tokens, {emb}, {pos}")


__all__ = ["ImportOptions", "SPLIT_RULES", "describe", "import_model", "infer_config", "parse_renames", "read_state",
           "read_vocab"]
