"""The analyses as jobs: each takes (checkpoint, job config, progress) and returns its results document.

The CLI and the explorer both call these, so the same question gets the same answer. Each config
dataclass holds the one set of defaults (`full`); `preset(Job, "quick")` is the smaller named preset the
explorer uses interactively, and the preset's name is written into the result. Progress is
`progress(stage, done, total)`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

from ..checkpoint.format import Checkpoint
from ..errors import ParameterError
from .functions import FunctionsConfig
from .neurox import RankConfig
from .search import MatchJob

Progress = Callable[[str, int, int], None]


def _quiet(stage: str, done: int, total: int) -> None:
    pass


@dataclass(frozen=True)
class FunctionsJob:
    """Stages 1-3 of the token-positioning paper over many control tokens."""

    tokens: tuple[str, ...] = ()  # empty: the n_tokens most frequent words of the held-out text
    n_tokens: int = 50
    positions: tuple[int, ...] = ()  # empty: 1..the model's largest T
    per_cell: int = 8  # examples per (token, T)
    analysis: FunctionsConfig = field(default_factory=FunctionsConfig)
    corpus: tuple[str, ...] = ()  # where the checkpoint's corpus files are now, if moved
    cache: str | None = None  # recordings cache folder (None: none)
    preset: str = "full"


@dataclass(frozen=True)
class HypothesisJob:
    """What a probe or a ranking learns from: held-out states labelled by a hypothesis (or a tagged corpus)."""

    hypothesis: str = "position"
    tagged: tuple[str, ...] = ()
    words: tuple[str, ...] = ()
    sentences: int = 2000
    activations: str | None = None  # a NeuroX activations file to learn from instead of the model's runs
    preset: str = "full"
    text: tuple[str, ...] = ()  # text files to read sentences from (default: the checkpoint's held-out block)


@dataclass(frozen=True)
class ProbeJob(HypothesisJob):
    """A diagnostic classifier (plain and balanced) for one hypothesis."""

    seed: int = 0


@dataclass(frozen=True)
class RankJob(HypothesisJob):
    """NeuroX's elastic-net ranking for one hypothesis, with its stability (and ablation if asked)."""

    rank: RankConfig = field(default_factory=RankConfig)
    ablate: bool = False
    ablation_examples: int = 600


@dataclass(frozen=True)
class ProbelessJob(HypothesisJob):
    """Probeless ranking: neurons by the difference of their class means (no probe trained)."""


@dataclass(frozen=True)
class ClusterJob:
    """Correlation clustering of the encoder's neurons over held-out sentences (or an activations file)."""

    threshold: float = 0.3  # neurons whose |r| is above 1 - threshold group together
    sentences: int = 2000
    tagged: tuple[str, ...] = ()
    activations: str | None = None
    preset: str = "full"
    text: tuple[str, ...] = ()


@dataclass(frozen=True)
class MemoryJob:
    """State gradients (Verwimp et al.) of the encoder or decoder."""

    part: str = "encoder"
    state: str = "h"
    max_delay: int = 20
    sequences: int = 64
    tagged: tuple[str, ...] = ()
    diff: tuple[str, str] | None = None
    words: tuple[str, ...] = ()
    preset: str = "full"
    text: tuple[str, ...] = ()


Job = TypeVar("Job", FunctionsJob, ProbeJob, RankJob, MemoryJob, MatchJob, ProbelessJob, ClusterJob)

# the explorer's interactive sizes: answers in seconds, on the same code and otherwise the same defaults
QUICK: dict[type, dict[str, Any]] = {
    FunctionsJob: {"n_tokens": 10, "per_cell": 6},
    ProbeJob: {"sentences": 500},
    RankJob: {"sentences": 500},
    MemoryJob: {"sequences": 24},
    MatchJob: {"sentences": 500},
    ProbelessJob: {"sentences": 500},
    ClusterJob: {"sentences": 500},
}
PRESETS = ("full", "quick")


def preset(job: type[Job], name: str = "full", **overrides: Any) -> Job:
    """The job's config under a named preset, with explicit values (not None) on top."""
    if name not in PRESETS:
        raise ParameterError("preset", f"{{param}} {name!r}: use one of {', '.join(PRESETS)}")
    values = {**(QUICK[job] if name == "quick" else {}), **{k: v for k, v in overrides.items() if v is not None}}
    return replace(job(), preset=name, **values)


def _stamp(result: dict, ckpt: Checkpoint, job: Any, **extra: Any) -> dict:
    result.update(**ckpt.provenance(), preset=job.preset, **extra)
    return result


def positioning_recording(ckpt: Checkpoint, tokens: Sequence[str], n_tokens: int, positions: Sequence[int],
                          per_cell: int, corpus: Sequence[str], cache: str | None, seed: int,
                          progress: Progress = _quiet, lead: str | None = None):
    """The (cached) positioning recording the functions, curves and storing jobs share: (recording, tokens, T's).

    Tokens: `tokens` when given; else the n_tokens most frequent held-out words, with `lead` first when given
    (the explorer's F: its control token, then the most frequent others)."""
    from .recording import build_examples, cache_key, cached_record, frequent_targets, heldout_lines, require_role_model

    require_role_model(ckpt)
    lines = heldout_lines(ckpt, None, [Path(c) for c in corpus] or None)
    if tokens and lead is None:
        words = [t.strip().lower() for t in tokens]
    elif lead is None:
        words = frequent_targets(ckpt, lines, n_tokens)
    else:
        words = [lead, *[w for w in frequent_targets(ckpt, lines, n_tokens) if w != lead][: n_tokens - 1]]
    pos = list(positions) or list(range(1, ckpt.config.max_position + 1))
    key = cache_key(ckpt, tokens=words, positions=pos, per_cell=per_cell, seed=seed, layer=ckpt.analysis_layer)
    rec, _ = cached_record(ckpt, Path(cache) if cache else None,
                           lambda: build_examples(ckpt, lines, words, pos, per_cell, seed), key,
                           lambda d, t: progress("recording", d, t))
    return rec, words, pos


def run_functions(ckpt: Checkpoint, job: FunctionsJob, progress: Progress = _quiet, lead: str | None = None):
    """Record (cached when job.cache is set) and run the three stages; returns (results, recording).

    `lead`: analyse this control token first, with the most frequent others (the explorer's F)."""
    from .functions import analyze_functions

    seed = job.analysis.seed
    rec, words, positions = positioning_recording(ckpt, job.tokens, job.n_tokens, job.positions, job.per_cell,
                                                  job.corpus, job.cache, seed, progress, lead)
    results = analyze_functions(ckpt, rec, job.analysis, progress)
    return _stamp(results, ckpt, job, kind="functions", tokens_requested=words, positions=positions,
                  per_cell=job.per_cell, seed=seed), rec


def _labelled(ckpt: Checkpoint, job: HypothesisJob, progress: Progress):
    from .corpus_states import labelled

    if job.activations:  # read and checked before anything is reported: a bad file is the only line printed
        return labelled(ckpt, job.hypothesis, None, job.sentences, list(job.words), activations=Path(job.activations))
    progress(f"recording states for {job.hypothesis}", 0, 1)
    data = labelled(ckpt, job.hypothesis, [Path(t) for t in job.tagged] or None, job.sentences, list(job.words),
                    text=[Path(t) for t in job.text] or None)
    progress(f"recording states for {job.hypothesis}", 1, 1)
    return data


def run_probe(ckpt: Checkpoint, job: ProbeJob, progress: Progress = _quiet) -> dict:
    from .probes import probe

    X, y, g, w, _ = _labelled(ckpt, job, progress)
    progress("training probes", 0, 1)
    res = probe(X, y, g, w, job.seed)
    progress("training probes", 1, 1)
    return _stamp(res, ckpt, job, kind="probe", hypothesis=job.hypothesis, sentences=job.sentences, seed=job.seed,
                  corpus=list(job.tagged))


def run_rank(ckpt: Checkpoint, job: RankJob, progress: Progress = _quiet) -> dict:
    from .neurox import rank

    X, y, g, _, _ = _labelled(ckpt, job, progress)
    res = rank(X, y, g, job.rank, progress)
    res = _stamp(res, ckpt, job, hypothesis=job.hypothesis, sentences=job.sentences, corpus=list(job.tagged))
    if job.ablate:
        res["ablation"] = ablate_ranking(ckpt, res["ranking"], job.rank.seed, job.ablation_examples, progress)
    return res


def ablate_ranking(ckpt: Checkpoint, ranking: Sequence[int], seed: int = 0, examples: int = 600,
                   progress: Progress = _quiet) -> dict:
    """Positioning accuracy as the top / bottom / random N% of a ranking are zeroed (held-out examples)."""
    from ..training.evaluate import heldout_examples
    from .neurox import ablation_curve

    _, held = heldout_examples(ckpt, n=examples, seed=seed + 7)
    return ablation_curve(ckpt, held, list(ranking), seed=seed,
                          progress=lambda d, t: progress("ablating in the model", d, t))


def run_memory(ckpt: Checkpoint, job: MemoryJob, progress: Progress = _quiet) -> dict:
    from .corpus_states import memory_for

    if job.max_delay < 1:
        raise ParameterError("max_delay", "{param} must be at least 1")
    if job.diff is not None and (len(job.diff) != 2 or not job.tagged):
        raise ParameterError("diff", "{param} takes two tags, TAG1,TAG2, and needs a tagged corpus")
    res = memory_for(ckpt, job.part, job.state, job.max_delay, job.sequences, [Path(t) for t in job.tagged] or None,
                     [Path(t) for t in job.text] or None, lambda d, t: progress("state gradients", d, t), job.diff,
                     list(job.words))
    return _stamp(res, ckpt, job, corpus=list(job.tagged))


def run_match(ckpt: Checkpoint, job: MatchJob, progress: Progress = _quiet) -> dict:
    from .search import match_document

    return _stamp(match_document(ckpt, job, progress), ckpt, job, kind="match", corpus=list(job.corpus),
                  seed=job.seed)


def words_option(text: str) -> tuple[str, ...]:
    """A comma-separated option as a tuple of its non-empty parts."""
    return tuple(x.strip() for x in text.split(",") if x.strip())


def paths_option(paths: Sequence[Path] | None) -> tuple[str, ...]:
    return tuple(str(p) for p in paths or ())


def run_probeless(ckpt: Checkpoint, job: ProbelessJob, progress: Progress = _quiet) -> dict:
    from .rankers import probeless_ranking

    X, y, _, _, _ = _labelled(ckpt, job, progress)
    ranking, scores = probeless_ranking(X, y)
    res = {"method": "probeless", "ranking": ranking, "scores": [float(x) for x in scores], "masking": {},
           "n_states": int(len(X)), "classes": int(len(set(y.tolist())))}
    return _stamp(res, ckpt, job, kind="rank", hypothesis=job.hypothesis, sentences=job.sentences,
                  corpus=list(job.tagged))


def run_cluster(ckpt: Checkpoint, job: ClusterJob, progress: Progress = _quiet) -> dict:
    from .corpus_states import file_states, sentence_states
    from .rankers import correlation_clusters

    if job.activations:
        states = file_states(ckpt, Path(job.activations), job.sentences)
    else:
        progress("recording encoder states", 0, 1)
        states = sentence_states(ckpt, [Path(t) for t in job.tagged] or None, job.sentences,
                                 [Path(t) for t in job.text] or None)
        progress("recording encoder states", 1, 1)
    clusters, representatives = correlation_clusters(states.X, job.threshold)
    res = {"threshold": job.threshold, "clusters": clusters, "representatives": representatives,
           "n_states": int(len(states.X)), "n_neurons": int(states.X.shape[1]),
           "redundant": int(states.X.shape[1] - len(clusters))}
    return _stamp(res, ckpt, job, kind="cluster", sentences=job.sentences, corpus=list(job.tagged))
