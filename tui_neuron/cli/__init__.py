"""The headless face: typer subcommands over the same core jobs the explorer uses.

Each module registers its subcommands on the shared typer apps in `common`; `main()` turns every
failure a user can fix into one `error:` line and exit 2.
"""

from __future__ import annotations

import sys

import typer

from ..errors import ParameterError, UserError
from . import checkpoints, decode, export, functions, legibility, match, neurox, patch, serve, train  # noqa: F401 - registers the subcommands
from .common import app, err, out

__all__ = ["app", "main"]


# the core's parameter names whose flag is not the name with dashes
PARAM_FLAGS = {"emb_dim": "--emb", "n_signals": "--signals", "max_steps": "--steps", "time_budget": "--minutes"}


def flag_for(param: str) -> str:
    """The CLI's flag for a core parameter (a ParameterError names the parameter; the CLI says its flag)."""
    return PARAM_FLAGS.get(param, "--" + param.replace("_", "-"))


def main() -> None:
    """Every failure a user can fix is one `error:` line and exit 2: UserErrors and click's usage errors alike."""
    from typer._click import exceptions as click_errors  # typer vendors click; its errors live here

    try:
        code = app(standalone_mode=False)
    except click_errors.NoArgsIsHelpError as e:
        out.print(e.ctx.get_help() if e.ctx else str(e))
        sys.exit(0)
    except click_errors.UsageError as e:
        where = f" (see {e.ctx.command_path} --help)" if e.ctx else ""
        err.print(f"error: {e.format_message()}{where}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(2)
    except click_errors.ClickException as e:
        err.print(f"error: {e.format_message()}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(2)
    except typer.Abort:
        sys.exit(130)
    except UserError as e:
        message = e.named(flag_for(e.param)) if isinstance(e, ParameterError) else str(e)
        err.print(f"error: {message}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)
    if isinstance(code, int) and code:
        sys.exit(code)
