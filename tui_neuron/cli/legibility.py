"""`analyze legibility`: one number per neuron role, each beside random sets of the same size (the recipe study's
measure of how visible the paper's four roles are on a model)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from .common import (
    _CHECKPOINT,
    _FORCE,
    ExampleOptions,
    Table,
    _finish,
    _load,
    _print_warnings,
    _progress,
    _recording,
    _refuse_overwrite,
    _stage_progress,
    analyze_app,
    limits,
    out,
)
from .options import positioning_examples


@analyze_app.command("legibility")
@positioning_examples(n_tokens=20, per_cell=6)
def analyze_legibility_cmd(
    checkpoint: _CHECKPOINT,
    examples: ExampleOptions,
    stop_share: Annotated[float, typer.Option(callback=limits(0.5, 1), help="Outputting: the share of tokens the "
                                                                      "zeroed top-k set must stop")] = 0.95,
    draws: Annotated[int, typer.Option(callback=limits(1, 100), help="Random sets per row")] = 5,
    out_file: Annotated[Optional[Path], typer.Option("--out", "-o", help="Results JSON (default: legibility-CKPT.json "
                                                     "in the results folder)")] = None,
    force: _FORCE = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the results JSON too")] = False,
) -> None:
    """One number per role, each beside random sets of the same size: the smallest top-k outputting set that stops
    the token, storing, counting (both readings), triggering and random decoder inputs."""
    from dataclasses import replace

    from ..analysis.legibility import LegibilityConfig, run_legibility

    ckpt = _load(checkpoint)
    if out_file is not None:
        _refuse_overwrite(out_file, force)
    base = LegibilityConfig()
    cfg = replace(base, stop_share=stop_share, draws=draws, seed=examples.seed,
                  functions=replace(base.functions, draws=draws, seed=examples.seed))
    with _progress() as progress:
        rec, _, _ = _recording(ckpt, examples, progress, progress.add_task("recording", total=None))
        res = run_legibility(ckpt, rec, cfg, _stage_progress(progress))
    _finish(out_file, "legibility", ckpt, res, force, as_json, print_legibility)


def print_legibility(res: dict) -> None:
    from ..analysis.legibility import legibility_rows

    flagged = _print_warnings(res)
    table = Table("role", "measure", "n", "with the set [95% CI]", "random sets [95% CI]",
                  title=f"legibility — {len(res['tokens'])} tokens, {res['n_examples']} examples, positioning "
                        f"{res['positioning_accuracy']:.1%}" + (f" — {flagged} WARNING(S) ABOVE" if flagged else ""))
    for row in legibility_rows(res):
        table.add_row(*row)
    out.print(table)
