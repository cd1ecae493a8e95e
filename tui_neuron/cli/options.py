"""Options that several commands share, declared once and added to each command's signature.

typer reads a command's options from its signature; `with_options` adds a group of them to a command
and hands the command one value object built from them, so a group's names, help and defaults live in
one place (the positioning examples of functions/curves/storing, the training recipe of `train`).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence
from typing import Annotated, Any

import typer

from .common import _CACHE, _CORPUS, _N_TOKENS, _PER_CELL, _POSITIONS, _TOKENS, ExampleOptions


def option(name: str, annotation: Any, default: Any) -> inspect.Parameter:
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

        params = own[:after] + [p.replace(kind=inspect.Parameter.POSITIONAL_OR_KEYWORD) for p in group] + own[after:]
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
            option("seed", Annotated[int, typer.Option(help=seed_help)], 0)]


def positioning_examples(**defaults):
    """Decorator: the command gets `examples: ExampleOptions` from --tokens … --seed."""
    return with_options(example_options(**defaults), "examples", ExampleOptions)
