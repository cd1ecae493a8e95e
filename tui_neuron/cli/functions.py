"""`analyze functions|curves|storing|table|figures`: the token-positioning paper's roles and beyond."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import UserError
from .common import (
    _CHECKPOINT,
    _DRAWS,
    _FORCE,
    _LAYER,
    _PRESET,
    SEED,
    ExampleOptions,
    Table,
    _finish,
    _load,
    _load_layer,
    _load_results,
    _parse_positions,
    _percents,
    _print_json,
    _print_warnings,
    _progress,
    _recording,
    _refuse_overwrite,
    _stage_progress,
    _write_results,
    analyze_app,
    limits,
    out,
)
from .options import positioning_examples


@analyze_app.command("functions")
def analyze_functions_cmd(
    checkpoint: _CHECKPOINT,
    tokens: Annotated[Optional[str], typer.Option(help="Comma-separated control tokens (default: the most frequent)")] = None,
    n_tokens: Annotated[Optional[int], typer.Option(callback=limits(1, 100_000),
                                                    help="How many frequent tokens when --tokens is not given "
                                                         "(default 50; quick preset 10)")] = None,
    positions: Annotated[str, typer.Option(help="Positions T, e.g. 1-13")] = "",
    per_cell: Annotated[Optional[int], typer.Option(callback=limits(1, 100_000),
                                                    help="Examples per (token, T) (default 8; quick preset 6)")] = None,
    threshold: Annotated[float, typer.Option(callback=limits(0, 1), help="SVM accuracy for a plausible hypothesis")] = 0.95,
    candidate_fraction: Annotated[float, typer.Option(callback=limits(0, 1, lo_open=True),
                                                      help="Share of neurons RFE keeps as candidates")] = 0.2,
    ig_keep: Annotated[float, typer.Option(callback=limits(0, 1, lo_open=True),
                                           help="Keep candidates in this top share of |IG|")] = 0.5,
    ig_steps: Annotated[int, typer.Option(callback=limits(1, 10_000), help="Integration steps")] = 32,
    ig_baseline: Annotated[float, typer.Option(callback=limits(-1e6, 1e6),
                                               help="Integrated-gradients baseline value for every neuron")] = 0.0,
    corpus_dir: Annotated[
        Optional[list[Path]], typer.Option("--corpus", help="Where the checkpoint's corpus files are now, if moved")
    ] = None,
    cache: Annotated[Optional[Path], typer.Option(help="Folder for cached recordings (default: the user cache)")] = None,
    seed: Annotated[int, typer.Option(callback=SEED, help="Seed for examples, splits and random neuron sets")] = 0,
    preset: _PRESET = "full",
    out_file: Annotated[Optional[Path], typer.Option("--out", "-o", help="Results JSON to write (default: "
                                                     "functions-CKPT.json in the results folder)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the results JSON too")] = False,
    layer: _LAYER = None,
    force: _FORCE = False,
) -> None:
    """Stage 1 (SVM + RFE), stage 2 (integrated gradients), stage 3 (Table 1 manipulations) for many tokens."""
    from ..analysis.functions import FunctionsConfig
    from ..analysis.jobs import FunctionsJob, paths_option, run_functions, words_option
    from ..analysis.jobs import preset as preset_job
    from ..paths import cache_dir

    ckpt = _load_layer(checkpoint, layer)
    if out_file is not None:
        _refuse_overwrite(out_file, force)
    cfg = FunctionsConfig(threshold=threshold, candidate_fraction=candidate_fraction, ig_keep=ig_keep,
                          ig_steps=ig_steps, ig_baseline=ig_baseline, seed=seed)
    job = preset_job(FunctionsJob, preset, tokens=words_option(tokens or "") or None, n_tokens=n_tokens,
                     positions=tuple(_parse_positions(positions)) if positions else None, per_cell=per_cell,
                     analysis=cfg, corpus=paths_option(corpus_dir) or None, cache=str(cache or cache_dir()))
    with _progress() as progress:
        results, _ = run_functions(ckpt, job, _stage_progress(progress))
    _finish(out_file, "functions", ckpt, results, force, as_json, _print_functions_table)


def _print_functions_table(results: dict) -> None:
    from ..analysis.functions import format_table

    flagged = _print_warnings(results)
    table = Table("manipulation", "neurons", "n", "with the set [95% CI]", "random sets: mean ± sd (draws, range)",
                  "paper",
                  title=f"Table 1 — {len(results['tokens'])} tokens, {results['n_examples']} examples, "
                        f"positioning {results['positioning_accuracy']:.1%}"
                        + (f" — {flagged} WARNING(S) ABOVE" if flagged else ""))
    table.columns[0].no_wrap = True  # the manipulation's name is what readers grep for
    if results.get("roles"):
        from ..analysis.roles import coverage_line

        table.caption = f"roles: this result {coverage_line(results['roles'])} (the explorer's 1-4 select them)"
    for row in format_table(results):
        table.add_row(*row)
    out.print(table)
    s5 = results.get("section5")
    if s5:
        first = next(iter(s5.values()))
        g_out, g_store = ("z", "r") if first.get("z_outputting") is not None else ("o", "f")
        t5 = Table("h_{T-1}", f"mean {g_out} over outputting neurons at T", f"mean {g_store} over storing neurons at T",
                   "n", title="Section 5: the triggering neurons' effect on the gates at T"
                   + ("" if g_out == "z" else " (LSTM: output and forget gates)"))
        for key, label in (("clean", "unchanged"), ("with_triggering", "only triggering neurons kept"),
                           ("without_triggering", "all masked")):
            if key in s5:
                row = s5[key]
                t5.add_row(label, f"{row[g_out + '_outputting']:.3f}", f"{row[g_store + '_storing']:.3f}", str(row["n"]))
        out.print(t5)


@analyze_app.command("curves")
@positioning_examples()
def analyze_curves_cmd(
    checkpoint: _CHECKPOINT,
    examples: ExampleOptions,
    percents: Annotated[str, typer.Option(help="Set sizes as % of the hidden size")] = "2,5,10,15,20,30,50",
    draws: _DRAWS = 10,
    roles: Annotated[str, typer.Option(help="Comma-separated roles")] = "storing,counting,triggering,outputting",
    cell_state: Annotated[bool, typer.Option("--cell-state", help="LSTM: manipulate c instead of h")] = False,
    out_file: Annotated[Optional[Path], typer.Option("--out", "-o", help="Results JSON (default: curves-CKPT.json in "
                                                     "the results folder; a CSV is written beside it)")] = None,
    force: _FORCE = False,
    width: Annotated[int, typer.Option(callback=limits(40, 1000), help="Figure width in columns")] = 100,
    layer: _LAYER = None,
) -> None:
    """Dose-response: each role's manipulation on the top-k neurons by integrated gradients as k grows, beside
    random sets of the same size (mean and min-max over draws). JSON, CSV and a plotext figure."""
    import csv
    import io

    from ..analysis.curves import CurvesConfig, curves_csv_rows, plot_curves, run_curves
    from ..analysis.roles import ROLES
    from ..checkpoint.format import atomic_write_text

    ckpt = _load_layer(checkpoint, layer)
    wanted = tuple(r.strip() for r in roles.split(",") if r.strip())
    if not wanted or any(r not in ROLES for r in wanted):
        raise UserError(f"--roles {roles!r}: choose from {', '.join(ROLES)}")
    if cell_state and ckpt.config.cell != "lstm":
        raise UserError("--cell-state needs an LSTM checkpoint")
    pcts = tuple(p for p in _percents(percents) if p > 0)
    if not pcts:
        raise UserError("--percents needs at least one size above 0")
    cfg = CurvesConfig(percents=pcts, draws=draws, roles=wanted, seed=examples.seed, on_cell=cell_state)
    if out_file is not None:
        _refuse_overwrite(out_file, force)
    with _progress() as progress:
        rec, _, _ = _recording(ckpt, examples, progress,
                               progress.add_task("recording", total=None))
        res = run_curves(ckpt, rec, cfg, _stage_progress(progress))
    path = _write_results(out_file, "curves", ckpt, res, force)
    rows = curves_csv_rows(res)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path.with_suffix(".csv"), buf.getvalue())
    _print_warnings(res)
    sys.stdout.write(plot_curves(res, width, color=sys.stdout.isatty()) + "\n")
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
@positioning_examples()
def analyze_storing_cmd(
    checkpoint: Annotated[Path, typer.Argument(help="A .safetensors checkpoint (one layer)")],
    examples: ExampleOptions,
    grow_step: Annotated[int, typer.Option(callback=limits(1, 8192), help="Neurons added per point of the growth curve")] = 16,
    threshold: Annotated[float, typer.Option(callback=limits(0, 1), help="Accuracy a set must bring the token below")] = 0.2,
    draws: _DRAWS = 10,
    out_file: Annotated[Optional[Path], typer.Option("--out", "-o", help="Results JSON (default: storing-CKPT.json "
                                                     "in the results folder)")] = None,
    force: _FORCE = False,
) -> None:
    """The storing question: sets grown by single-step vs multi-step integrated gradients until accuracy falls
    below --threshold, against random sets; two disjoint sets zeroed alone and together (redundancy); for an
    LSTM also the cell state."""
    from ..analysis.storing import StoringConfig, run_storing

    ckpt = _load(checkpoint)
    if ckpt.config.layers != 1:
        raise UserError("analyze storing needs a one-layer model (its multi-step attribution replays one layer)")
    if out_file is not None:
        _refuse_overwrite(out_file, force)
    cfg = StoringConfig(grow_step=grow_step, threshold=threshold, draws=draws, seed=examples.seed)
    with _progress() as progress:
        rec, _, _ = _recording(ckpt, examples, progress,
                               progress.add_task("recording", total=None))
        res = run_storing(ckpt, rec, cfg, _stage_progress(progress))
    path = _write_results(out_file, "storing", ckpt, res, force)
    _print_warnings(res)
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
    checkpoint: _CHECKPOINT,
    results: Annotated[Optional[Path], typer.Option(help="Results JSON from analyze functions (default: the newest "
                                                         "in the results folder)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """The verification table in the paper's layout (with random-neuron controls) and the Section 5 numbers."""
    from ..analysis.functions import format_table

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
                                                         "in the results folder) or analyze curves")] = None,
    out_dir: Annotated[Optional[Path], typer.Option("--out-dir", help="Write figure2.csv and figure3.csv here")] = None,
    width: Annotated[int, typer.Option(callback=limits(20, 1000), help="Plot width in columns")] = 100,
    color: Annotated[bool, typer.Option(help="ANSI colours (default: when writing to a terminal)")] = None,  # type: ignore[assignment]
    force: _FORCE = False,
) -> None:
    """The paper's Figure 2 (PCA of storing neurons over t, per token) and Figure 3 (counting neurons' mean
    against t, per T) as terminal plots (plotext) and as CSV; or, given an analyze curves result, its figure."""

    import plotext as plt

    if results is not None:
        from ..analysis.results_files import load_results

        loaded = load_results(results)
        if loaded.kind == "curves":
            from ..analysis.curves import plot_curves

            sys.stdout.write(plot_curves(loaded.data, width, color=sys.stdout.isatty() if color is None else color)
                             + "\n")
            return
    data = _load_results(results)
    fig2, fig3 = data.get("figure2") or [], data.get("figure3") or []
    if out_dir is not None:
        _write_figure_csvs(out_dir, {"figure2.csv": fig2, "figure3.csv": fig3}, force)
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


def _write_figure_csvs(out_dir: Path, tables: dict[str, list[dict]], force: bool) -> None:
    """figure2.csv and figure3.csv in `out_dir`, neither replacing a file unasked."""
    import csv
    import io

    from ..checkpoint.format import atomic_write_text

    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"--out-dir {out_dir} is a file; give a folder")
    for name in tables:
        _refuse_overwrite(out_dir / name, force)
    for name, rows in tables.items():
        if rows:
            buf = io.StringIO()
            writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
            atomic_write_text(out_dir / name, buf.getvalue())
    out.print(f"CSV written to {out_dir}")
