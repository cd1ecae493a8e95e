"""`analyze patch`: activation-patching sweeps (causal tracing) over step × neuron block, exact and attribution."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import UserError
from .common import (
    _CHECKPOINT,
    _FORCE,
    COUNT,
    SEED,
    Table,
    _load,
    _print_json,
    _print_warnings,
    _progress,
    _refuse_overwrite,
    _stage_progress,
    _write_results,
    analyze_app,
    out,
)

_PAIRS_HELP = ("position (same source and token, T vs T+1), token (same source and T, another token), source "
               "(another source, same control), or a TSV file of 'clean<TAB>corrupted' lines")


@analyze_app.command("patch")
def analyze_patch_cmd(
    checkpoint: _CHECKPOINT,
    clean: Annotated[Optional[str], typer.Option(help="The clean input, e.g. 'the king came king@3'")] = None,
    corrupt: Annotated[Optional[str], typer.Option(help="The corrupted input, e.g. 'the king came king@4'")] = None,
    pairs: Annotated[Optional[str], typer.Option(help=_PAIRS_HELP)] = None,
    n_pairs: Annotated[int, typer.Option(callback=COUNT, help="Generated pairs (with --pairs KIND)")] = 100,
    hooks: Annotated[str, typer.Option(help="Hook points to sweep: h, c, gates (r,z,n / i,f,g,o), or all")] = "h",
    layers: Annotated[str, typer.Option(help="Layers to sweep, e.g. 0,1 (default: every layer)")] = "",
    block: Annotated[int, typer.Option(help="Neurons per block (1: single neurons); when it does not divide h, "
                                            "the last block holds the rest")] = 16,
    metric: Annotated[str, typer.Option(help="logit-diff (clean answer minus the corrupted run's token), prob "
                                             "(the clean answer's probability) or lands (it is emitted)")] = "logit-diff",
    direction: Annotated[str, typer.Option(help="denoise (clean values into the corrupted run) or noise "
                                                "(corrupted values into the clean run)")] = "denoise",
    encoder: Annotated[bool, typer.Option(help="Sweep the encoder steps too")] = True,
    method: Annotated[str, typer.Option(help="both, exact or attribution (one backward pass per pair)")] = "both",
    corpus_dir: Annotated[Optional[list[Path]], typer.Option("--corpus", help="Where the checkpoint's corpus files "
                                                                               "are now, if moved")] = None,
    seed: Annotated[int, typer.Option(callback=SEED, help="Seed for generated pairs")] = 0,
    roles: Annotated[Optional[Path], typer.Option(help="analyze functions results: report how far each pair's "
                                                       "strongest single neurons are its token's role sets "
                                                       "(needs --block 1)")] = None,
    out_file: Annotated[Optional[Path], typer.Option("--out", "-o", help="Results JSON (default: patch-CKPT.json in "
                                                     "the results folder); a CSV is written beside it")] = None,
    force: _FORCE = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the results JSON too")] = False,
) -> None:
    """Causal tracing: patch each (step, neuron block) from one input's run into the other's and measure how much
    of the clean answer comes back (0 = corrupted, 1 = clean), exactly and by attribution patching."""
    from ..analysis.patching import PatchConfig, run_patching

    cfg = PatchConfig(hooks=tuple(h.strip() for h in hooks.split(",") if h.strip()), layers=_layers(layers),
                      block=block, metric=metric, direction=direction, encoder=encoder,
                      exact=method in ("both", "exact"), attribution=method in ("both", "attribution"))
    if method not in ("both", "exact", "attribution"):
        raise UserError(f"--method {method!r}: use both, exact or attribution")
    ckpt = _load(checkpoint)
    cfg.check(ckpt.config.cell, ckpt.config.hidden, ckpt.config.layers)
    if out_file is not None:
        _refuse_overwrite(out_file, force)
        _refuse_overwrite(out_file.with_suffix(".csv"), force)
    role_sets = _role_sets(roles, block)
    chosen = _pairs(ckpt, clean, corrupt, pairs, n_pairs, corpus_dir, seed)
    with _progress() as progress:
        res = run_patching(ckpt, chosen, cfg, _stage_progress(progress), role_sets)
    if not res["n_pairs"]:
        raise UserError(f"no pair could be traced: {res['dropped'][0]['reason']} (pick inputs whose outputs differ)")
    path = _write_results(out_file, "patch", ckpt, res, force)
    csv_path = _write_csv(path, res, explicit=out_file is not None)
    if as_json:
        _print_json(res)
    print_patch(res)
    out.print(f"results written to {path} and {csv_path}")


def _role_sets(roles: Optional[Path], block: int):
    if roles is None:
        return None
    from ..analysis.results_files import load_results

    if block != 1:
        raise UserError("--roles compares single neurons: add --block 1")
    return load_results(roles, expect="functions").parsed.roles


def _write_csv(path: Path, res: dict, explicit: bool) -> Path:
    """The CSV beside the results JSON; beside a default name, never over a file someone put there."""
    from ..checkpoint.format import atomic_write_text
    from ..paths import free_path

    csv_path = path.with_suffix(".csv")
    if not explicit and csv_path.exists():
        csv_path = free_path(path.parent, path.stem, ".csv")
    atomic_write_text(csv_path, patch_csv(res))
    return csv_path


def _layers(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise UserError(f"--layers {text!r}: give layer numbers such as 0,1") from None


def _pairs(ckpt, clean, corrupt, kind, n, corpus_dir, seed):
    """The pairs the options ask for, each checked against the model before anything runs."""
    from ..analysis.patch_pairs import PAIR_KINDS, Pair, check_pairs, generate_pairs, pairs_where, read_pairs_tsv

    if (clean is None) != (corrupt is None):
        raise UserError("give --clean and --corrupt together (or --pairs)")
    if clean is not None and corrupt is not None:
        if kind is not None:
            raise UserError("give either --clean/--corrupt or --pairs, not both")
        chosen = [Pair(clean, corrupt)]
        check_pairs(ckpt, chosen)
        return chosen
    if kind is None:
        raise UserError("say what to patch: --clean 'SRC tok@T' --corrupt 'SRC tok@T2', or --pairs "
                        f"{'|'.join(PAIR_KINDS)}|FILE.tsv")
    if kind not in PAIR_KINDS:
        path = Path(kind)
        if not path.exists():
            raise UserError(f"--pairs {kind!r}: not a file, nor one of {', '.join(PAIR_KINDS)}")
        chosen = read_pairs_tsv(path)
        check_pairs(ckpt, chosen, pairs_where(path, chosen))
        return chosen
    from ..training.evaluate import heldout_examples

    _, held = heldout_examples(ckpt, corpus_dir=corpus_dir, n=max(4 * n, 200), seed=seed + 11)
    return generate_pairs(ckpt, kind, held, n, seed)


def patch_csv(res: dict) -> str:
    """One row per cell: hook, layer, step, block, exact mean and CI, n, attribution."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["hook", "layer", "step", "block", "exact_mean", "exact_lo", "exact_hi", "n", "attribution_mean"])
    for m in res["maps"].values():
        exact, attr = m.get("exact"), m.get("attribution")
        for i, step in enumerate(res["steps"]):
            for b, block in enumerate(res["blocks"]):
                row = [m["hook"], m["layer"], step, block["label"]]
                row += [exact[k][i][b] for k in ("mean", "lo", "hi", "n")] if exact else ["", "", "", ""]
                row.append(attr["mean"][i][b] if attr else "")
                w.writerow(["" if v is None else v for v in row])
    return buf.getvalue()


def print_patch(res: dict, top: int = 10) -> None:
    """The heatmap of the first map (steps × blocks), the top cells, and how far attribution can be trusted."""
    from ..analysis.patch_report import heatmap_text, top_cells

    flagged = _print_warnings(res)
    if not res["n_pairs"]:
        return
    name, m = next(iter(res["maps"].items()))
    method = "exact" if "exact" in m else "attribution"
    out.print(heatmap_text(res, name, method), markup=False, highlight=False)
    table = Table("step", "neurons", f"{method} [95% CI]", "n", *(("attribution",) if method == "exact" and
                                                                  "attribution" in m else ()),
                  title=f"patching {name} — {res['params']['direction']}, {res['params']['metric']}, "
                        f"{res['n_pairs']} pair(s)" + (f" — {flagged} WARNING(S) ABOVE" if flagged else ""))
    for row in top_cells(res, name, method, top):
        table.add_row(*row)
    out.print(table)
    if res.get("role_overlap"):
        print_overlap(res["role_overlap"])
    corr = res.get("rank_correlation")
    if corr and corr.get("spearman") is not None:
        out.print(f"attribution vs exact: Spearman {corr['spearman']:.3f} over {corr['cells']} cells; "
                  f"exact {res['seconds']['exact']:.2f} s, attribution {res['seconds']['attribution']:.2f} s")
    if res["dropped"]:
        out.print(f"{len(res['dropped'])} pair(s) dropped: {res['dropped'][0]['reason']}")


def print_overlap(overlap: dict) -> None:
    table = Table("role", "step", "pairs", "set size", "strongest neurons in the set [95% CI]", "random sets [95% CI]",
                  title="the sweep's strongest single neurons against the role sets")
    for role, o in overlap.items():
        if not o["pairs"]:
            table.add_row(role, o["step"], "0", "", "no pair's token has this role", "")
            continue
        ci = "" if o["ci95"][0] is None else f" [{o['ci95'][0]:.1%}, {o['ci95'][1]:.1%}]"
        rci = "" if o["random_ci95"][0] is None else f" [{o['random_ci95'][0]:.1%}, {o['random_ci95'][1]:.1%}]"
        table.add_row(role, o["step"], str(o["pairs"]), f"{o['mean_set_size']:.1f}", f"{o['overlap']:.1%}{ci}",
                      f"{o['random']:.1%}{rci}")
    out.print(table)
