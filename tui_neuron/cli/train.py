"""`tui-neuron train`: the training loop behind one command (resumable, DDP-aware)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import UserError
from .common import app, err, out


@app.command()
def train(
    corpus: Annotated[list[Path], typer.Argument(help="Text files or folders of .txt files")],
    out_path: Annotated[Path, typer.Option("--out", "-o", help="Checkpoint to write (.safetensors)")],
    cell: Annotated[str, typer.Option(help="gru or lstm")] = "gru",
    emb: Annotated[int, typer.Option(help="Embedding size")] = 128,
    hidden: Annotated[int, typer.Option(help="Hidden size")] = 256,
    layers: Annotated[int, typer.Option(help="Stacked recurrent layers in encoder and decoder")] = 1,
    separate_embeddings: Annotated[bool, typer.Option(help="One embedding for the source, one for the target")] = False,
    vocab_words: Annotated[int, typer.Option("--vocab-words", "--vocab-size",
                                             help="Words kept by frequency (the model adds special, position tokens)")] = 2000,
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

    from ..model.train import TrainConfig, Trainer, TrainingData, check_output

    if threads is not None:
        if threads < 1:
            raise UserError(f"--threads {threads}: give a positive number of threads")
        torch.set_num_threads(threads)
    if minutes is not None and not minutes > 0:
        raise UserError(f"--minutes {minutes}: give a positive time budget")
    cfg = TrainConfig.from_options(
        corpus=tuple(str(c) for c in corpus), out=str(out_path), cell=cell, emb_dim=emb, hidden=hidden, layers=layers,
        shared_embedding=not separate_embeddings,
        vocab_words=vocab_words, max_position=max_position, n_signals=signals, mode=mode, min_len=min_len,
        max_len=max_len, batch_size=batch_size, lr=lr, seed=seed, max_steps=steps,
        time_budget=minutes * 60 if minutes is not None else None, eval_every=eval_every,
        eval_examples=eval_examples, patience=patience, curriculum_steps=curriculum_steps,
        curriculum_len=curriculum_len, heldout_fraction=heldout_fraction, save_dtype="float16" if fp16 else "float32",
        dropout=dropout, word_dropout=word_dropout, weight_decay=weight_decay, label_smoothing=label_smoothing,
        control_weight=control_weight,
        schedule=schedule, warmup_steps=warmup_steps, device=device)
    cfg.check()
    check_output(out_path, resume, force)
    from ..model import distributed

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

        trainer = Trainer(cfg, TrainingData.load(cfg), report)
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
