"""`analyze match`: LSTMVis's match view, headless — where in a corpus do the selected neurons do this?"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import UserError
from .common import _CHECKPOINT, COUNT, Table, analyze_app, err, escape, limits, out
from .options import RunOptions, job_run


@analyze_app.command("match")
@job_run()
def match_cmd(
    checkpoint: _CHECKPOINT,
    run: RunOptions,
    neurons: Annotated[str, typer.Option(help="Neurons to match, e.g. 3,17 or 10-20")],
    threshold: Annotated[float, typer.Option(callback=limits(-1e6, 1e6),
                                             help="A neuron is on above this value (below it with --below)")] = 0.5,
    below: Annotated[bool, typer.Option("--below", help="On means below the threshold")] = False,
    window: Annotated[int, typer.Option(callback=limits(1, 1000), help="Consecutive steps a place spans")] = 3,
    min_share: Annotated[float, typer.Option(callback=limits(0, 1, lo_open=True),
                                             help="Share of (neuron, step) cells that must be on (1: all)")] = 1.0,
    part: Annotated[str, typer.Option(help="encoder: states over a corpus; decoder: positioning examples")] = "encoder",
    corpus: Annotated[Optional[list[Path]], typer.Option(help="Text files to search (default: the checkpoint's "
                                                              "held-out text)")] = None,
    sentences: Annotated[Optional[int], typer.Option(callback=COUNT, help="Sentences (decoder: examples) searched (default "
                                                                  "2000; quick preset 500)")] = None,
    top: Annotated[int, typer.Option(callback=limits(1, 100_000), help="Matches listed")] = 50,
    bins: Annotated[int, typer.Option(callback=limits(2, 10_000), help="Histogram bins per neuron")] = 20,
) -> None:
    """Find every place where the selected neurons are on (or off) for a window of steps, ranked by how well
    they match, with each neuron's value distribution to choose the threshold from."""
    from ..analysis.jobs import MatchJob, run_match
    from ..analysis.places import histogram_text, marked_tokens
    from ..model.interventions import NeuronSet

    ns = NeuronSet.parse(neurons)
    if not ns.indices:
        raise UserError(f"--neurons {neurons!r}: name the neurons, e.g. 3,17 or 10-20")
    ckpt = run.load(checkpoint)
    job = run.job(MatchJob, neurons=tuple(ns.indices), threshold=threshold, below=below, window=window,
                  min_share=min_share, part=part, corpus=tuple(str(c) for c in corpus or ()), sentences=sentences,
                  top=top, bins=bins)
    with err.status("matching") as status:
        res = run_match(ckpt, job, lambda stage, d, t: status.update(stage))
    if run.finish(res):
        return
    for n, hist in res["histograms"].items():
        out.print(f"neuron {n}: values over {res['n_states']} {res['part']} states (mean {hist['mean']:+.3f})")
        for row in histogram_text(hist, threshold):
            out.print("  " + row, markup=False, highlight=False)
    side = "below" if below else "above"
    table = Table("#", "share on", "margin", "sequence", "tokens (match in [ ])",
                  title=f"{res['n_matches']} places where neurons {neurons} are {side} {threshold} for {window} "
                        f"steps ({res['n_sequences']} {res['part']} sequences searched)")
    for m in res["matches"]:
        table.add_row(str(m["rank"]), f"{m['share']:.2f}", f"{m['margin']:+.3f}", str(m["sequence"]),
                      escape(marked_tokens(m)))
    out.print(table)
