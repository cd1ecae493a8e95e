"""Options that several commands share, declared once and added to each command's signature.

typer reads a command's options from its signature; `with_options` adds a group of them to a command
and hands the command one value object built from them, so a group's names, help and defaults live in
one place: the positioning examples of curves and storing, the hypothesis states of probe and rank, the run
options (preset, --out, --force, --json, --layer) of probe, rank, memory and match, and `train`'s recipe.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from .common import (
    _CACHE,
    _CORPUS,
    _FORCE,
    _JSON,
    _LAYER,
    _N_TOKENS,
    _OUT,
    _PER_CELL,
    _POSITIONS,
    _PRESET,
    _SENTENCES,
    _TAGGED,
    _TEXT,
    _TOKENS,
    SEED,
    ExampleOptions,
    _load_layer,
    _print_json,
    _refuse_overwrite,
    _write_out,
)


def option(name: str, annotation: Any, default: Any) -> inspect.Parameter:
    """One typer option as a signature parameter (`annotation`: Annotated[type, typer.Option(...)])."""
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)


def with_options(group: Sequence[inspect.Parameter], into: str, build: Callable[..., Any], after: int = 1):
    """Add the `group` options to a command after its first `after` parameters; the command receives
    `into=build(**their values)` instead of them."""
    names = [p.name for p in group]

    def decorate(command: Callable) -> Callable:
        own = [p for p in inspect.signature(command, eval_str=True).parameters.values() if p.name != into]

        @functools.wraps(command)
        def run(**kw):
            return command(**{into: build(**{n: kw.pop(n) for n in names})}, **kw)

        # keyword-only after the first `after`: typer passes options by name, and a required option may then
        # follow one with a default (another group's placeholder, or --hypothesis)
        params = own[:after] + [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in (*group, *own[after:])]
        run.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
        run.__annotations__ = {p.name: p.annotation for p in params}
        del run.__wrapped__  # typer must read the new signature, not the command's own
        return run

    return decorate


def example_options(n_tokens: int = 20, per_cell: int = 4, seed_help: str = "Seed for examples and random sets"
                    ) -> list[inspect.Parameter]:
    """The ExampleOptions group, with a command's own defaults."""
    return [option("tokens", _TOKENS, None), option("n_tokens", _N_TOKENS, n_tokens),
            option("positions", _POSITIONS, ""), option("per_cell", _PER_CELL, per_cell),
            option("corpus_dir", _CORPUS, None), option("cache", _CACHE, None),
            option("seed", Annotated[int, typer.Option(callback=SEED, help=seed_help)], 0)]


def positioning_examples(**defaults):
    """Decorator: the command gets `examples: ExampleOptions` from --tokens … --seed."""
    return with_options(example_options(**defaults), "examples", ExampleOptions)


@dataclass(frozen=True)
class HypothesisOptions:
    """What a probe or a ranking learns from: the hypothesis, a tagged corpus, its words, how many sentences."""

    hypothesis: str
    tagged: Optional[list[Path]]
    words: str
    sentences: Optional[int]
    activations: Optional[Path] = None
    text: Optional[list[Path]] = None

    def job_fields(self) -> dict[str, Any]:
        """The HypothesisJob fields these options set."""
        from ..analysis.jobs import paths_option, words_option

        return {"hypothesis": self.hypothesis, "tagged": paths_option(self.tagged), "words": words_option(self.words),
                "sentences": self.sentences, "activations": str(self.activations) if self.activations else None,
                "text": paths_option(self.text)}


_HYPOTHESIS = Annotated[str, typer.Option(help="pos, position, token, word-set, span (--words OPEN,CLOSE), "
                                               "steps-remaining, is-control, decoder-position, or a .py file "
                                               "defining label(words, tags, index)")]


def hypothesis_states():
    """Decorator: the command gets `states: HypothesisOptions` from --hypothesis, --tagged, --words, --sentences."""
    group = [option("hypothesis", _HYPOTHESIS, inspect.Parameter.empty), option("tagged", _TAGGED, None),
             option("words", Annotated[str, typer.Option(help="Comma-separated words for word-set")], ""),
             option("sentences", _SENTENCES, None),
             option("activations", Annotated[Optional[Path], typer.Option(
                 help="A NeuroX hdf5/json activations file (tui-neuron export activations, or another extractor): "
                      "learn from its states and tokens instead of running the model")], None),
             option("text", _TEXT, None)]
    return with_options(group, "states", HypothesisOptions)


@dataclass(frozen=True)
class RunOptions:
    """How a job runs from the CLI: its preset, the layer analysed, where the results go, JSON or a table."""

    preset: str
    out_path: Optional[Path]
    force: bool
    as_json: bool
    layer: Optional[int]

    def load(self, checkpoint: Path):
        """The checkpoint at the asked layer; an --out that exists is refused before any work (unless --force)."""
        if self.out_path is not None:
            _refuse_overwrite(self.out_path, self.force)
        return _load_layer(checkpoint, self.layer)

    def job(self, job_type: type, **fields: Any):
        from ..analysis.jobs import preset

        return preset(job_type, self.preset, **fields)

    def finish(self, results: dict) -> bool:
        """Write --out; print the JSON when asked (True: done, no table to print)."""
        _write_out(self.out_path, results)
        if self.as_json:
            _print_json(results)
        return self.as_json


def job_run():
    """Decorator: the command gets `run: RunOptions` from --preset, --out, --force, --json and --layer (at its end)."""
    group = [option("preset", _PRESET, "full"), option("out_path", _OUT, None), option("force", _FORCE, False),
             option("as_json", _JSON, False), option("layer", _LAYER, None)]
    return with_options(group, "run", RunOptions, after=10**6)
