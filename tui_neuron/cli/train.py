"""`tui-neuron train`: the training loop behind one command (resumable, DDP-aware)."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Annotated, Optional

import typer

from .common import app, err, limits, out, real
from .options import option, with_options

# The recipe's options: (TrainConfig option, flag, help). Defaults and types come from TrainConfig itself.
RECIPE = (
    ("cell", "--cell", "gru or lstm"),
    ("emb_dim", "--emb", "Embedding size"),
    ("hidden", "--hidden", "Hidden size"),
    ("layers", "--layers", "Stacked recurrent layers in encoder and decoder"),
    ("vocab_words", "--vocab-words", "Words kept by frequency (the model adds special and position tokens)"),
    ("max_position", "--max-position", "Largest control position T"),
    ("n_signals", "--signals", "Control signals per example"),
    ("mode", "--mode", "spans (default) or lines (consecutive line pairs)"),
    ("min_len", "--min-len", "Shortest span / target"),
    ("max_len", "--max-len", "Longest span / target"),
    ("batch_size", "--batch-size", "Examples per step (per process)"),
    ("lr", "--lr", "Peak AdamW learning rate"),
    ("recipe", "--recipe", "robust (dropout 0.3, word dropout 0.5, control weight 5, weight decay 0.01: generalises "
     "from one book) or paper (plain cross-entropy, none of those: the roles stay legible); the four options below "
     "override it"),
    ("schedule", "--schedule", "cosine (warmup, then decay over the budget) or plateau (halve)"),
    ("warmup_steps", "--warmup-steps", "Linear warmup steps (cosine schedule)"),
    ("dropout", "--dropout", "Dropout on embeddings and decoder outputs (training only)"),
    ("word_dropout", "--word-dropout", "Share of decoder inputs replaced by <unk> (training only)"),
    ("weight_decay", "--weight-decay", "AdamW decoupled weight decay"),
    ("label_smoothing", "--label-smoothing", "Label smoothing of the cross-entropy"),
    ("control_weight", "--control-weight", "Weight of the control tokens' loss terms (1: plain)"),
    ("seed", "--seed", "Random seed"),
    ("eval_every", "--eval-every", "Steps between held-out evaluations"),
    ("eval_examples", "--eval-examples", "Held-out examples per evaluation"),
    ("patience", "--patience", "Evaluations without improvement before stopping"),
    ("curriculum_steps", "--curriculum-steps", "Steps trained on short targets first"),
    ("curriculum_len", "--curriculum-len", "Longest target during the curriculum"),
    ("heldout_fraction", "--heldout-fraction", "Tail of each file kept for evaluation"),
    ("device", "--device", "auto, cpu, cuda or mps (auto: CUDA when present)"),
)


def _recipe_options() -> list[inspect.Parameter]:
    """One option per RECIPE row, typed and defaulted by TrainConfig; the --recipe ones default to None (the
    recipe's value)."""
    from ..training.config import RECIPE_FIELDS, TrainConfig

    defaults = TrainConfig(corpus=(), out="").options()
    flags = {"vocab_words": ("--vocab-size",)}  # the older name still works

    def typed(name: str, flag: str, help: str):
        if name in RECIPE_FIELDS:
            return Annotated[Optional[float], typer.Option(flag, help=f"{help} (default: from --recipe)")]
        return Annotated[type(defaults[name]), typer.Option(flag, *flags.get(name, ()), help=help)]
    return [option(name, typed(name, flag, help), None if name in RECIPE_FIELDS else defaults[name])
            for name, flag, help in RECIPE]


@app.command()
@with_options(_recipe_options(), "recipe", dict, after=2)
def train(
    corpus: Annotated[list[Path], typer.Argument(help="Text files or folders of .txt files")],
    out_path: Annotated[Path, typer.Option("--out", "-o", help="Checkpoint to write (.safetensors)")],
    recipe: dict,
    separate_embeddings: Annotated[bool, typer.Option(help="One embedding for the source, one for the target")] = False,
    steps: Annotated[Optional[int], typer.Option(callback=limits(1, 1_000_000_000), help="Step budget")] = None,
    minutes: Annotated[Optional[float], typer.Option(callback=limits(0, 1_000_000, lo_open=True),
                                                     help="Time budget in minutes")] = None,
    fp16: Annotated[bool, typer.Option(help="Store weights in fp16 (computation stays fp32)")] = False,
    threads: Annotated[Optional[int], typer.Option(callback=limits(1, 1024, why='threads this machine can start'),
                                                   help="torch threads (default: the cores other work leaves "
                                                        "free, from the load average; at least 1)")] = None,
    resume: Annotated[bool, typer.Option(help="Continue from OUT.resume.safetensors")] = False,
    init_from: Annotated[Optional[Path], typer.Option(
        help="Start from this checkpoint's weights (same model options and corpus), with a fresh optimizer")] = None,
    reset_lr: Annotated[bool, typer.Option(help="With --resume and --schedule plateau: restart at --lr")] = False,
    force: Annotated[bool, typer.Option(help="Replace an existing OUT and its resume state")] = False,
) -> None:
    """Train a token-positioning Seq2Seq; the best checkpoint is kept, Ctrl-C is safe, --resume continues.

    Under torchrun (`torchrun --nproc-per-node N $(command -v tui-neuron) train ...`) it trains data-parallel.
    """
    _set_threads(threads)  # first: the OpenMP wait policy is read when torch loads
    import torch

    from ..training.trainer import TrainConfig, Trainer, TrainingData, check_output

    cfg = TrainConfig.from_options(
        corpus=tuple(str(c) for c in corpus), out=str(out_path), shared_embedding=not separate_embeddings,
        max_steps=steps, time_budget=minutes * 60 if minutes is not None else None,
        save_dtype="float16" if fp16 else "float32", init_from=str(init_from) if init_from else None, **recipe)
    cfg.check()
    check_output(out_path, resume, force)
    from ..training import distributed

    world = distributed.world_from_env()
    show = world.is_main
    with err.status("loading the corpus"):  # transient: an error in the corpus is the only line printed
        data = TrainingData.load(cfg)
    with _training_progress(show) as progress:
        task = progress.add_task("train", total=1.0, status="loading corpus")
        trainer = Trainer(cfg, data, _reporter(progress, task))
        distributed.join(trainer.world, trainer.device)
        try:
            progress.update(task, status=f"{len(trainer.vocab)} tokens, {len(trainer.eval_set)} held-out examples, "
                                         f"{torch.get_num_threads()} thread(s)")
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


def _training_progress(show: bool):
    """The training bar with its time left; only the main process of a distributed run draws it."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    return Progress(TextColumn("[bold]train"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                    TextColumn("{task.fields[status]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                    console=real(err), transient=False, disable=not show)


def _set_threads(threads: int | None) -> None:
    """torch's threads: as given, else the cores the load average leaves free; idle OpenMP workers sleep instead
    of spinning for cores another process holds (OMP_WAIT_POLICY, read when torch starts them; an explicit
    setting wins)."""
    import os

    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import torch

    from ..training.config import free_cores

    torch.set_num_threads(threads if threads is not None else free_cores())  # a given range was checked when parsed


def _reporter(progress, task):
    """The trainer's progress callback: the bar's status line, and a log line at each evaluation."""
    last = {"acc": "-"}

    def report(info: dict) -> None:
        if "eval" in info:
            last["acc"] = f"{info['eval']['heldout_accuracy']:.1%}"
            err.log(f"step {info['step']}: held-out loss {info['eval']['heldout_loss']:.3f}, "
                    f"positioning {last['acc']}, lr {info['lr']:.2e}")
        progress.update(task, completed=info["fraction"], status=(
            f"step {info['step']} loss {info['loss']:.3f} held-out {last['acc']} "
            f"{info['tokens_per_s']:.0f} tok/s"))
    return report
