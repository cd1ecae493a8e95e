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
        table.add_row(k, str(v))
    table.add_row("parameters", f"{n_params:,}")
    for k in ("steps", "seconds", "best_step", "heldout_accuracy", "heldout_loss", "stopped", "corpus_sha256"):
        if k in training:
            v = training[k]
            table.add_row(k, f"{v:.4f}" if isinstance(v, float) else str(v))
    table.add_row("corpus files", ", ".join(data["heldout_files"]) or "-")
    out.print(table)


@app.command("import")
def import_cmd(
    state: Annotated[Path, typer.Argument(help="The model's state_dict: .safetensors, or .pt/.pth (weights only)")],
    vocab: Annotated[Path, typer.Option(help="Vocabulary: one token per line (line number = id) or a JSON list")],
    out_path: Annotated[Path, typer.Option("--out", "-o", help="Checkpoint to write (.safetensors)")],
    rename: Annotated[Optional[list[str]], typer.Option(help="Map a key prefix, OLD=NEW (repeatable), "
                                                             "e.g. fc.=output.")] = None,
    pad: Annotated[str, typer.Option(help="The padding token")] = "<pad>",
    unk: Annotated[str, typer.Option(help="The unknown-word token")] = "<unk>",
    bos: Annotated[str, typer.Option(help="The start-of-output token")] = "<bos>",
    eos: Annotated[str, typer.Option(help="The end-of-output token")] = "<eos>",
    position_pattern: Annotated[str, typer.Option(help="Position tokens, {T} standing for the position")] = "<pos_{T}>",
    no_positions: Annotated[bool, typer.Option(help="The model has no position tokens (controls unavailable)")] = False,
    tokenizer: Annotated[str, typer.Option(help="tui-neuron-words (words and punctuation) or whitespace")] =
        "tui-neuron-words",
    cased: Annotated[bool, typer.Option(help="Do not lowercase text before splitting")] = False,
    max_len: Annotated[int, typer.Option(callback=limits(1, 1000), help="Longest output decoded (plus 2)")] = 50,
    force: Annotated[bool, typer.Option(help="Replace an existing --out")] = False,
) -> None:
    """Import a torch GRU/LSTM Seq2Seq trained elsewhere (any number of layers, shared or separate embeddings)."""
    from ..checkpoint.importer import ImportOptions, describe, import_model, parse_renames
    from ..model.tokenizer import SPLIT_RULES, SpecialTokens, Tokenizer

    if tokenizer not in SPLIT_RULES:
        raise UserError(f"--tokenizer {tokenizer!r}: use one of {', '.join(SPLIT_RULES)}")
    if not no_positions and position_pattern.count("{T}") != 1:
        raise UserError(f"--position-pattern {position_pattern!r} must contain {{T}} once, e.g. <pos_{{T}}>")
    _refuse_overwrite(out_path, force)
    options = ImportOptions(SpecialTokens(pad, unk, bos, eos, None if no_positions else position_pattern),
                            Tokenizer(tokenizer, 1, not cased), parse_renames(rename or []), max_len)
    ckpt = import_model(state, vocab, out_path, options)
    out.print(f"imported a {describe(ckpt.config, ckpt.vocab)} -> {out_path}")


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

    _refuse_overwrite(new, force)
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
