"""`analyze probe|rank|crossmodel|top-words|memory`: diagnostic classifiers, NeuroX and state gradients."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import UserError
from .common import (
    _CHECKPOINT,
    _JSON,
    _LAYER,
    _OUT,
    _TAGGED,
    _TEXT,
    COUNT,
    SEED,
    LazyProgress,
    Table,
    _load_layer,
    _load_results,
    _percents,
    _print_json,
    _write_out,
    analyze_app,
    err,
    limits,
    out,
    real,
)
from .options import HypothesisOptions, RunOptions, hypothesis_states, job_run


@analyze_app.command("probe")
@job_run()
@hypothesis_states()
def probe_cmd(
    checkpoint: _CHECKPOINT,
    states: HypothesisOptions,
    run: RunOptions,
    seed: Annotated[int, typer.Option(callback=SEED, help="Seed for splits and the control task")] = 0,
) -> None:
    """Diagnostic classifier: plain and class-balanced logistic probes (ridge for numbers), metrics, baseline,
    most responsible neurons, control-task selectivity."""
    from ..analysis.jobs import ProbeJob, run_probe

    ckpt = run.load(checkpoint)
    job = run.job(ProbeJob, **states.job_fields(), seed=seed)
    _check_activations(ckpt, states)
    with err.status("probing") as status:
        res = run_probe(ckpt, job, lambda stage, d, t: status.update(stage))
    if run.finish(res):
        return
    table = Table("probe", "accuracy", "precision", "recall", "F1 (macro)", "majority", "top neurons",
                  title=f"{states.hypothesis}: {res['n_train']} train / {res['n_test']} test tokens, {res['classes']} classes")
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
@job_run()
@hypothesis_states()
def rank_cmd(
    checkpoint: _CHECKPOINT,
    states: HypothesisOptions,
    run: RunOptions,
    l1: Annotated[float, typer.Option(callback=limits(0, 1e6), help="Elastic-net λ1")] = 1e-5,
    l2: Annotated[float, typer.Option(callback=limits(0, 1e6), help="Elastic-net λ2")] = 1e-5,
    objective: Annotated[str, typer.Option(help="squared: λ2·|W|₂² (scikit-learn's elastic net); neurox: λ2·|W|₂, "
                                                "NeuroX's plain norm")] = "squared",
    tol: Annotated[float, typer.Option(callback=limits(0, 1, lo_open=True),
                                       help="Convergence: largest projected gradient")] = 1e-6,
    max_iter: Annotated[int, typer.Option(callback=limits(1, 10_000_000),
                                          help="Iteration cap; the result says if it was reached")] = 20000,
    stability_seeds: Annotated[int, typer.Option(callback=limits(1, 1000),
                                                 help="Fits from different starts (1: none extra)")] = 3,
    resamples: Annotated[int, typer.Option(callback=limits(0, 1000),
                                           help="Fits on 80% subsamples of the training sentences")] = 3,
    stride: Annotated[float, typer.Option(callback=limits(0, 1, lo_open=True),
                                          help="Weight-mass step of the ranking search")] = 0.01,
    percents: Annotated[str, typer.Option(help="Top/bottom shares for the masking table")] = "10,15,20",
    ablate: Annotated[bool, typer.Option(help="Also zero the ranked neurons in the live decoder (Figure 4 curves)")] = False,
    seed: Annotated[int, typer.Option(callback=SEED, help="Seed of the first start and of the resamples")] = 0,
) -> None:
    """NeuroX: elastic-net probe trained to convergence, neuron ranking by weight mass, its stability across
    starts and resamples, salient neurons, top/bottom masking and retraining, and (with --ablate) positioning
    accuracy as the top / bottom / random N% are zeroed in the model."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from ..analysis.jobs import RankJob, run_rank
    from ..analysis.neurox import OBJECTIVES, RankConfig

    if objective not in OBJECTIVES:
        raise UserError(f"--objective {objective!r}: use one of {', '.join(OBJECTIVES)}")
    ckpt = run.load(checkpoint)
    cfg = RankConfig(l1=l1, l2=l2, objective=objective, tol=tol, max_iter=max_iter,  # type: ignore[arg-type]
                     stride=stride, percents=tuple(_percents(percents)), seed=seed,
                     stability_seeds=stability_seeds, resamples=resamples)
    job = run.job(RankJob, **states.job_fields(), rank=cfg, ablate=ablate)
    _check_activations(ckpt, states)
    n_fits = stability_seeds + resamples
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("fit {task.completed}/{task.total}"),
                  TextColumn("iteration {task.fields[it]}"), TimeElapsedColumn(), console=real(err)) as progress:
        task = progress.add_task("elastic net", total=n_fits, it=0)
        stages: list[str] = []

        def report(stage: str, it: int, cap: int) -> None:
            if stage.startswith("ablating"):
                progress.update(task, description=stage, completed=it, total=cap, it="-")
                return
            if stage not in stages:
                stages.append(stage)
            progress.update(task, description=stage, completed=len(stages) - 1, it=it)

        res = run_rank(ckpt, job, report)
        progress.update(task, completed=n_fits)
    if run.finish(res):
        return
    _print_rank(res, objective)
    if ablate:
        _print_ablation(res["ablation"])


def _print_rank(res: dict, objective: str) -> None:
    from ..analysis.neurox import stability_line

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
    sentences: Annotated[int, typer.Option(callback=COUNT, help="Held-out sentences to record (of the first checkpoint)")] = 1000,
    results: Annotated[Optional[Path], typer.Option(help="analyze functions results of the first model: report where "
                                                         "its role neurons fall in the ranking")] = None,
    ablate: Annotated[bool, typer.Option(help="Ablation curve of the first model for its ranking")] = False,
    seed: Annotated[int, typer.Option(callback=SEED, help="Seed")] = 0,
    out_path: _OUT = None,
    as_json: _JSON = False,
    layer: _LAYER = None,
) -> None:
    """Rank each model's neurons by their highest absolute Pearson correlation with any neuron of another model;
    the share of neurons at |r| >= 0.8; with --results, where the first model's role neurons fall."""
    from ..analysis.neurox import cross_model_correlation, roles_in_ranking

    if len(checkpoints) < 2:
        raise UserError("crossmodel needs at least two checkpoints")
    if part not in ("encoder", "decoder"):
        raise UserError(f"--part {part!r}: use encoder or decoder")
    if results is not None and part != "decoder":
        raise UserError("--results places the paper's role neurons, which are decoder neurons: add --part decoder")
    roles = _load_results(results)["roles"] if results else None
    ckpts = [_load_layer(c, layer) for c in checkpoints]
    if any(c.config != ckpts[0].config for c in ckpts[1:]) or any(c.vocab.itos != ckpts[0].vocab.itos for c in ckpts[1:]):
        raise UserError("crossmodel needs checkpoints of the same configuration and vocabulary")
    with err.status("recording the same tokens in every model"):
        acts = _crossmodel_states(ckpts, part, sentences, seed)
    scores = cross_model_correlation(acts)
    res: dict = {"kind": "crossmodel", "part": part, "checkpoints": [str(c) for c in checkpoints],
                 "tokens": int(len(acts[0])), "models": scores}
    if roles is not None:
        res["roles"] = roles_in_ranking(scores[0]["score"], roles)
    if ablate:
        from rich.progress import Progress

        from ..analysis.jobs import ablate_ranking

        with Progress(console=real(err)) as progress:
            task = progress.add_task("ablating in the model", total=None)
            res["ablation"] = ablate_ranking(ckpts[0], scores[0]["ranking"], seed,
                                             progress=lambda s, d, t: progress.update(task, completed=d, total=t))
    _write_out(out_path, res)
    if as_json:
        _print_json(res)
        return
    _print_crossmodel(checkpoints, scores, res)
    if ablate:
        _print_ablation(res["ablation"])


@analyze_app.command("top-words")
def top_words_cmd(
    checkpoint: _CHECKPOINT,
    neuron: Annotated[int, typer.Option(callback=limits(0, 8191), help="Neuron index")],
    sentences: Annotated[int, typer.Option(callback=COUNT, help="Held-out sentences to record")] = 2000,
    as_json: _JSON = False,
    layer: _LAYER = None,
    text: _TEXT = None,
) -> None:
    """The words that activate a neuron most (and least) in the encoder (NeuroX Table 3)."""
    from ..analysis.neurox import top_activating
    from ..analysis.probes import encoder_states
    from ..analysis.recording import heldout_lines

    ckpt = _load_layer(checkpoint, layer)
    if not 0 <= neuron < ckpt.config.hidden:
        raise UserError(f"neuron {neuron} does not exist: the model has neurons 0..{ckpt.config.hidden - 1}")
    res = top_activating(encoder_states(ckpt, heldout_lines(ckpt, text)[:sentences]), neuron)
    if as_json:
        _print_json(res)
        return
    out.print(f"neuron {neuron} top: " + ", ".join(f"{d['word']} ({d['mean']:+.2f})" for d in res["top"]))
    out.print(f"neuron {neuron} bottom: " + ", ".join(f"{d['word']} ({d['mean']:+.2f})" for d in res["bottom"]))


@analyze_app.command("memory")
@job_run()
def memory_cmd(
    checkpoint: _CHECKPOINT,
    run: RunOptions,
    part: Annotated[str, typer.Option(help="encoder or decoder")] = "encoder",
    state: Annotated[str, typer.Option(help="h, or c for an LSTM")] = "h",
    max_delay: Annotated[int, typer.Option(callback=limits(1, 10_000), help="Largest delay τ")] = 20,
    sequences: Annotated[Optional[int], typer.Option(callback=COUNT, help="Held-out windows to average over (default 64; quick "
                                                          "preset 24)")] = None,
    tagged: _TAGGED = None,
    diff: Annotated[Optional[str], typer.Option(help="TAG1,TAG2: relative memory of the difference of their mean "
                                                     "embeddings (needs --tagged)")] = None,
    words: Annotated[str, typer.Option(help="Comma-separated words: a class averaged over their positions only")] = "",
    text: _TEXT = None,
) -> None:
    """State gradients (Verwimp et al.): σ1, σ1/Σσ and Σ_{i≤5}σi/Σσ of the normalised gradient matrix over delay,
    with exponential fits, overall and per part of speech with --tagged."""
    from ..analysis.jobs import MemoryJob, paths_option, run_memory, words_option

    ckpt = run.load(checkpoint)
    job = run.job(MemoryJob, part=part, state=state, max_delay=max_delay, sequences=sequences,
                  tagged=paths_option(tagged), diff=words_option(diff) if diff else None, words=words_option(words),
                  text=paths_option(text))
    with LazyProgress() as progress:
        res = run_memory(ckpt, job, progress.report)
    if run.finish(res):
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


def _crossmodel_states(ckpts: list, part: str, sentences: int, seed: int) -> list:
    """The same tokens' states in every model: encoder states of held-out sentences, or decoder states of
    positioning examples (steps every model ran)."""
    import numpy as np

    from ..analysis.probes import encoder_states
    from ..analysis.recording import build_examples, frequent_targets, heldout_lines, record

    lines = heldout_lines(ckpts[0])[:sentences]
    if part == "encoder":
        return [encoder_states(c, lines).X for c in ckpts]
    positions = range(1, ckpts[0].config.max_position + 1)
    examples = build_examples(ckpts[0], lines, frequent_targets(ckpts[0], lines, 20), positions, 4, seed)
    hs = [record(c, examples, gates=False).h for c in ckpts]
    keep = ~np.isnan(hs[0][..., 0])
    for h in hs[1:]:
        keep &= ~np.isnan(h[..., 0])
    return [h[keep] for h in hs]


def _print_crossmodel(checkpoints: list[Path], scores: list, res: dict) -> None:
    for path, sc in zip(checkpoints, scores):
        top = sc["ranking"][:10]
        best = ", ".join(f"{sc['score'][j]:.2f}" for j in top[:5])
        out.print(f"{path}: top neurons {top} (max |r| {best}); {sc['share_at_least_0.8']:.1%} of neurons at |r| >= 0.8")
    for role, r in (res.get("roles") or {}).items():
        out.print(f"{role}: {r['neurons']} neurons, mean max |r| {r['mean_score']:.2f} (others {r['others_mean']:.2f}), "
                  f"{r['share_in_top_20%']:.0%} in the top 20% (chance 20%)")


def _check_activations(ckpt, states: HypothesisOptions) -> None:
    """A given activations file is read and checked before any progress is drawn: a bad one is the only line."""
    if states.activations is not None:
        from ..analysis.corpus_states import file_states

        file_states(ckpt, states.activations, 1)


@analyze_app.command("probeless")
@job_run()
@hypothesis_states()
def probeless_cmd(checkpoint: _CHECKPOINT, states: HypothesisOptions, run: RunOptions) -> None:
    """Probeless ranking (NeuroX's cheap ranker): neurons by the difference of their class means, no probe
    trained; the results file reopens in the explorer like a ranking (f selects the top 10%)."""
    from ..analysis.jobs import ProbelessJob, run_probeless

    ckpt = run.load(checkpoint)
    job = run.job(ProbelessJob, **states.job_fields())
    _check_activations(ckpt, states)
    with err.status("recording states") as status:
        res = run_probeless(ckpt, job, lambda stage, d, t: status.update(stage))
    if run.finish(res):
        return
    out.print(f"probeless ranking of {res['n_states']} states, {res['classes']} classes of {states.hypothesis}; "
              f"top neurons {res['ranking'][:10]}")


@analyze_app.command("cluster")
@job_run()
def cluster_cmd(
    checkpoint: _CHECKPOINT,
    run: RunOptions,
    threshold: Annotated[float, typer.Option(callback=limits(0, 1, lo_open=True),
                                             help="Neurons whose |correlation| is above 1 - THRESHOLD group")] = 0.3,
    sentences: Annotated[int, typer.Option(callback=limits(1, 1_000_000), help="Held-out sentences")] = 2000,
    activations: Annotated[Optional[Path], typer.Option(help="A NeuroX activations file instead of the model's "
                                                             "runs")] = None,
    text: _TEXT = None,
) -> None:
    """Correlation clustering (NeuroX): groups of redundant encoder neurons and one representative each; the
    results file reopens in the explorer (f selects the representatives)."""
    from ..analysis.jobs import ClusterJob, paths_option, run_cluster

    ckpt = run.load(checkpoint)
    if activations is not None:
        from ..analysis.corpus_states import file_states

        file_states(ckpt, activations, 1)
    job = run.job(ClusterJob, threshold=threshold, sentences=sentences,
                  activations=str(activations) if activations else None, text=paths_option(text))
    with err.status("recording states") as status:
        res = run_cluster(ckpt, job, lambda stage, d, t: status.update(stage))
    if run.finish(res):
        return
    sizes = [len(c) for c in res["clusters"]]
    out.print(f"{len(sizes)} groups of {res['n_neurons']} neurons over {res['n_states']} states "
              f"(|r| > {1 - threshold:.2f}): {res['redundant']} redundant; largest groups {sizes[:8]}")
    out.print(f"representatives (first 20): {res['representatives'][:20]}")
