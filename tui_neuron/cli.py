"""The headless face: typer subcommands over the same core functions the explorer uses."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from .errors import UserError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="tui-neuron: explore, train and analyse the neurons of recurrent encoder-decoders.")
out = Console(soft_wrap=True)  # long paths and messages stay on one line (greppable)
err = Console(stderr=True, soft_wrap=True)

DEFAULT_CHECKPOINT = Path(__file__).resolve().parent.parent / "checkpoints" / "gru-positioning.safetensors"


def _default_checkpoint() -> Path:
    """The shipped checkpoint: beside the package in a checkout, or named by TUI_NEURON_CHECKPOINT."""
    import os

    env = os.environ.get("TUI_NEURON_CHECKPOINT")
    if env:
        return Path(env)
    if DEFAULT_CHECKPOINT.exists():
        return DEFAULT_CHECKPOINT
    raise UserError("no checkpoint given and none shipped here; pass one: tui-neuron open model.safetensors")


def _load(path: Path | None):
    from .model.checkpoint import load_checkpoint

    ckpt = load_checkpoint(path or _default_checkpoint())
    for warning in ckpt.warnings:
        err.print(f"warning: {warning}", markup=False, highlight=False, soft_wrap=True)
    return ckpt


_LAYER = Annotated[Optional[int], typer.Option(help="Layer of a multi-layer model to analyse (default: the top)")]


def _load_layer(path: Path, layer: int | None):
    """A checkpoint whose analyses read `layer` (checked against the model's layers)."""
    ckpt = _load(path)
    if layer is not None:
        if not 0 <= layer < ckpt.config.layers:
            raise UserError(f"--layer {layer}: the model has layers 0..{ckpt.config.layers - 1}")
        ckpt.analysis_layer = layer
    return ckpt


def _print_json(data) -> None:
    sys.stdout.write(json.dumps(data, indent=2) + "\n")


# ----------------------------------------------------------------------------- train


@app.command()
def train(
    corpus: Annotated[list[Path], typer.Argument(help="Text files or folders of .txt files")],
    out_path: Annotated[Path, typer.Option("--out", "-o", help="Checkpoint to write (.safetensors)")],
    cell: Annotated[str, typer.Option(help="gru or lstm")] = "gru",
    emb: Annotated[int, typer.Option(help="Embedding size")] = 128,
    hidden: Annotated[int, typer.Option(help="Hidden size")] = 256,
    layers: Annotated[int, typer.Option(help="Stacked recurrent layers in encoder and decoder")] = 1,
    separate_embeddings: Annotated[bool, typer.Option(help="One embedding for the source, one for the target")] = False,
    vocab_size: Annotated[int, typer.Option(help="Words kept, by frequency")] = 2000,
    max_position: Annotated[int, typer.Option(help="Largest control position T")] = 13,
    signals: Annotated[int, typer.Option(help="Control signals per example")] = 1,
    mode: Annotated[str, typer.Option(help="spans (default) or lines (consecutive line pairs)")] = "spans",
    min_len: Annotated[int, typer.Option(help="Shortest span / target")] = 4,
    max_len: Annotated[int, typer.Option(help="Longest span / target")] = 16,
    batch_size: Annotated[int, typer.Option(help="Examples per step (per process)")] = 128,
    lr: Annotated[float, typer.Option(help="Peak AdamW learning rate")] = 2e-3,
    schedule: Annotated[str, typer.Option(help="cosine (warmup, then decay over the budget) or plateau (halve)")] = "cosine",
    warmup_steps: Annotated[int, typer.Option(help="Linear warmup steps (cosine schedule)")] = 500,
    dropout: Annotated[float, typer.Option(help="Dropout on embeddings and decoder outputs (training only)")] = 0.3,
    word_dropout: Annotated[float, typer.Option(help="Share of decoder inputs replaced by <unk> (training only)")] = 0.5,
    weight_decay: Annotated[float, typer.Option(help="AdamW decoupled weight decay")] = 0.01,
    label_smoothing: Annotated[float, typer.Option(help="Label smoothing of the cross-entropy")] = 0.0,
    control_weight: Annotated[float, typer.Option(help="Weight of the control tokens' loss terms (1: plain)")] = 5.0,
    seed: Annotated[int, typer.Option(help="Random seed")] = 0,
    steps: Annotated[Optional[int], typer.Option(help="Step budget")] = None,
    minutes: Annotated[Optional[float], typer.Option(help="Time budget in minutes")] = None,
    eval_every: Annotated[int, typer.Option(help="Steps between held-out evaluations")] = 250,
    eval_examples: Annotated[int, typer.Option(help="Held-out examples per evaluation")] = 1000,
    patience: Annotated[int, typer.Option(help="Evaluations without improvement before stopping")] = 20,
    curriculum_steps: Annotated[int, typer.Option(help="Steps trained on short targets first")] = 1500,
    curriculum_len: Annotated[int, typer.Option(help="Longest target during the curriculum")] = 6,
    heldout_fraction: Annotated[float, typer.Option(help="Tail of each file kept for evaluation")] = 0.05,
    fp16: Annotated[bool, typer.Option(help="Store weights in fp16 (computation stays fp32)")] = False,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or mps (auto: CUDA when present)")] = "cpu",
    threads: Annotated[Optional[int], typer.Option(help="torch threads (default: all cores)")] = None,
    resume: Annotated[bool, typer.Option(help="Continue from OUT.resume.safetensors")] = False,
    reset_lr: Annotated[bool, typer.Option(help="With --resume and --schedule plateau: restart at --lr")] = False,
    force: Annotated[bool, typer.Option(help="Replace an existing OUT and its resume state")] = False,
) -> None:
    """Train a token-positioning Seq2Seq; the best checkpoint is kept, Ctrl-C is safe, --resume continues.

    Under torchrun (`torchrun --nproc-per-node N $(command -v tui-neuron) train ...`) it trains data-parallel.
    """
    import torch
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from .model.train import TrainConfig, Trainer, check_output

    if threads is not None:
        if threads < 1:
            raise UserError(f"--threads {threads}: give a positive number of threads")
        torch.set_num_threads(threads)
    if minutes is not None and not minutes > 0:
        raise UserError(f"--minutes {minutes}: give a positive time budget")
    cfg = TrainConfig(
        corpus=tuple(str(c) for c in corpus), out=str(out_path), cell=cell, emb_dim=emb, hidden=hidden, layers=layers,
        shared_embedding=not separate_embeddings,
        vocab_size=vocab_size, max_position=max_position, n_signals=signals, mode=mode, min_len=min_len,
        max_len=max_len, batch_size=batch_size, lr=lr, seed=seed, max_steps=steps,
        time_budget=minutes * 60 if minutes is not None else None, eval_every=eval_every,
        eval_examples=eval_examples, patience=patience, curriculum_steps=curriculum_steps,
        curriculum_len=curriculum_len, heldout_fraction=heldout_fraction, save_dtype="float16" if fp16 else "float32",
        dropout=dropout, word_dropout=word_dropout, weight_decay=weight_decay, label_smoothing=label_smoothing,
        control_weight=control_weight,
        schedule=schedule, warmup_steps=warmup_steps, device=device)
    cfg.check()
    check_output(out_path, resume, force)
    from .model import distributed

    world = distributed.world_from_env()
    show = world.is_main
    with Progress(TextColumn("[bold]train"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                  TextColumn("{task.fields[status]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                  console=err, transient=False, disable=not show) as progress:
        task = progress.add_task("train", total=1.0, status="loading corpus")
        last = {"acc": "-"}

        def report(info: dict) -> None:
            if "eval" in info:
                last["acc"] = f"{info['eval']['heldout_accuracy']:.1%}"
                err.log(f"step {info['step']}: held-out loss {info['eval']['heldout_loss']:.3f}, "
                        f"positioning {last['acc']}, lr {info['lr']:.2e}")
            progress.update(task, completed=info["fraction"], status=(
                f"step {info['step']} loss {info['loss']:.3f} held-out {last['acc']} "
                f"{info['tokens_per_s']:.0f} tok/s"))

        trainer = Trainer(cfg, report)
        distributed.join(trainer.world, trainer.device)
        try:
            progress.update(task, status=f"{len(trainer.vocab)} tokens, {len(trainer.eval_set)} held-out examples")
            try:
                state = trainer.run(resume=resume, reset_lr=reset_lr)
            except KeyboardInterrupt:
                if show:
                    err.print(f"interrupted at step {trainer.state.step}; continue with the same command plus --resume")
                raise typer.Exit(130) from None
        finally:
            distributed.leave(trainer.world)
    if show:
        out.print(f"{state.stopped}; best held-out positioning accuracy {state.best_acc:.2%} at step "
                  f"{state.best_step} -> {out_path}")


# ----------------------------------------------------------------------------- info


@app.command()
def info(
    checkpoint: Annotated[Path, typer.Argument(help="A .safetensors checkpoint")],
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


# ----------------------------------------------------------------------------- import, upgrade


def _refuse_overwrite(path: Path, force: bool) -> None:
    if path.is_dir():
        raise UserError(f"--out {path} is a folder; give a file name such as {path / 'model.safetensors'}")
    if path.exists() and not force:
        raise UserError(f"{path} exists; pass --force to replace it")
    if not path.parent.is_dir():
        raise UserError(f"the folder {path.parent} does not exist; create it first")


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
    max_len: Annotated[int, typer.Option(min=1, max=1000, help="Longest output decoded (plus 2)")] = 50,
    force: Annotated[bool, typer.Option(help="Replace an existing --out")] = False,
) -> None:
    """Import a torch GRU/LSTM Seq2Seq trained elsewhere (any number of layers, shared or separate embeddings)."""
    from .model.importer import ImportOptions, describe, import_model, parse_renames
    from .model.tokenizer import SPLIT_RULES, SpecialTokens, Tokenizer

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
    from .model.checkpoint import FORMAT, load_checkpoint, save_checkpoint
    from .model.data import relative_heldout

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


# ----------------------------------------------------------------------------- eval


@app.command("eval")
def eval_cmd(
    checkpoint: Annotated[Path, typer.Argument(help="A .safetensors checkpoint")],
    corpus: Annotated[
        Optional[list[Path]], typer.Argument(help="A new corpus to score whole (default: the checkpoint's held-out block)")
    ] = None,
    corpus_dir: Annotated[
        Optional[list[Path]], typer.Option("--corpus", help="Where the checkpoint's corpus files are now, if moved")
    ] = None,
    examples: Annotated[int, typer.Option(min=1, help="Examples to draw")] = 3000,
    seed: Annotated[int, typer.Option(help="Seed for drawing examples")] = 4321,
    signals: Annotated[Optional[int], typer.Option(min=1, help="Signals per example (default: the model's)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Held-out positioning accuracy (TOKEN exactly at T under greedy decoding): overall, per T, per signal count."""
    from .analysis.evaluation import evaluate_checkpoint

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


# ----------------------------------------------------------------------------- decode


@app.command()
def decode(
    checkpoint: Annotated[Path, typer.Argument(help="A .safetensors checkpoint")],
    source: Annotated[Optional[str], typer.Argument(help="Source sentence")] = None,
    control: Annotated[Optional[list[str]], typer.Option("--control", "-c", help="WORD@T (repeatable)")] = None,
    intervene: Annotated[
        Optional[list[str]], typer.Option("--intervene", "-i", help="Intervention spec (repeatable), e.g. zero:all@T-1")
    ] = None,
    session: Annotated[
        Optional[Path], typer.Option(help="Replay a saved explorer session (source, controls, interventions)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON with every step's ids, h and gates")] = False,
) -> None:
    """Greedy-decode one source with control signals, optionally with interventions."""
    from .analysis.decoding import decode_one
    from .model.interventions import parse_intervention

    ckpt = _load(checkpoint)
    specs = list(intervene or [])
    controls = list(control or [])
    if session is not None:
        from .analysis.session import load_session

        sess = load_session(session)
        source = source or sess.source
        controls = controls or sess.controls
        specs = [iv for iv in sess.active_interventions()] + specs
    if source is None:
        raise UserError("give a source sentence (or --session FILE)")
    ivs = [parse_intervention(s) for s in specs]
    result = decode_one(ckpt, source, controls, ivs)
    if as_json:
        _print_json(result.to_json(with_states=True))
        return
    out.print(f"source  : {' '.join(result.source_tokens)}")
    out.print(f"controls: {' '.join(result.controls)}")
    out.print(f"output  : {' '.join(result.output_tokens)}")
    for line in result.landing_lines():
        out.print(f"  {line}")
    if ivs:
        out.print(f"[bold]with {', '.join(iv.spec() for iv in ivs)}[/]")
        out.print(f"output  : {' '.join(result.changed_tokens)}")
        for line in result.landing_lines(changed=True):
            out.print(f"  {line}")


# ----------------------------------------------------------------------------- analyze

analyze_app = typer.Typer(no_args_is_help=True, help="Batch analyses: the token-positioning paper's neuron functions.")
app.add_typer(analyze_app, name="analyze")


def _parse_positions(text: str) -> list[int]:
    from .model.interventions import NeuronSet

    ns = NeuronSet.parse(text)
    if ns.indices is None or not ns.indices:
        raise UserError(f"--positions {text!r}: give a range like 1-13 or a list like 1,3,5")
    return list(ns.indices)


@analyze_app.command("functions")
def analyze_functions_cmd(
    checkpoint: Annotated[Path, typer.Argument(help="A .safetensors checkpoint")],
    tokens: Annotated[Optional[str], typer.Option(help="Comma-separated control tokens (default: the most frequent)")] = None,
    n_tokens: Annotated[int, typer.Option(help="How many frequent tokens when --tokens is not given")] = 50,
    positions: Annotated[str, typer.Option(help="Positions T, e.g. 1-13")] = "",
    per_cell: Annotated[int, typer.Option(help="Examples per (token, T)")] = 8,
    threshold: Annotated[float, typer.Option(help="SVM accuracy for a plausible hypothesis")] = 0.95,
    candidate_fraction: Annotated[float, typer.Option(help="Share of neurons RFE keeps as candidates")] = 0.2,
    ig_keep: Annotated[float, typer.Option(help="Keep candidates in this top share of |IG|")] = 0.5,
    ig_steps: Annotated[int, typer.Option(help="Integration steps")] = 32,
    ig_baseline: Annotated[float, typer.Option(help="Integrated-gradients baseline value for every neuron")] = 0.0,
    corpus_dir: Annotated[
        Optional[list[Path]], typer.Option("--corpus", help="Where the checkpoint's corpus files are now, if moved")
    ] = None,
    cache: Annotated[Optional[Path], typer.Option(help="Folder for cached recordings (default: the user cache)")] = None,
    seed: Annotated[int, typer.Option(help="Seed for examples, splits and random neuron sets")] = 0,
    out_file: Annotated[Optional[Path], typer.Option("--out", "-o", help="Results JSON to write (default: "
                                                     "functions-CKPT.json in the results folder)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the results JSON too")] = False,
    layer: _LAYER = None,
) -> None:
    """Stage 1 (SVM + RFE), stage 2 (integrated gradients), stage 3 (Table 1 manipulations) for many tokens."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from .analysis.functions import FunctionsConfig, analyze_functions
    from .analysis.recording import build_examples, cache_key, cached_record, frequent_targets, heldout_lines
    from .model.checkpoint import atomic_write_text
    from .paths import cache_dir, free_path, results_dir

    ckpt = _load_layer(checkpoint, layer)
    pos = _parse_positions(positions) if positions else list(range(1, ckpt.config.max_position + 1))
    if not 0 < candidate_fraction <= 1 or not 0 < ig_keep <= 1:
        raise UserError("--candidate-fraction and --ig-keep must be in (0, 1]")
    lines = heldout_lines(ckpt, None, corpus_dir)
    words = [w.strip().lower() for w in tokens.split(",")] if tokens else frequent_targets(ckpt, lines, n_tokens)
    cfg = FunctionsConfig(threshold=threshold, candidate_fraction=candidate_fraction, ig_keep=ig_keep,
                          ig_steps=ig_steps, ig_baseline=ig_baseline, seed=seed)
    key = cache_key(ckpt, tokens=words, positions=pos, per_cell=per_cell, seed=seed, layer=ckpt.analysis_layer)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err) as progress:
        rec_task = progress.add_task("recording", total=None)

        def rec_progress(done: int, total: int) -> None:
            progress.update(rec_task, completed=done, total=total)

        rec, cached = cached_record(ckpt, cache or cache_dir(),
                                    lambda: build_examples(ckpt, lines, words, pos, per_cell, seed),
                                    key, rec_progress)
        progress.update(rec_task, description="recording (cached)" if cached else "recording", completed=1, total=1)
        tasks: dict[str, int] = {}

        def stage_progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = progress.add_task(stage, total=total)
            progress.update(tasks[stage], completed=done, total=total)

        results = analyze_functions(ckpt, rec, cfg, stage_progress)
    results["tokens_requested"] = words
    results["positions"] = pos
    results["layer"] = ckpt.config.layers - 1 if ckpt.analysis_layer is None else ckpt.analysis_layer
    if out_file is None:
        out_file = free_path(results_dir(), f"functions-{Path(ckpt.path or 'model').stem}")
    atomic_write_text(out_file, json.dumps(results, indent=1))
    if as_json:
        _print_json(results)
    _print_functions_table(results)
    out.print(f"results written to {out_file}")


def _print_functions_table(results: dict) -> None:
    from .analysis.functions import format_table

    table = Table("manipulation", "neurons", "n", "with the set [95% CI]", "random sets: mean ± sd (draws, range)",
                  "paper",
                  title=f"Table 1 — {len(results['tokens'])} tokens, {results['n_examples']} examples, "
                        f"positioning {results['positioning_accuracy']:.1%}")
    for row in format_table(results):
        table.add_row(*row)
    out.print(table)
    s5 = results.get("section5")
    if s5:
        t5 = Table("h_{T-1}", "mean z over outputting neurons at T", "mean r over storing neurons at T", "n",
                   title="Section 5: the triggering neurons' effect on the gates at T")
        for key, label in (("clean", "unchanged"), ("with_triggering", "only triggering neurons kept"),
                           ("without_triggering", "all masked")):
            if key in s5:
                t5.add_row(label, f"{s5[key]['z_outputting']:.3f}", f"{s5[key]['r_storing']:.3f}", str(s5[key]["n"]))
        out.print(t5)


def _recording(ckpt, tokens: Optional[str], n_tokens: int, positions: str, per_cell: int, corpus_dir, cache,
               seed: int, progress, task):
    """The (cached) positioning recording the functions, curves and storing jobs share."""
    from .analysis.recording import build_examples, cache_key, cached_record, frequent_targets, heldout_lines
    from .paths import cache_dir

    pos = _parse_positions(positions) if positions else list(range(1, ckpt.config.max_position + 1))
    lines = heldout_lines(ckpt, None, corpus_dir)
    words = [w.strip().lower() for w in tokens.split(",")] if tokens else frequent_targets(ckpt, lines, n_tokens)
    key = cache_key(ckpt, tokens=words, positions=pos, per_cell=per_cell, seed=seed, layer=ckpt.analysis_layer)
    rec, cached = cached_record(ckpt, cache or cache_dir(), lambda: build_examples(ckpt, lines, words, pos, per_cell, seed),
                                key, lambda d, t: progress.update(task, completed=d, total=t))
    progress.update(task, description="recording (cached)" if cached else "recording", completed=1, total=1)
    return rec, words, pos


def _stage_progress(progress):
    """A rich task per stage name, with a bar and the time left."""
    tasks: dict[str, int] = {}

    def update(stage: str, done: int, total: int) -> None:
        if stage not in tasks:
            tasks[stage] = progress.add_task(stage, total=total)
        progress.update(tasks[stage], completed=done, total=total)
    return update


def _progress():
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    TextColumn("left"), TimeRemainingColumn(), console=err)


_TOKENS = Annotated[Optional[str], typer.Option(help="Comma-separated control tokens (default: the most frequent)")]
_POSITIONS = Annotated[str, typer.Option(help="Positions T, e.g. 1-13 (default: all the model was trained on)")]
_CORPUS = Annotated[Optional[list[Path]], typer.Option("--corpus", help="Where the checkpoint's corpus files are now, "
                                                                         "if moved")]
_CACHE = Annotated[Optional[Path], typer.Option(help="Folder for cached recordings (default: the user cache)")]


def _write_results(out_file: Optional[Path], kind: str, ckpt, data: dict, force: bool = False) -> Path:
    from .model.checkpoint import atomic_write_text
    from .paths import free_path, results_dir

    if out_file is None:
        out_file = free_path(results_dir(), f"{kind}-{Path(ckpt.path or 'model').stem}")
    else:
        _refuse_overwrite(out_file, force)
    atomic_write_text(out_file, json.dumps(data, indent=1))
    return out_file


@analyze_app.command("curves")
def analyze_curves_cmd(
    checkpoint: Annotated[Path, typer.Argument(help="A .safetensors checkpoint")],
    tokens: _TOKENS = None,
    n_tokens: Annotated[int, typer.Option(min=1, help="How many frequent tokens when --tokens is not given")] = 20,
    positions: _POSITIONS = "",
    per_cell: Annotated[int, typer.Option(min=1, help="Examples per (token, T)")] = 4,
    percents: Annotated[str, typer.Option(help="Set sizes as % of the hidden size")] = "2,5,10,15,20,30,50",
    draws: Annotated[int, typer.Option(min=1, help="Random sets per size")] = 10,
    roles: Annotated[str, typer.Option(help="Comma-separated roles")] = "storing,counting,triggering,outputting",
    cell_state: Annotated[bool, typer.Option("--cell-state", help="LSTM: manipulate c instead of h")] = False,
    corpus_dir: _CORPUS = None,
    cache: _CACHE = None,
    seed: Annotated[int, typer.Option(help="Seed for examples and random sets")] = 0,
    out_file: Annotated[Optional[Path], typer.Option("--out", "-o", help="Results JSON (default: curves-CKPT.json in "
                                                     "the results folder; a CSV is written beside it)")] = None,
    force: Annotated[bool, typer.Option(help="Overwrite --out if it exists")] = False,
    width: Annotated[int, typer.Option(min=40, help="Figure width in columns")] = 100,
    layer: _LAYER = None,
) -> None:
    """Dose-response: each role's manipulation on the top-k neurons by integrated gradients as k grows, beside
    random sets of the same size (mean and min-max over draws). JSON, CSV and a plotext figure."""
    import csv
    import io

    from .analysis.curves import CurvesConfig, curves_csv_rows, plot_curves, run_curves
    from .analysis.roles import ROLES
    from .model.checkpoint import atomic_write_text

    ckpt = _load_layer(checkpoint, layer)
    wanted = tuple(r.strip() for r in roles.split(",") if r.strip())
    if not wanted or any(r not in ROLES for r in wanted):
        raise UserError(f"--roles {roles!r}: choose from {', '.join(ROLES)}")
    if cell_state and ckpt.config.cell != "lstm":
        raise UserError("--cell-state needs an LSTM checkpoint")
    pcts = tuple(p for p in _percents(percents) if p > 0)
    if not pcts:
        raise UserError("--percents needs at least one size above 0")
    cfg = CurvesConfig(percents=pcts, draws=draws, roles=wanted, seed=seed, on_cell=cell_state)
    if out_file is not None:
        _refuse_overwrite(out_file, force)
    with _progress() as progress:
        rec, _, _ = _recording(ckpt, tokens, n_tokens, positions, per_cell, corpus_dir, cache, seed, progress,
                               progress.add_task("recording", total=None))
        res = run_curves(ckpt, rec, cfg, _stage_progress(progress))
    path = _write_results(out_file, "curves", ckpt, res, force)
    rows = curves_csv_rows(res)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path.with_suffix(".csv"), buf.getvalue())
    sys.stdout.write(plot_curves(res, width) + "\n")
    table = Table("role", "neurons", "IG order [95% CI]", "random mean ± sd (min-max)",
                  title=f"dose-response ({res['state']}), {len(res['tokens'])} tokens, {res['n_examples']} examples")
    for row in rows:
        table.add_row(row["role"], str(row["neurons"]),
                      f"{row['set_rate']:.1%} [{row['set_ci_low']:.1%}, {row['set_ci_high']:.1%}]",
                      f"{row['random_mean']:.1%} ± {row['random_sd']:.1%} ({row['random_min']:.1%}-"
                      f"{row['random_max']:.1%})")
    out.print(table)
    out.print(f"results written to {path} and {path.with_suffix('.csv')}")


@analyze_app.command("storing")
def analyze_storing_cmd(
    checkpoint: Annotated[Path, typer.Argument(help="A .safetensors checkpoint (one layer)")],
    tokens: _TOKENS = None,
    n_tokens: Annotated[int, typer.Option(min=1, help="How many frequent tokens when --tokens is not given")] = 20,
    positions: _POSITIONS = "",
    per_cell: Annotated[int, typer.Option(min=1, help="Examples per (token, T)")] = 4,
    grow_step: Annotated[int, typer.Option(min=1, help="Neurons added per point of the growth curve")] = 16,
    threshold: Annotated[float, typer.Option(min=0.0, max=1.0, help="Accuracy a set must bring the token below")] = 0.2,
    draws: Annotated[int, typer.Option(min=1, help="Random sets per size")] = 10,
    corpus_dir: _CORPUS = None,
    cache: _CACHE = None,
    seed: Annotated[int, typer.Option(help="Seed for examples and random sets")] = 0,
    out_file: Annotated[Optional[Path], typer.Option("--out", "-o", help="Results JSON (default: storing-CKPT.json "
                                                     "in the results folder)")] = None,
    force: Annotated[bool, typer.Option(help="Overwrite --out if it exists")] = False,
) -> None:
    """The storing question: sets grown by single-step vs multi-step integrated gradients until accuracy falls
    below --threshold, against random sets; two disjoint sets zeroed alone and together (redundancy); for an
    LSTM also the cell state."""
    from .analysis.storing import StoringConfig, run_storing

    ckpt = _load(checkpoint)
    if ckpt.config.layers != 1:
        raise UserError("analyze storing needs a one-layer model (its multi-step attribution replays one layer)")
    if out_file is not None:
        _refuse_overwrite(out_file, force)
    cfg = StoringConfig(grow_step=grow_step, threshold=threshold, draws=draws, seed=seed)
    with _progress() as progress:
        rec, _, _ = _recording(ckpt, tokens, n_tokens, positions, per_cell, corpus_dir, cache, seed, progress,
                               progress.add_task("recording", total=None))
        res = run_storing(ckpt, rec, cfg, _stage_progress(progress))
    path = _write_results(out_file, "storing", ckpt, res, force)
    for states, r in res["states"].items():
        table = Table("neurons", "IG at T-1", "IG over t in [-1, T-1]", "random mean ± sd",
                      title=f"zero at T-1 ({states}): the token still at T")
        for p in r["growth"]:
            table.add_row(str(p["neurons"]), f"{p['IG at T-1']['rate']:.1%}",
                          f"{p['IG over t in [-1, T-1]']['rate']:.1%}",
                          f"{p['random']['mean']:.1%} ± {p['random']['sd']:.1%}")
        out.print(table)
    for line in res["conclusion"]:
        out.print(line, markup=False, highlight=False)
    out.print(f"results written to {path}")


@analyze_app.command("table")
def analyze_table_cmd(
    checkpoint: Annotated[Path, typer.Argument(help="A .safetensors checkpoint")],
    results: Annotated[Optional[Path], typer.Option(help="Results JSON from analyze functions (default: the newest "
                                                         "in the results folder)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """The verification table in the paper's layout (with random-neuron controls) and the Section 5 numbers."""
    from .analysis.functions import format_table

    _load(checkpoint)
    data = _load_results(results)
    if as_json:
        _print_json({"table": data["table"], "section5": data.get("section5"),
                     "rows": [dict(zip(("manipulation", "neurons", "set", "random", "paper"), r))
                              for r in format_table(data)]})
        return
    _print_functions_table(data)


@analyze_app.command("figures")
def analyze_figures_cmd(
    results: Annotated[Optional[Path], typer.Option(help="Results JSON from analyze functions (default: the newest "
                                                         "in the results folder)")] = None,
    out_dir: Annotated[Optional[Path], typer.Option("--out-dir", help="Write figure2.csv and figure3.csv here")] = None,
    width: Annotated[int, typer.Option(help="Plot width in columns")] = 100,
) -> None:
    """The paper's Figure 2 (PCA of storing neurons over t, per token) and Figure 3 (counting neurons' mean
    against t, per T) as terminal plots (plotext) and as CSV."""
    import csv
    import io

    import plotext as plt

    data = _load_results(results)
    fig2, fig3 = data.get("figure2") or [], data.get("figure3") or []
    if out_dir is not None:
        from .model.checkpoint import atomic_write_text

        for name, rows in (("figure2.csv", fig2), ("figure3.csv", fig3)):
            if rows:
                buf = io.StringIO()
                writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
                writer.writeheader()
                writer.writerows(rows)
                atomic_write_text(out_dir / name, buf.getvalue())
        out.print(f"CSV written to {out_dir}")
    if fig2:
        plt.clear_figure()
        plt.plotsize(width, 25)
        for tok in list(dict.fromkeys(r["token"] for r in fig2))[:10]:
            rows = [r for r in fig2 if r["token"] == tok]
            plt.scatter([r["pc1"] for r in rows], [r["pc2"] for r in rows], label=tok, marker="dot")
        plt.title("Figure 2: storing neurons, PCA of h_t for t in [-1, T-1], by control token")
        sys.stdout.write(plt.build() + "\n")
    if fig3:
        plt.clear_figure()
        plt.plotsize(width, 25)
        for T in sorted({r["T"] for r in fig3}):
            rows = [r for r in fig3 if r["T"] == T]
            plt.plot([r["t"] for r in rows], [r["mean"] for r in rows], label=f"T={T}", marker="braille")
        plt.title("Figure 3: mean of the counting neurons (signed to rise with T - t) against t, per T")
        sys.stdout.write(plt.build() + "\n")
    if not fig2 and not fig3:
        raise UserError(f"{results} holds no figure data (no plausible storing or counting neurons)")


def _load_results(path: Path | None) -> dict:
    """A validated analyze-functions results file (any other kind, or a damaged one, is one line); without a
    path, the newest one in the results folder."""
    from .analysis.results_files import load_results
    from .paths import newest, results_dir

    if path is None:
        path = newest(results_dir(), "functions-*.json")
        if path is None:
            raise UserError(f"no results yet in {results_dir()}: run tui-neuron analyze functions CKPT, or give "
                            "--results FILE")
        err.print(f"results: {path}", markup=False, highlight=False)
    return load_results(path, expect="functions").data


# ----------------------------------------------------------------------------- probes, rankings, memory

_TAGGED = Annotated[Optional[list[Path]], typer.Option("--tagged", help="word/TAG corpus (e.g. gutenberg_pos)")]


def _write_out(out_path: Optional[Path], data: dict) -> None:
    if out_path is not None:
        from .model.checkpoint import atomic_write_text

        atomic_write_text(out_path, json.dumps(data, indent=1))
        out.print(f"results written to {out_path}")


def _percents(text: str) -> list[int]:
    try:
        vals = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise UserError(f"--percents {text!r}: give whole numbers like 10,15,20") from None
    if not vals or any(not 0 <= v <= 100 for v in vals):
        raise UserError(f"--percents {text!r}: each must be between 0 and 100")
    return vals


@analyze_app.command("probe")
def probe_cmd(
    checkpoint: Annotated[Path, typer.Argument(help="A .safetensors checkpoint")],
    hypothesis: Annotated[str, typer.Option(help="pos, position, token, word-set, span (--words OPEN,CLOSE), "
                                                 "steps-remaining, is-control, decoder-position, or a .py file "
                                                 "defining label(words, tags, index)")],
    tagged: _TAGGED = None,
    words: Annotated[str, typer.Option(help="Comma-separated words for word-set")] = "",
    sentences: Annotated[int, typer.Option(min=1, help="Held-out sentences to record")] = 2000,
    seed: Annotated[int, typer.Option(help="Seed for splits and the control task")] = 0,
    out_path: Annotated[Optional[Path], typer.Option("--out", "-o", help="Results JSON")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
    layer: _LAYER = None,
) -> None:
    """Diagnostic classifier: plain and class-balanced logistic probes (ridge for numbers), metrics, baseline,
    most responsible neurons, control-task selectivity."""
    from .analysis.probes import probe
    from .analysis.probing import labelled

    ckpt = _load_layer(checkpoint, layer)
    with err.status(f"recording states for {hypothesis}"):
        X, y, g, w, _ = labelled(ckpt, hypothesis, tagged, sentences, [x for x in words.split(",") if x])
    with err.status("training probes"):
        res = probe(X, y, g, w, seed)
    res["hypothesis"] = hypothesis
    _write_out(out_path, res)
    if as_json:
        _print_json(res)
        return
    table = Table("probe", "accuracy", "precision", "recall", "F1 (macro)", "majority", "top neurons",
                  title=f"{hypothesis}: {res['n_train']} train / {res['n_test']} test tokens, {res['classes']} classes")
    for name in ("plain", "balanced"):
        r = res[name]
        table.add_row(name, f"{r['accuracy']:.3f}", f"{r['precision']:.3f}", f"{r['recall']:.3f}", f"{r['f1']:.3f}",
                      f"{r['majority_baseline']:.3f}", ", ".join(map(str, r["top_neurons"][:5])))
    out.print(table)
    if "selectivity" in res:
        out.print(f"control task accuracy {res['control_accuracy']:.3f}; selectivity {res['selectivity']:+.3f}")
    if "ridge" in res:
        out.print(f"ridge R² {res['ridge']['r2']:.3f}; top neurons {res['ridge']['top_neurons'][:5]}")
    out.print(f"most responsible neuron: {res['most_responsible_neuron']}")


@analyze_app.command("rank")
def rank_cmd(
    checkpoint: Annotated[Path, typer.Argument(help="A .safetensors checkpoint")],
    hypothesis: Annotated[str, typer.Option(help="As for probe")],
    tagged: _TAGGED = None,
    words: Annotated[str, typer.Option(help="Comma-separated words for word-set")] = "",
    sentences: Annotated[int, typer.Option(min=1, help="Held-out sentences to record")] = 2000,
    l1: Annotated[float, typer.Option(min=0.0, help="Elastic-net λ1")] = 1e-5,
    l2: Annotated[float, typer.Option(min=0.0, help="Elastic-net λ2")] = 1e-5,
    objective: Annotated[str, typer.Option(help="squared: λ2·|W|₂² (scikit-learn's elastic net); neurox: λ2·|W|₂, "
                                                "NeuroX's plain norm")] = "squared",
    tol: Annotated[float, typer.Option(min=0.0, help="Convergence: largest projected gradient")] = 1e-6,
    max_iter: Annotated[int, typer.Option(min=1, help="Iteration cap; the result says if it was reached")] = 20000,
    stability_seeds: Annotated[int, typer.Option(min=1, help="Fits from different starts (1: none extra)")] = 3,
    resamples: Annotated[int, typer.Option(min=0, help="Fits on 80% subsamples of the training sentences")] = 3,
    stride: Annotated[float, typer.Option(help="Weight-mass step of the ranking search")] = 0.01,
    percents: Annotated[str, typer.Option(help="Top/bottom shares for the masking table")] = "10,15,20",
    ablate: Annotated[bool, typer.Option(help="Also zero the ranked neurons in the live decoder (Figure 4 curves)")] = False,
    seed: Annotated[int, typer.Option(help="Seed of the first start and of the resamples")] = 0,
    out_path: Annotated[Optional[Path], typer.Option("--out", "-o", help="Results JSON")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
    layer: _LAYER = None,
) -> None:
    """NeuroX: elastic-net probe trained to convergence, neuron ranking by weight mass, its stability across
    starts and resamples, salient neurons, top/bottom masking and retraining, and (with --ablate) positioning
    accuracy as the top / bottom / random N% are zeroed in the model."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from .analysis.neurox import OBJECTIVES, RankConfig, ablation_curve, rank, stability_line
    from .analysis.probing import labelled

    if objective not in OBJECTIVES:
        raise UserError(f"--objective {objective!r}: use one of {', '.join(OBJECTIVES)}")
    ckpt = _load_layer(checkpoint, layer)
    cfg = RankConfig(l1=l1, l2=l2, objective=objective, tol=tol, max_iter=max_iter,  # type: ignore[arg-type]
                     stride=stride, percents=tuple(_percents(percents)), seed=seed,
                     stability_seeds=stability_seeds, resamples=resamples)
    with err.status(f"recording states for {hypothesis}"):
        X, y, g, _, _ = labelled(ckpt, hypothesis, tagged, sentences, [x for x in words.split(",") if x])
    n_fits = stability_seeds + resamples
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("fit {task.completed}/{task.total}"),
                  TextColumn("iteration {task.fields[it]}"), TimeElapsedColumn(), console=err) as progress:
        task = progress.add_task("elastic net", total=n_fits, it=0)
        stages: list[str] = []

        def report(stage: str, it: int, _cap: int) -> None:
            if stage not in stages:
                stages.append(stage)
            progress.update(task, description=stage, completed=len(stages) - 1, it=it)

        res = rank(X, y, g, cfg, report)
        progress.update(task, completed=n_fits)
    res["hypothesis"] = hypothesis
    res["checkpoint"] = str(checkpoint)
    if ablate:
        res["ablation"] = _ablation(ckpt, res["ranking"], seed, ablation_curve)
    _write_out(out_path, res)
    if as_json:
        _print_json(res)
        return
    conv = "converged" if res["converged"] else "NOT converged (raise --max-iter)"
    out.print(f"elastic-net probe ({objective} objective, {conv} in {res['iterations']} iterations) "
              f"accuracy {res['accuracy']:.3f}; top neurons {res['ranking'][:10]}")
    out.print(stability_line(res))
    table = Table("neurons kept", "masked (trained probe)", "retrained", title="NeuroX Table 2/4: keep only N% of neurons")
    table.add_row("all", f"{res['masking']['all']:.3f}", "-")
    for key, v in res["masking"].items():
        if key != "all":
            sd = (f" ± {v['masked_spread']['sd']:.3f}", f" ± {v['retrained_spread']['sd']:.3f}") if "masked_spread" in v \
                else ("", "")
            table.add_row(key, f"{v['masked']:.3f}{sd[0]}", f"{v['retrained']:.3f}{sd[1]}")
    out.print(table)
    if ablate:
        _print_ablation(res["ablation"])


def _ablation(ckpt, ranking, seed, ablation_curve):
    from rich.progress import Progress

    from .analysis.evaluation import heldout_examples

    _, examples = heldout_examples(ckpt, n=600, seed=seed + 7)
    with Progress(console=err) as progress:
        task = progress.add_task("ablating in the model", total=None)
        return ablation_curve(ckpt, examples, ranking, seed=seed,
                              progress=lambda d, t: progress.update(task, completed=d, total=t))


def _print_ablation(curves: dict) -> None:
    table = Table("% zeroed", "ranking", "reverse", "random: mean ± sd (draws)",
                  title="positioning accuracy with neurons zeroed at every decoder step")
    for i, row in enumerate(curves["ranking"]):
        rnd = curves["random"][i]
        sp = rnd.get("spread")
        rand_text = f"{rnd['accuracy']:.3f}" + (f" ± {sp['sd']:.3f} ({sp['draws']})" if sp else "")
        table.add_row(str(row["percent"]), *(f"{curves[k][i]['accuracy']:.3f}" for k in ("ranking", "reverse")),
                      rand_text)
    out.print(table)


@analyze_app.command("crossmodel")
def crossmodel_cmd(
    checkpoints: Annotated[list[Path], typer.Argument(help="Two or more checkpoints of one configuration (different seeds)")],
    part: Annotated[str, typer.Option(help="encoder: states after each held-out source word; decoder: decoder states "
                                           "t = -1..T of positioning examples (where the paper's roles live)")] = "encoder",
    sentences: Annotated[int, typer.Option(min=1, help="Held-out sentences to record (of the first checkpoint)")] = 1000,
    results: Annotated[Optional[Path], typer.Option(help="analyze functions results of the first model: report where "
                                                         "its role neurons fall in the ranking")] = None,
    ablate: Annotated[bool, typer.Option(help="Ablation curve of the first model for its ranking")] = False,
    seed: Annotated[int, typer.Option(help="Seed")] = 0,
    out_path: Annotated[Optional[Path], typer.Option("--out", "-o", help="Results JSON")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
    layer: _LAYER = None,
) -> None:
    """Rank each model's neurons by their highest absolute Pearson correlation with any neuron of another model;
    the share of neurons at |r| >= 0.8; with --results, where the first model's role neurons fall."""
    import numpy as np

    from .analysis.neurox import ablation_curve, cross_model_correlation, roles_in_ranking
    from .analysis.probes import encoder_states
    from .analysis.recording import build_examples, frequent_targets, heldout_lines, record

    if len(checkpoints) < 2:
        raise UserError("crossmodel needs at least two checkpoints")
    if part not in ("encoder", "decoder"):
        raise UserError(f"--part {part!r}: use encoder or decoder")
    roles = _load_results(results)["roles"] if results else None
    ckpts = [_load_layer(c, layer) for c in checkpoints]
    if any(c.config != ckpts[0].config for c in ckpts[1:]) or any(c.vocab.itos != ckpts[0].vocab.itos for c in ckpts[1:]):
        raise UserError("crossmodel needs checkpoints of the same configuration and vocabulary")
    lines = heldout_lines(ckpts[0])[:sentences]
    with err.status("recording the same tokens in every model"):
        if part == "encoder":
            acts = [encoder_states(c, lines).X for c in ckpts]
        else:
            positions = range(1, ckpts[0].config.max_position + 1)
            examples = build_examples(ckpts[0], lines, frequent_targets(ckpts[0], lines, 20), positions, 4, seed)
            hs = [record(c, examples, gates=False).h for c in ckpts]
            keep = ~np.isnan(hs[0][..., 0])
            for h in hs[1:]:
                keep &= ~np.isnan(h[..., 0])
            acts = [h[keep] for h in hs]
    scores = cross_model_correlation(acts)
    res: dict = {"kind": "crossmodel", "part": part, "checkpoints": [str(c) for c in checkpoints],
                 "tokens": int(len(acts[0])), "models": scores}
    if roles is not None:
        res["roles"] = roles_in_ranking(scores[0]["score"], roles)
    if ablate:
        res["ablation"] = _ablation(ckpts[0], scores[0]["ranking"], seed, ablation_curve)
    _write_out(out_path, res)
    if as_json:
        _print_json(res)
        return
    for path, sc in zip(checkpoints, scores):
        top = sc["ranking"][:10]
        best = ", ".join(f"{sc['score'][j]:.2f}" for j in top[:5])
        out.print(f"{path}: top neurons {top} (max |r| {best}); {sc['share_at_least_0.8']:.1%} of neurons at |r| >= 0.8")
    for role, r in (res.get("roles") or {}).items():
        out.print(f"{role}: {r['neurons']} neurons, mean max |r| {r['mean_score']:.2f} (others {r['others_mean']:.2f}), "
                  f"{r['share_in_top_20%']:.0%} in the top 20% (chance 20%)")
    if ablate:
        _print_ablation(res["ablation"])


@analyze_app.command("top-words")
def top_words_cmd(
    checkpoint: Annotated[Path, typer.Argument(help="A .safetensors checkpoint")],
    neuron: Annotated[int, typer.Option(help="Neuron index")],
    sentences: Annotated[int, typer.Option(min=1, help="Held-out sentences to record")] = 2000,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
    layer: _LAYER = None,
) -> None:
    """The words that activate a neuron most (and least) in the encoder (NeuroX Table 3)."""
    from .analysis.neurox import top_activating
    from .analysis.probes import encoder_states
    from .analysis.recording import heldout_lines

    ckpt = _load_layer(checkpoint, layer)
    if not 0 <= neuron < ckpt.config.hidden:
        raise UserError(f"neuron {neuron} does not exist: the model has neurons 0..{ckpt.config.hidden - 1}")
    res = top_activating(encoder_states(ckpt, heldout_lines(ckpt)[:sentences]), neuron)
    if as_json:
        _print_json(res)
        return
    out.print(f"neuron {neuron} top: " + ", ".join(f"{d['word']} ({d['mean']:+.2f})" for d in res["top"]))
    out.print(f"neuron {neuron} bottom: " + ", ".join(f"{d['word']} ({d['mean']:+.2f})" for d in res["bottom"]))


@analyze_app.command("memory")
def memory_cmd(
    checkpoint: Annotated[Path, typer.Argument(help="A .safetensors checkpoint")],
    part: Annotated[str, typer.Option(help="encoder or decoder")] = "encoder",
    state: Annotated[str, typer.Option(help="h, or c for an LSTM")] = "h",
    max_delay: Annotated[int, typer.Option(help="Largest delay τ")] = 20,
    sequences: Annotated[int, typer.Option(help="Held-out windows to average over")] = 64,
    tagged: _TAGGED = None,
    diff: Annotated[Optional[str], typer.Option(help="TAG1,TAG2: relative memory of the difference of their mean "
                                                     "embeddings (needs --tagged)")] = None,
    words: Annotated[str, typer.Option(help="Comma-separated words: a class averaged over their positions only")] = "",
    out_path: Annotated[Optional[Path], typer.Option("--out", "-o", help="Results JSON")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
    layer: _LAYER = None,
) -> None:
    """State gradients (Verwimp et al.): σ1, σ1/Σσ and Σ_{i≤5}σi/Σσ of the normalised gradient matrix over delay,
    with exponential fits, overall and per part of speech with --tagged."""
    from rich.progress import Progress

    from .analysis.probing import memory_for

    ckpt = _load_layer(checkpoint, layer)
    if max_delay < 1:
        raise UserError("--max-delay must be at least 1")
    with Progress(console=err) as progress:
        task = progress.add_task("state gradients", total=None)
        pair = tuple(diff.split(",")) if diff else None
        if pair is not None and (len(pair) != 2 or not tagged):
            raise UserError("--diff takes two tags, TAG1,TAG2, and needs --tagged")
        res = memory_for(ckpt, part, state, max_delay, sequences, tagged,
                         progress=lambda d, t: progress.update(task, completed=d, total=t), diff=pair,
                         words=[w for w in words.split(",") if w])
    _write_out(out_path, res)
    if as_json:
        _print_json(res)
        return
    curves = res["curves"]
    table = Table("class", "n", *(f"τ={t}" for t in (0, 1, 2, 5, 10, max_delay)), "fit a·e^-bτ",
                  title=f"σ1 of the normalised state gradient ({part}, {state})")
    for key, c in curves.items():
        s1 = c["sigma1"]
        table.add_row(key, str(c["count"]), *(f"{s1[t]:.3f}" if t < len(s1) else "-" for t in (0, 1, 2, 5, 10, max_delay)),
                      f"a={c['fit']['a']:.2f} b={c['fit']['b']:.3f}")
    out.print(table)
    a = curves["all"]
    out.print("σ1/Σσ by τ: " + " ".join(f"{x:.2f}" for x in a["sigma1_share"]))
    if "relative_memory" in res:
        rm = res["relative_memory"]
        out.print(f"relative memory of {rm['diff']}: " + " ".join(f"{x:.2f}" for x in rm["relative_memory"]))
        out.print(f"cosine with the top-{rm['top_n']} span: " + " ".join(f"{x:.2f}" for x in rm["cosine_top_n"]))


# ----------------------------------------------------------------------------- open


@app.command("open")
def open_cmd(
    checkpoint: Annotated[Optional[Path], typer.Argument(help="A .safetensors checkpoint (default: the shipped one)")] = None,
    session: Annotated[Optional[Path], typer.Option(help="Reopen a saved session JSON")] = None,
    results: Annotated[Optional[Path], typer.Option(help="Neuron-function results (analyze functions) to tag roles")] = None,
) -> None:
    """Open the explorer."""
    ckpt = _load(checkpoint)
    roles = _load_results(results)["roles"] if results else None
    sess = None
    if session is not None:
        from .analysis.session import load_session

        sess = load_session(session)
    from .app.explorer import ExplorerApp

    ExplorerApp(ckpt, session=sess, session_path=session, roles=roles).run()


def main() -> None:
    """Every failure a user can fix is one `error:` line and exit 2: UserErrors and click's usage errors alike."""
    from typer._click import exceptions as click_errors  # typer vendors click; its errors live here

    try:
        code = app(standalone_mode=False)
    except click_errors.NoArgsIsHelpError as e:
        out.print(e.ctx.get_help() if e.ctx else str(e))
        sys.exit(0)
    except click_errors.UsageError as e:
        where = f" (see {e.ctx.command_path} --help)" if e.ctx else ""
        err.print(f"error: {e.format_message()}{where}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(2)
    except click_errors.ClickException as e:
        err.print(f"error: {e.format_message()}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(2)
    except typer.Abort:
        sys.exit(130)
    except UserError as e:
        err.print(f"error: {e}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)
    if isinstance(code, int) and code:
        sys.exit(code)


if __name__ == "__main__":
    main()
