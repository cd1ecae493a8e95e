"""`tui-neuron import`: a torch GRU/LSTM Seq2Seq trained elsewhere becomes a tui-neuron checkpoint.

State dicts are read from .safetensors, or from .pt/.pth with torch.load(weights_only=True) and an allowlist of
plain types (never a general unpickle): one file, or the encoder's and the decoder's own files. Known layouts are
recognised by their key names (`layouts.py`) and said; `--rename old=new` prefix maps come first, for anything
else. Cell, sizes, layers, the decoder's wiring and one or two vocabularies are read off the shapes, and every
problem is reported in one message.
"""

from __future__ import annotations

import argparse
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..errors import ParameterError, UserError
from ..model.config import Architecture, architecture_problems
from ..model.seq2seq import ModelConfig, Seq2Seq
from ..model.tokenizer import SPLIT_RULES, SpecialTokens, Tokenizer, Vocab
from .format import Checkpoint, expected_shapes, save_checkpoint
from .layouts import Detected, detect, renamed, strip_common_prefix
from .validate import parse_json_limited, read_bytes, read_safetensors, require_regular_file

MAX_STATE_BYTES = 4 << 30
_PARAM = re.compile(r"^(encoder|decoder)\.(weight_ih|weight_hh|bias_ih|bias_hh)_l(\d+)$")
SPECIAL_SPELLINGS = {  # the spellings of each special token in common toolkits, tried in this order
    "pad": ("<pad>", "<blank>", "[PAD]", "PAD"),
    "unk": ("<unk>", "[UNK]", "UNK"),
    "bos": ("<bos>", "<sos>", "<s>", "SOS", "BOS", "[BOS]"),
    "eos": ("<eos>", "</s>", "EOS", "[EOS]"),
}


@dataclass(frozen=True)
class ImportOptions:
    """What the user said; None where the layout's usual choice (or detection) decides."""

    specials: dict[str, str] = field(default_factory=dict)  # pad/unk/bos/eos spelled by the user
    position_pattern: str | None = None  # None: <pos_{T}> when the vocabulary has it
    no_positions: bool = False
    tokenizer: str | None = None
    lowercase: bool | None = None
    renames: tuple[tuple[str, str], ...] = ()
    max_len: int = 50
    n_signals: int = 1
    embed_activation: str | None = None
    source_prefix: tuple[str, ...] = ()
    source_suffix: tuple[str, ...] = ()


@dataclass(frozen=True)
class ImportSources:
    """Where the weights and vocabularies are: one state file, or the encoder's and the decoder's; one shared
    vocabulary, or a source and a target one (None: from the checkpoint, when it holds them)."""

    state: Path | None = None
    encoder: Path | None = None
    decoder: Path | None = None
    vocab: Path | None = None
    src_vocab: Path | None = None
    tgt_vocab: Path | None = None


def parse_renames(items: Sequence[str]) -> tuple[tuple[str, str], ...]:
    out = []
    for item in items:
        old, sep, new = item.partition("=")
        if not sep or not old:
            raise ParameterError("rename", f"{{param}} {item!r}: write OLD=NEW, e.g. fc.=output.")
        out.append((old, new))
    return tuple(out)


_TWO_LINE_EXPORT = ("export the weights in your own environment: `ckpt = torch.load(PATH); "
                    "torch.save({**ckpt['model'], **{'generator.' + k: v for k, v in ckpt['generator'].items()}}, "
                    "'weights.pt')`, and the vocabulary one token per line")


def _torch_load(path: Path) -> object:
    """torch.load with weights_only=True; argparse.Namespace (OpenNMT-py's `opt`) is the one class allowed."""
    try:
        with warnings.catch_warnings(), torch.serialization.safe_globals([argparse.Namespace]):
            warnings.simplefilter("ignore")  # torch warns about pickle protocols; the user gets our one line
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - torch.load raises many types; each means "not a plain state dict"
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
        raise UserError(f"{path} cannot be read with torch.load(weights_only=True) ({reason}); tui-neuron never "
                        "unpickles anything else: save model.state_dict() with torch.save or "
                        f"safetensors.torch.save_file, or {_TWO_LINE_EXPORT}") from None


@dataclass
class StateFile:
    tensors: dict[str, torch.Tensor]
    vocabs: dict[str, list[str]]  # vocabularies the file carries (OpenNMT-py's 'vocab': src, tgt)


def _flatten(obj: dict, prefix: str, out: dict[str, torch.Tensor], vocabs: dict[str, list[str]]) -> None:
    """Nested dicts of tensors as dotted names; a checkpoint's plain token lists kept as vocabularies; other
    entries (an optimizer's state, options) skipped."""
    for key, value in obj.items():
        if not isinstance(key, str) or key in ("optim", "optimizer", "opt", "scheduler"):
            continue
        if isinstance(value, torch.Tensor):
            out[prefix + key] = value
        elif isinstance(value, dict) and key == "vocab":
            vocabs.update({k: v for k, v in value.items() if isinstance(v, list) and v
                           and all(isinstance(t, str) for t in v)})
        elif isinstance(value, dict):
            _flatten(value, f"{prefix}{key}.", out, vocabs)


def read_state(path: Path) -> StateFile:
    """A state dict from .safetensors, or .pt/.pth through torch.load(weights_only=True) only; a checkpoint that
    wraps it (`state_dict`, `model` + `generator`) is unwrapped."""
    size = require_regular_file(path, "state dict")
    if size > MAX_STATE_BYTES:
        raise UserError(f"state dict {path} is {size:,} bytes; larger than this tool reads")
    if path.suffix.lower() not in (".pt", ".pth", ".bin", ".ckpt"):
        return StateFile(read_safetensors(path, "state dict")[1], {})
    obj = _torch_load(path)
    if not isinstance(obj, dict):
        raise UserError(f"{path} does not hold a state dict (a mapping of names to tensors)")
    tensors: dict[str, torch.Tensor] = {}
    vocabs: dict[str, list[str]] = {}
    _flatten(obj, "", tensors, vocabs)
    if not tensors:
        raise UserError(f"{path} does not hold a state dict (a mapping of names to tensors)")
    for wrapper in ("state_dict.", "model_state_dict.", "model.", "module."):
        if any(k.startswith(wrapper) for k in tensors):
            tensors = {k.removeprefix(wrapper): v for k, v in tensors.items()}
    return StateFile(tensors, vocabs)


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


def gather_state(sources: ImportSources) -> StateFile:
    """One state dict from one file, or from the encoder's and the decoder's files (each under its module's
    name, whatever prefix it was saved with)."""
    if sources.state is not None:
        if sources.encoder or sources.decoder:
            raise UserError("give one state file, or --encoder and --decoder, not both")
        return read_state(sources.state)
    if not (sources.encoder and sources.decoder):
        raise UserError("give the model's state file, or both --encoder E.pt and --decoder D.pt")
    parts, vocabs = {}, {}
    for name, path in (("encoder", sources.encoder), ("decoder", sources.decoder)):
        file = read_state(path)
        stripped, _ = strip_common_prefix(file.tensors) if len(file.tensors) > 1 else (file.tensors, "")
        parts.update({f"{name}.{k.removeprefix(name + '.')}": v for k, v in stripped.items()})
        vocabs.update(file.vocabs)
    return StateFile(parts, vocabs)


def recognise(state: dict[str, torch.Tensor], options: ImportOptions) -> Detected:
    """The layout (after the user's renames, and without a prefix every key shares), or one line saying what
    was expected."""
    state = renamed(state, options.renames)
    found = detect(state)
    if found is None:
        state, prefix = strip_common_prefix(state)
        found = detect(state) if prefix else None
    if found is None and _one_half(state):
        raise UserError(f"no known layout: the keys ({', '.join(sorted(state)[:4])}…) hold one recurrent module, "
                        "as an encoder or a decoder saved alone does; give both files with "
                        "--encoder E.pt --decoder D.pt")
    if found is None:
        raise UserError("no known layout: expected tui-neuron's names (embedding, encoder, decoder, output), PyTorch's "
                        "translation tutorial (embedding/gru/out), the pytorch-seq2seq notebooks (rnn, fc_out) or "
                        f"OpenNMT-py (embeddings, rnn, attn, generator); found {', '.join(sorted(state)[:6])}…; map "
                        "yours with --rename OLD=NEW, e.g. --rename fc.=output.")
    if options.embed_activation is not None and options.embed_activation != found.arch.embed_activation:
        found.arch = Architecture(**{**found.arch.__dict__, "embed_activation": options.embed_activation})
        found.found = [n for n in found.found if "relu" not in n]
        found.found.append(f"--embed-activation {options.embed_activation}: the decoder's embedded input is read "
                           + ("through relu" if options.embed_activation == "relu" else "as it is"))
    for key in [k for k in found.state if k.endswith(("_reverse",)) and not k.startswith("encoder.")]:
        found.problems.append(f"key {key}: only the encoder may be bidirectional")
    for key in sorted(found.state) if not found.problems else ():  # a layout's own problem names its keys
        if re.search(r"attn|attention", key, re.I) and not key.startswith("attention."):
            found.problems.append(f"key {key}: attention weights under an unknown name (map them with --rename)")
    return found


def _one_half(state: dict[str, torch.Tensor]) -> bool:
    """Exactly one recurrent module: the tutorial's encoder or decoder saved alone, the usual mistake."""
    prefixes = {key.split("weight_hh")[0] for key in state if "weight_hh" in key}
    modules = {prefix.split(".layers.")[0] for prefix in prefixes}  # an OpenNMT StackedLSTM's layers are one module
    return len(modules) == 1


def _shape_problems(state: dict[str, torch.Tensor]) -> tuple[str | None, int, int, int, list[str]]:
    """Cell, decoder hidden size, layers and embedding size from the shapes, with every problem found."""
    problems: list[str] = []
    for part in ("encoder", "decoder"):
        if f"{part}.weight_hh_l0" not in state:
            problems.append(f"no {part}: expected {part}.weight_hh_l0 of an nn.GRU or nn.LSTM (map yours with "
                            f"--rename, e.g. --rename {'enc' if part == 'encoder' else 'dec'}.rnn.={part}.)")
    if not {"output.weight", "output.bias"} <= set(state):
        problems.append("no output layer: expected output.weight and output.bias (map yours with --rename, e.g. "
                        "--rename fc.=output.)")
    embeddings = [k for k in ("embedding.weight", "src_embedding.weight", "tgt_embedding.weight") if k in state]
    if not embeddings:
        problems.append("no embedding: expected embedding.weight, or src_embedding.weight and tgt_embedding.weight")
    if problems:
        return None, 0, 0, 0, problems
    hh = state["decoder.weight_hh_l0"]
    hidden, rows = int(hh.shape[-1]), int(hh.shape[0])
    cell = {3: "gru", 4: "lstm"}.get(rows // hidden) if hidden and rows % hidden == 0 else None
    if cell is None:
        problems.append(f"key decoder.weight_hh_l0 has {rows} rows for hidden size {hidden}: expected 3×hidden "
                        "(GRU) or 4×hidden (LSTM)")
    layers = 1 + max(int(m.group(3)) for k in state if (m := _PARAM.match(k)) and m.group(1) == "encoder") \
        if any(_PARAM.match(k) for k in state) else 1
    sizes = {int(state[k].shape[-1]) for k in embeddings}
    if len(sizes) > 1:
        problems.append(f"the source and target embeddings differ in size ({', '.join(map(str, sorted(sizes)))}); "
                        "tui-neuron needs one embedding size")
    return cell, hidden, layers, min(sizes), problems


def infer_config(found: Detected, vocab_sizes: tuple[int, int], options: ImportOptions, max_position: int,
                 two_vocabs: bool) -> ModelConfig:
    """Cell, sizes, layers and wiring from the shapes; every problem (the layout's, the wiring's, each key's)
    in one UserError."""
    state, arch = found.state, found.arch
    cell, hidden, layers, emb, problems = _shape_problems(state)
    problems = found.problems + problems
    if cell is None:
        raise UserError(_joined(problems, found))
    problems += architecture_problems(arch, cell, hidden, layers)
    enc_hidden = int(state["encoder.weight_hh_l0"].shape[-1])
    if enc_hidden * (2 if arch.bidirectional else 1) != hidden:
        what = "a bidirectional encoder's states ([forward; backward])" if arch.bidirectional else "the encoder's states"
        problems.append(f"{what} are {enc_hidden * (2 if arch.bidirectional else 1)} wide and the decoder's {hidden}: "
                        "tui-neuron records both in one strip of neurons and needs one width")
    shared = "embedding.weight" in state
    src_rows = int(state["embedding.weight" if shared else "src_embedding.weight"].shape[0]) \
        if shared or "src_embedding.weight" in state else 0
    tgt_rows = int(state["embedding.weight" if shared else "tgt_embedding.weight"].shape[0]) \
        if shared or "tgt_embedding.weight" in state else 0
    _vocab_problems(problems, (src_rows, tgt_rows), vocab_sizes, two_vocabs)
    config = ModelConfig(vocab_sizes[1], cell, emb, hidden, max_position, options.n_signals,
                         max(options.max_len, max_position), layers, shared,
                         vocab_sizes[0] if two_vocabs else None, arch)
    if not problems:
        _key_problems(problems, state, expected_shapes(config), config)
    if problems:
        raise UserError(_joined(problems, found))
    return config


def _vocab_problems(problems: list[str], rows: tuple[int, int], sizes: tuple[int, int], two: bool) -> None:
    if rows[0] != rows[1] and not two:
        problems.append(f"the source embedding has {rows[0]} rows and the target's {rows[1]}: give the two "
                        "vocabularies with --src-vocab and --tgt-vocab")
        return
    if not two:
        if rows[1] != sizes[1]:
            problems.append(f"the vocabulary has {sizes[1]} tokens but the embedding has {rows[1]} rows; give the "
                            "vocabulary the model was trained with")
        return
    for side, n_rows, n_tokens in (("source", rows[0], sizes[0]), ("target", rows[1], sizes[1])):
        if n_rows and n_rows != n_tokens:
            flag = ("--src-vocab" if side == "source" else "--tgt-vocab") if two else "--vocab"
            problems.append(f"the {side} vocabulary ({flag}) has {n_tokens} tokens but the {side} embedding has "
                            f"{n_rows} rows; give the vocabulary the model was trained with")


def _key_problems(problems: list[str], state: dict[str, torch.Tensor], shapes: dict[str, tuple[int, ...]],
                  config: ModelConfig) -> None:
    what = f"a {config.layers}-layer {config.cell.upper()} ({config.architecture.describe()})"
    for key in sorted(set(shapes) - set(state)):
        problems.append(f"key {key} is missing ({'biases are required' if '.bias' in key else 'expected'} for {what})")
    for key in sorted(set(state) - set(shapes)):
        problems.append(f"unexpected key {key} (map or drop it with --rename OLD=NEW)")
    for key, shape in shapes.items():
        if key in state and tuple(state[key].shape) != shape:
            problems.append(f"key {key} has shape {tuple(state[key].shape)}; {what} with hidden {config.hidden} "
                            f"needs {shape}")
        elif key in state and (not state[key].is_floating_point() or not bool(torch.isfinite(state[key]).all())):
            problems.append(f"key {key} must hold finite floating-point values")


def _joined(problems: list[str], found: Detected) -> str:
    head = f"cannot import this {found.layout} model ({len(problems)} problem{'s' * (len(problems) > 1)}): "
    return head + "; ".join(problems)


def _specials(itos: list[str], options: ImportOptions, side: str, positions: str | None
              ) -> tuple[SpecialTokens | None, list[str], list[str]]:
    """The specials of one vocabulary: the user's spellings, else the usual ones; a source side without some
    falls back (its padding is never read), a target side must have <bos> and <eos>. (specials, notes,
    problems)"""
    stoi, chosen, notes, problems, stand_ins = set(itos), {}, [], [], []
    for role, spellings in SPECIAL_SPELLINGS.items():
        given = options.specials.get(role)
        if given is not None:
            if given in stoi:
                chosen[role] = given
            else:
                problems.append(f"--{role} {given!r} is not in the {side} vocabulary")
            continue
        spelled = next((t for t in spellings if t in stoi), None)
        if spelled is None and (side == "source" or role in ("pad", "unk")):
            spelled = itos[0] if side == "source" else None
        if spelled is None and role in ("pad", "unk"):
            spelled = chosen.get("bos") or next((t for t in SPECIAL_SPELLINGS["bos"] if t in stoi), None)
        if spelled is None:
            problems.append(f"the {side} vocabulary has no {role} token (tried {', '.join(spellings)}): name it with "
                            f"--{role}")
            continue
        if spelled not in spellings:
            stand_ins.append((role, spelled))
        chosen[role] = spelled
    if stand_ins:
        names = " or ".join(role for role, _ in stand_ins)
        notes.append(f"the {side or 'shared'} vocabulary has no {names} token: {stand_ins[0][1]!r} stands in (padding "
                     "is never read; unknown words are read as it)")
    if problems:
        return None, notes, problems
    return SpecialTokens(chosen["pad"], chosen["unk"], chosen["bos"], chosen["eos"], positions), notes, problems


def _position_pattern(target: list[str], options: ImportOptions, two_vocabs: bool, notes: list[str],
                      problems: list[str]) -> str | None:
    if options.no_positions:
        return None
    pattern = options.position_pattern or "<pos_{T}>"
    if pattern.replace("{T}", "1") in target and not two_vocabs:
        return pattern
    if options.position_pattern is not None:
        problems.append(f"the vocabulary has no position token {pattern.replace('{T}', '1')!r}; give "
                        "--position-pattern or --no-positions")
    else:
        notes.append("no position tokens: control signals are off")
    return None


@dataclass
class Vocabularies:
    source: list[str] | None
    target: list[str]
    from_file: str


def read_vocabularies(sources: ImportSources, carried: dict[str, list[str]]) -> Vocabularies:
    """One shared vocabulary, or a source and a target one, from the flags or (OpenNMT-py) the checkpoint."""
    if sources.vocab and (sources.src_vocab or sources.tgt_vocab):
        raise UserError("give --vocab (one shared vocabulary) or --src-vocab and --tgt-vocab, not both")
    if sources.vocab:
        return Vocabularies(None, read_vocab(sources.vocab), sources.vocab.name)
    if sources.src_vocab and sources.tgt_vocab:
        return Vocabularies(read_vocab(sources.src_vocab), read_vocab(sources.tgt_vocab),
                            f"{sources.src_vocab.name}, {sources.tgt_vocab.name}")
    if sources.src_vocab or sources.tgt_vocab:
        raise UserError("give both --src-vocab and --tgt-vocab (or one shared --vocab)")
    if "src" in carried and "tgt" in carried:
        src, tgt = carried["src"], carried["tgt"]
        return Vocabularies(None if src == tgt else src, tgt, "the checkpoint's own vocabulary")
    raise UserError("no vocabulary: give --vocab FILE (one token per line, line number = id), or --src-vocab and "
                    "--tgt-vocab for a model with two")


def build_vocab(vocabs: Vocabularies, options: ImportOptions, found: Detected) -> Vocab:
    """The target vocabulary, with the source one attached when there are two; every problem in one line."""
    notes, problems = found.found, list(found.problems)
    two = vocabs.source is not None
    positions = _position_pattern(vocabs.target, options, two, notes, problems)
    target_sp, t_notes, t_problems = _specials(vocabs.target, options, "target" if two else "", positions)
    notes += t_notes
    problems += t_problems
    name, lowercase = options.tokenizer or found.tokenizer[0], options.lowercase
    tokenizer = Tokenizer(name, 1, found.tokenizer[1] if lowercase is None else lowercase, options.source_prefix,
                          options.source_suffix)
    wrap = " ".join([*options.source_prefix, "…", *options.source_suffix]) if options.source_prefix or \
        options.source_suffix else ""
    notes.append(f"typed text: split by {name}, {'lowercased' if tokenizer.lowercase else 'case kept'}"
                 + (f", read as {wrap}" if wrap else "") + " (--tokenizer, --cased/--lowercase, --source-prefix/suffix)")
    source = None
    if vocabs.source is not None:
        source_sp, s_notes, s_problems = _specials(vocabs.source, options, "source", None)
        notes += s_notes
        problems += s_problems
        if source_sp is not None:
            source = Vocab(vocabs.source, source_sp, 0, tokenizer)
    missing = [t for t in (*options.source_prefix, *options.source_suffix)
               if t not in (vocabs.source or vocabs.target)]
    problems += [f"--source-prefix/--source-suffix token {t!r} is not in the source vocabulary" for t in missing]
    if problems or target_sp is None:
        raise UserError(_joined(problems, found))
    vocab = Vocab(vocabs.target, target_sp, None, tokenizer)
    vocab.source = source
    return vocab


def import_model(sources: ImportSources, out: Path, options: ImportOptions) -> tuple[Checkpoint, Detected]:
    """Read, recognise, check everything, then write: nothing is written unless the whole import is sound."""
    file = gather_state(sources)
    found = recognise(file.tensors, options)
    vocabs = read_vocabularies(sources, file.vocabs)
    vocab = build_vocab(vocabs, options, found)
    two = vocab.source is not None
    config = infer_config(found, (len(vocab.src), len(vocab)), options, vocab.max_position, two)
    model = Seq2Seq(config)
    model.load_state_dict({k: v.float() for k, v in found.state.items()})
    files = [p.name for p in (sources.state, sources.encoder, sources.decoder) if p is not None]
    record = {"imported_from": ", ".join(files), "vocab_file": vocabs.from_file, "layout": found.layout,
              "renames": [f"{o}={n}" for o, n in options.renames], "found": found.found}
    ckpt = Checkpoint(model.eval(), vocab, {}, record, out)
    save_checkpoint(ckpt, out)
    return ckpt, found


def describe(config: ModelConfig, vocab: Vocab) -> str:
    if vocab.source is not None:
        emb = f"two vocabularies ({len(vocab.source)} source, {len(vocab)} target tokens)"
    else:
        emb = f"{len(vocab)} tokens, " + ("one shared embedding" if config.shared_embedding else
                                          "separate source and target embeddings")
    pos = (f"positions 1..{vocab.max_position}" if vocab.has_positions else "no position tokens (controls off)")
    return (f"{config.layers}-layer {config.cell.upper()}, embedding {config.emb_dim}, hidden {config.hidden}, "
            f"{emb}, {pos}; decoder: {config.architecture.describe()}")


__all__ = ["ImportOptions", "ImportSources", "SPLIT_RULES", "describe", "import_model", "infer_config",
           "parse_renames", "read_state", "read_vocab"]
