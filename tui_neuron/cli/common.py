"""What every subcommand shares: the typer apps, the consoles, checkpoint loading, progress and results paths."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from ..errors import UserError

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table as RichTable


def Table(*columns: Any, **options: Any) -> RichTable:  # noqa: N802 - stands in for rich.table.Table
    """rich's Table, imported when a table is drawn: `--help` and argument errors never draw one, and the import
    is a tenth of their time."""
    from rich.table import Table as RichTable

    return RichTable(*columns, **options)


def escape(text: str) -> str:
    """rich.markup.escape, imported when used."""
    from rich.markup import escape as rich_escape

    return rich_escape(text)

# rich_markup_mode=None: help is click's plain text, which needs neither typer's rich renderer nor markdown-it
# (half the time `--help` took); the help strings use no markup
app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False, rich_markup_mode=None,
                  help="tui-neuron: explore, train and analyse the neurons of recurrent encoder-decoders.")
# piped or redirected output (`| head`, a file) gets tables at their full width, not rich's 80 columns, unless
# COLUMNS says otherwise; a terminal keeps its own width
_PIPE_WIDTH = None if sys.stdout.isatty() or "COLUMNS" in os.environ else 250


class _LazyConsole:
    """A rich Console made at its first use: `--help` and `--version` print through click and never need one,
    and importing rich's console is a fifth of their time."""

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._console: Any = None

    def get(self) -> Any:
        if self._console is None:
            from rich.console import Console

            self._console = Console(**self._options)
        return self._console

    def __getattr__(self, name: str) -> Any:
        return getattr(self.get(), name)


def real(console: Any) -> Console:
    """The rich Console behind a lazy one, for rich's own widgets (progress bars) that take a console."""
    return console.get() if isinstance(console, _LazyConsole) else console


if TYPE_CHECKING:
    out: Console
    err: Console
else:
    out = _LazyConsole(soft_wrap=True, width=_PIPE_WIDTH)  # long paths and messages stay on one line (greppable)
    err = _LazyConsole(stderr=True, soft_wrap=True)


def _version(value: bool) -> None:
    if value:
        from .. import __version__

        out.print(f"tui-neuron {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                                help="Print the version and exit")] = False) -> None:
    """tui-neuron: explore, train and analyse the neurons of recurrent encoder-decoders."""

# the default: the GRU on which the paper's four roles can be seen (the paper's recipe, then fine-tuned; the
# README's "Which model to open"); the generalising GRU
# (checkpoints/gru-positioning.safetensors, the robust recipe) spreads storing and outputting over half of h
DEFAULT_CHECKPOINT = Path(__file__).resolve().parents[2] / "checkpoints" / "gru-roles-wd15.safetensors"


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
    from ..checkpoint.format import load_checkpoint

    ckpt = load_checkpoint(path or _default_checkpoint())
    for warning in ckpt.warnings:
        err.print(f"warning: {warning}", markup=False, highlight=False, soft_wrap=True)
    return ckpt


def interrupts_as_exceptions() -> None:
    """From here on Ctrl-C raises KeyboardInterrupt again, for a command that handles it itself (the console
    script starts with Ctrl-C ending the process at once: see tui_neuron/launch.py)."""
    import signal

    signal.signal(signal.SIGINT, signal.default_int_handler)


SEED_MAX = 2**32 - 1


def limits(lo: float | None = None, hi: float | None = None, lo_open: bool = False, why: str = ""):
    """A typer callback: the value must be a finite number within [lo, hi] (lo excluded with `lo_open`); `why`
    says what a limit is for. Checked at parse time, so nothing starts (or hangs) on a value out of range."""
    import math

    def check(value):
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, float) and not math.isfinite(value):
            raise typer.BadParameter(f"{value} is not a finite number")
        low = lo is not None and (value <= lo if lo_open else value < lo)
        if low or (hi is not None and value > hi):
            left = "(" if lo_open else "["
            span = f"{left}{'-∞' if lo is None else _number(lo)}, {'∞' if hi is None else _number(hi)}]"
            raise typer.BadParameter(f"{value} is outside {span}" + (f" ({why})" if why else ""))
        return value
    return check


def _number(x: float) -> str:
    return f"{int(x):,}" if float(x).is_integer() and abs(x) < 1e15 else f"{x:g}"


SEED = limits(0, SEED_MAX, why="a seed is a 32-bit unsigned integer")
COUNT = limits(1, 1_000_000, why="more would not fit in memory or in time on one machine")


_LAYER = Annotated[Optional[int], typer.Option(callback=limits(0, 1000),
                                               help="Layer of a multi-layer model to analyse (default: the top)")]


def _load_layer(path: Path | None, layer: int | None):
    """A checkpoint whose analyses read `layer` (checked against the model's layers)."""
    ckpt = _load(path)
    if layer is not None:
        if not 0 <= layer < ckpt.config.layers:
            raise UserError(f"--layer {layer}: the model has layers 0..{ckpt.config.layers - 1}")
        ckpt.analysis_layer = layer
    return ckpt


def _print_json(data) -> None:
    sys.stdout.write(json.dumps(data, indent=2) + "\n")


def _refuse_overwrite(path: Path, force: bool, name: str = "--out", example: str = "results.json") -> None:
    """Refuse to write over a file unasked; `name` is the flag or argument that gave `path`, `example` a file name
    of the kind it should name."""
    if path.is_dir():
        raise UserError(f"{name} {path} is a folder; give a file name such as {path / example}")
    if path.exists() and not force:
        raise UserError(f"{path} exists; pass --force to replace it")
    if not path.parent.is_dir():
        raise UserError(f"the folder {path.parent} does not exist; create it first")


ANALYZE_HELP = "Batch analyses: the token-positioning paper's neuron functions."
EXPORT_HELP = "Write what the model computes in formats other tools read."
analyze_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None, help=ANALYZE_HELP)


app.add_typer(analyze_app, name="analyze")


def _parse_positions(text: str) -> list[int]:
    from ..model.interventions import NeuronSet

    ns = NeuronSet.parse(text)
    if ns.indices is None or not ns.indices:
        raise UserError(f"--positions {text!r}: give a range like 1-13 or a list like 1,3,5")
    return list(ns.indices)


@dataclass(frozen=True)
class ExampleOptions:
    """Which positioning examples a job records (cli/options.py adds them to a command): control tokens,
    positions, examples per (token, T), where the corpus is now, the recordings cache and the seed."""

    tokens: Optional[str]
    n_tokens: int
    positions: str
    per_cell: int
    corpus_dir: Optional[list[Path]]
    cache: Optional[Path]
    seed: int


def _recording(ckpt, ex: ExampleOptions, progress, task):
    """The (cached) positioning recording the functions, curves and storing jobs share, with a progress bar."""
    from ..analysis.jobs import paths_option, positioning_recording, words_option
    from ..paths import cache_dir

    pos = _parse_positions(ex.positions) if ex.positions else []
    rec, words, pos = positioning_recording(
        ckpt, words_option(ex.tokens or ""), ex.n_tokens, pos, ex.per_cell, paths_option(ex.corpus_dir),
        str(ex.cache or cache_dir()), ex.seed, lambda stage, d, t: progress.update(task, completed=d, total=t))
    progress.update(task, completed=1, total=1)
    return rec, words, pos


def _stage_progress(progress: LazyProgress):
    """A bar per stage name, with the time left (drawn at the first report)."""
    return progress.report


class LazyProgress:
    """Progress bars drawn at the first report, not before: a job checks its inputs before it reports anything, so
    an error in them is the only line printed. It answers rich's `add_task` and `update`, and `report(stage, done,
    total)`, a job's progress callback with a bar per stage."""

    def __init__(self) -> None:
        self.progress: Any = None  # a rich Progress once the first report arrives
        self.pending: list[tuple[str, Any]] = []  # tasks added before it: (description, total)
        self.stages: dict[str, int] = {}

    def __enter__(self) -> LazyProgress:
        return self

    def __exit__(self, *exc) -> None:
        if self.progress is not None:
            self.progress.stop()

    def add_task(self, description: str, total: Any = None) -> int:
        self.pending.append((description, total))
        if self.progress is not None:
            return self.progress.add_task(description, total=total)
        return len(self.pending) - 1

    def update(self, task: int, **fields: Any) -> None:
        if self.progress is None:
            self.progress = _rich_progress()
            self.progress.start()
            for description, total in self.pending:
                self.progress.add_task(description, total=total)
        self.progress.update(task, **fields)

    def report(self, stage: str, done: int, total: int) -> None:
        if stage not in self.stages:
            self.stages[stage] = self.add_task(stage, total=total)
        self.update(self.stages[stage], completed=done, total=total)


def _progress() -> LazyProgress:
    return LazyProgress()


def _rich_progress():
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    TextColumn("left"), TimeRemainingColumn(), console=real(err))


_TOKENS = Annotated[Optional[str], typer.Option(help="Comma-separated control tokens (default: the most frequent)")]


_POSITIONS = Annotated[str, typer.Option(help="Positions T, e.g. 1-13 (default: all the model was trained on)")]


_CORPUS = Annotated[Optional[list[Path]], typer.Option("--corpus", help="Where the checkpoint's corpus files are now, "
                                                                         "if moved")]


_CACHE = Annotated[Optional[Path], typer.Option(help="Folder for cached recordings (default: the user cache)")]


def _write_results(out_file: Optional[Path], kind: str, ckpt, data: dict, force: bool = False) -> Path:
    from ..checkpoint.format import atomic_write_text
    from ..paths import free_path, results_dir

    if out_file is None:
        out_file = free_path(results_dir(), f"{kind}-{Path(ckpt.path or 'model').stem}")
    else:
        _refuse_overwrite(out_file, force)
    atomic_write_text(out_file, json.dumps(data, indent=1))
    return out_file


def _finish(out_file: Optional[Path], kind: str, ckpt, res: dict, force: bool, as_json: bool, show) -> None:
    """A job's last steps: write its results file (never over another unasked), print the JSON when asked, show
    it (`show(res)`), and say where it was written."""
    path = _write_results(out_file, kind, ckpt, res, force)
    if as_json:
        _print_json(res)
    show(res)
    out.print(f"results written to {path}")


def _load_results(path: Path | None) -> dict:
    """A validated analyze-functions results file (any other kind, or a damaged one, is one line); without a
    path, the newest one in the results folder."""
    from ..analysis.results_files import load_results
    from ..paths import newest, results_dir

    if path is None:
        path = newest(results_dir(), "functions-*.json")
        if path is None:
            raise UserError(f"no results yet in {results_dir()}: run tui-neuron analyze functions CKPT, or give "
                            "--results FILE")
        err.print(f"results: {path}", markup=False, highlight=False)
    return load_results(path, expect="functions").data


_PRESET = Annotated[str, typer.Option(help="full (the defaults) or quick (the explorer's smaller sizes); explicit "
                                            "options win over either")]
_SENTENCES = Annotated[Optional[int], typer.Option(callback=COUNT, help="Held-out sentences to record (default 2000; quick "
                                                              "preset 500)")]
_TEXT = Annotated[Optional[list[Path]], typer.Option(
    "--corpus", help="Text files to read sentences from, one per line (default: the checkpoint's held-out block; an "
                     "imported model has none)")]
_TAGGED = Annotated[Optional[list[Path]], typer.Option("--tagged", help="word/TAG corpus (e.g. gutenberg_pos)")]


def _write_out(out_path: Optional[Path], data: dict) -> None:
    if out_path is not None:
        from ..checkpoint.format import atomic_write_text

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


# options several subcommands share (one declaration each)
_CHECKPOINT = Annotated[Path, typer.Argument(help="A .safetensors checkpoint")]
_OUT = Annotated[Optional[Path], typer.Option("--out", "-o", help="Results JSON")]
_JSON = Annotated[bool, typer.Option("--json", help="Print JSON")]
_N_TOKENS = Annotated[int, typer.Option(callback=limits(1, 100_000), help="How many frequent tokens when --tokens is not given")]
_PER_CELL = Annotated[int, typer.Option(callback=limits(1, 100_000), help="Examples per (token, T)")]
_DRAWS = Annotated[int, typer.Option(callback=limits(1, 1000), help="Random sets per size")]
_FORCE = Annotated[bool, typer.Option(help="Overwrite --out if it exists")]


def _print_warnings(results: dict) -> int:
    """The results' warnings, loud, before any table; how many there were."""
    from ..analysis.trust import results_warnings

    warnings = results_warnings(results)
    for line in warnings:
        out.print(f"[bold red]WARNING[/]: {line}", highlight=False)
    return len(warnings)
