"""Checkpoint subcommands: info, import, upgrade and eval."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import UserError
from .common import _CHECKPOINT, COUNT, SEED, Table, _load, _print_json, _refuse_overwrite, app, err, limits, out


@app.command()
def info(
    checkpoint: _CHECKPOINT,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Config, parameter count, vocabulary size and training record of a checkpoint."""
    ckpt = _load(checkpoint)
    n_params = sum(p.numel() for p in ckpt.model.parameters())
    training = {k: v for k, v in ckpt.training.items() if k != "history"}
    data = {"path": str(checkpoint), "config": ckpt.config.to_json(), "parameters": n_params,
            "vocab_size": len(ckpt.vocab), "training": training,
            "heldout_files": [f["name"] for f in ckpt.heldout.get("files", [])]}
    if as_json:
        _print_json(data)
        return
    table = Table(title=str(checkpoint), show_header=False)
    for k, v in ckpt.config.to_json().items():
        table.add_row(k, ckpt.config.architecture.describe() if k == "architecture" else str(v))
    table.add_row("parameters", f"{n_params:,}")
    for k in ("steps", "seconds", "best_step", "heldout_accuracy", "heldout_loss", "stopped", "corpus_sha256"):
        if k in training:
            v = training[k]
            table.add_row(k, f"{v:.4f}" if isinstance(v, float) else str(v))
    table.add_row("corpus files", ", ".join(data["heldout_files"]) or "-")
    out.print(table)


_OptPath = Optional[Path]


@app.command("import")
def import_cmd(
    state: Annotated[_OptPath, typer.Argument(help="The model's state dict or checkpoint: .safetensors, or .pt/.pth "
                                                   "(read weights-only)")] = None,
    out_path: Annotated[Path, typer.Option("--out", "-o", help="Checkpoint to write (.safetensors)")] = Path(),
    encoder: Annotated[_OptPath, typer.Option(help="The encoder's own state dict (with --decoder)")] = None,
    decoder: Annotated[_OptPath, typer.Option(help="The decoder's own state dict (with --encoder)")] = None,
    vocab: Annotated[_OptPath, typer.Option(help="One shared vocabulary: one token per line (line number = id) or "
                                                 "a JSON list")] = None,
    src_vocab: Annotated[_OptPath, typer.Option(help="The source vocabulary of a model with two")] = None,
    tgt_vocab: Annotated[_OptPath, typer.Option(help="The target vocabulary of a model with two")] = None,
    rename: Annotated[Optional[list[str]], typer.Option(help="Map a key prefix, OLD=NEW (repeatable), "
                                                             "e.g. fc.=output.")] = None,
    pad: Annotated[Optional[str], typer.Option(help="The padding token (default: found)")] = None,
    unk: Annotated[Optional[str], typer.Option(help="The unknown-word token (default: found)")] = None,
    bos: Annotated[Optional[str], typer.Option(help="The start-of-output token (default: found)")] = None,
    eos: Annotated[Optional[str], typer.Option(help="The end-of-output token (default: found)")] = None,
    position_pattern: Annotated[Optional[str], typer.Option(
        help="Position tokens, {T} standing for the position (default: <pos_{T}> when present)")] = None,
    no_positions: Annotated[bool, typer.Option(help="The model has no position tokens (controls unavailable)")] = False,
    tokenizer: Annotated[Optional[str], typer.Option(help="tui-neuron-words (words and punctuation) or whitespace "
                                                          "(default: the layout's usual one)")] = None,
    cased: Annotated[Optional[bool], typer.Option("--cased/--lowercase",
                                                  help="Keep or lowercase the case of typed text (default: the "
                                                       "layout's usual choice)")] = None,
    embed_activation: Annotated[Optional[str], typer.Option(help="none or relu on the decoder's embedded input "
                                                                 "(default: the layout's)")] = None,
    source_prefix: Annotated[Optional[list[str]], typer.Option(help="A token your code puts before every source, "
                                                                    "e.g. <sos> (repeatable)")] = None,
    source_suffix: Annotated[Optional[list[str]], typer.Option(help="A token your code puts after every source, "
                                                                    "e.g. <eos> (repeatable)")] = None,
    max_len: Annotated[int, typer.Option(callback=limits(1, 1000), help="Longest output decoded (plus 2)")] = 50,
    force: Annotated[bool, typer.Option(help="Replace an existing --out")] = False,
) -> None:
    """Import a torch GRU/LSTM encoder-decoder trained elsewhere: known layouts are recognised.

    PyTorch's translation tutorial, the pytorch-seq2seq notebooks, OpenNMT-py's RNN models and tui-neuron's own
    names, with attention, bidirectional encoders and two vocabularies; docs/bring-your-own-model.md has one
    example each."""
    from ..checkpoint.importer import ImportOptions, ImportSources, describe, import_model, parse_renames
    from ..model.tokenizer import SPLIT_RULES

    if out_path == Path():
        raise UserError("--out: name the checkpoint to write, e.g. --out mine.safetensors")
    if tokenizer is not None and tokenizer not in SPLIT_RULES:
        raise UserError(f"--tokenizer {tokenizer!r}: use one of {', '.join(SPLIT_RULES)}")
    if embed_activation not in (None, "none", "relu"):
        raise UserError(f"--embed-activation {embed_activation!r}: use none or relu")
    if position_pattern is not None and position_pattern.count("{T}") != 1:
        raise UserError(f"--position-pattern {position_pattern!r} must contain {{T}} once, e.g. <pos_{{T}}>")
    _refuse_overwrite(out_path, force, example="model.safetensors")
    specials = {k: v for k, v in (("pad", pad), ("unk", unk), ("bos", bos), ("eos", eos)) if v is not None}
    options = ImportOptions(specials, position_pattern, no_positions, tokenizer, None if cased is None else not cased,
                            parse_renames(rename or []), max_len, 1, embed_activation, tuple(source_prefix or ()),
                            tuple(source_suffix or ()))
    sources = ImportSources(state, encoder, decoder, vocab, src_vocab, tgt_vocab)
    ckpt, found = import_model(sources, out_path, options)
    out.print(f"found the {found.layout} layout" + "".join(f"\n  {note}" for note in found.found), markup=False)
    out.print(f"imported a {describe(ckpt.config, ckpt.vocab)} -> {out_path}", markup=False)


@app.command()
def upgrade(
    old: Annotated[Path, typer.Argument(help="A checkpoint in an older format")],
    new: Annotated[Path, typer.Argument(help="Where to write it in the current format")],
    force: Annotated[bool, typer.Option(help="Replace an existing NEW (it may be OLD itself)")] = False,
    fp16: Annotated[bool, typer.Option(help="Store the weights in fp16 (half the size; computation stays fp32)")] =
        False,
) -> None:
    """Rewrite a checkpoint in the current format (tui-neuron/2), with a digest of its weights."""
    from ..checkpoint.format import FORMAT, load_checkpoint, save_checkpoint
    from ..training.corpus import relative_heldout

    _refuse_overwrite(new, force, name="NEW", example="model.safetensors")
    ckpt = load_checkpoint(old)
    ckpt.heldout = relative_heldout(ckpt.heldout, new.parent, old.parent)
    import torch

    dtype = torch.float16 if fp16 else _stored_dtype(old)
    save_checkpoint(ckpt, new, dtype)
    out.print(f"{old} -> {new} ({FORMAT}, weights stored as {str(dtype).removeprefix('torch.')})")


def _stored_dtype(path: Path):
    """The dtype the weights are stored in (an upgrade keeps fp16 files fp16)."""
    import torch
    from safetensors import safe_open

    names = {"F16": torch.float16, "BF16": torch.bfloat16, "F64": torch.float64}
    with safe_open(str(path), framework="pt") as f:
        stored = {f.get_slice(k).get_dtype() for k in f.keys()}
    return names.get(stored.pop(), torch.float32) if len(stored) == 1 else torch.float32


@app.command("eval")
def eval_cmd(
    checkpoint: _CHECKPOINT,
    corpus: Annotated[
        Optional[list[Path]], typer.Argument(help="A new corpus to score whole (default: the checkpoint's held-out block)")
    ] = None,
    corpus_dir: Annotated[
        Optional[list[Path]], typer.Option("--corpus", help="Where the checkpoint's corpus files are now, if moved")
    ] = None,
    examples: Annotated[int, typer.Option(callback=COUNT, help="Examples to draw")] = 3000,
    seed: Annotated[int, typer.Option(callback=SEED, help="Seed for drawing examples")] = 4321,
    signals: Annotated[Optional[int], typer.Option(callback=limits(1, 1000),
                                                   help="Signals per example (default: the model's)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Held-out positioning accuracy (TOKEN exactly at T under greedy decoding): overall, per T, per signal count."""
    from ..training.evaluate import evaluate_checkpoint

    ckpt = _load(checkpoint)
    with err.status("decoding held-out examples"):
        result = evaluate_checkpoint(ckpt, corpus, corpus_dir, examples, seed, signals)
    if as_json:
        _print_json(result)
        return
    out.print(f"[bold]{result['source']}[/]: {result['report']['overall']['n']} examples")
    rep = result["report"]
    out.print(f"positioning accuracy {rep['overall']['accuracy']:.2%} (every control landed); "
              f"per signal {rep['per_signal']['accuracy']:.2%}; held-out loss {rep['heldout_loss']:.3f}")
    table = Table("T", "accuracy", "n")
    for t, v in rep["per_position"].items():
        table.add_row(t, f"{v['accuracy']:.1%}", str(v["n"]))
    out.print(table)
