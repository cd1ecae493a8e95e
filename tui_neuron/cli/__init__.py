"""The headless face: typer subcommands over the same core jobs the explorer uses.

Each module registers its subcommands on the shared typer apps in `common`; `main()` imports only the
modules of the command a run names (none for `--help` and `--version`, which an overview of one line per
command answers), and turns every failure a user can fix into one `error:` line and exit 2.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

import typer

from ..errors import ParameterError, UserError
from .common import ANALYZE_HELP, EXPORT_HELP, _root, app, err, out

__all__ = ["COMMANDS", "app", "load_commands", "main", "overview"]

# each top-level command: the modules that register it, and the first line of its help (the overview's line;
# tests/test_architecture.py checks both against the modules)
COMMANDS: dict[str, tuple[tuple[str, ...], str]] = {
    "info": (("checkpoints",), "Config, parameter count, vocabulary size and training record of a checkpoint."),
    "import": (("checkpoints",), "Import a torch GRU/LSTM encoder-decoder trained elsewhere: known layouts are "
                                 "recognised."),
    "upgrade": (("checkpoints",), "Rewrite a checkpoint in the current format (tui-neuron/2), with a digest of its "
                                  "weights."),
    "eval": (("checkpoints",), "Held-out positioning accuracy (TOKEN exactly at T under greedy decoding): overall, "
                               "per T, per signal count."),
    "decode": (("decode",), "Greedy-decode one source with control signals, optionally with interventions."),
    "open": (("decode",), "Open the explorer."),
    "serve": (("serve",), "Serve the explorer in a web browser: open http://HOST:PORT."),
    "train": (("train",), "Train a token-positioning Seq2Seq; the best checkpoint is kept, Ctrl-C is safe, --resume "
                          "continues."),
    "analyze": (("functions", "legibility", "match", "neurox", "patch"), ANALYZE_HELP),
    "export": (("export",), EXPORT_HELP),
}


def load_commands(names: Sequence[str] = tuple(COMMANDS)) -> None:
    """Register the commands `names` (importing their modules); the rest stay unimported."""
    for name in names:
        for module in COMMANDS[name][0]:
            importlib.import_module(f"{__name__}.{module}")


def overview() -> typer.Typer:
    """The top-level app with one placeholder per command: what `--help`, `--version`, no command and an unknown
    command need, without importing any command's module."""
    shown = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                        rich_markup_mode=None, help=app.info.help)
    shown.callback()(_root)
    for name, (_, summary) in COMMANDS.items():
        if summary in (ANALYZE_HELP, EXPORT_HELP):
            shown.add_typer(typer.Typer(help=summary), name=name)
        else:
            shown.command(name, help=summary)(_placeholder)
    return shown


def _placeholder() -> None:
    """Never runs: a named command is run by the real app."""


def _named_command(args: Sequence[str]) -> str | None:
    """The command a command line names: its first word that is not an option."""
    return next((a for a in args if not a.startswith("-")), None)


# the core's parameter names whose flag is not the name with dashes
PARAM_FLAGS = {"emb_dim": "--emb", "n_signals": "--signals", "max_steps": "--steps", "time_budget": "--minutes"}


def flag_for(param: str) -> str:
    """The CLI's flag for a core parameter (a ParameterError names the parameter; the CLI says its flag)."""
    return PARAM_FLAGS.get(param, "--" + param.replace("_", "-"))


def main() -> None:
    """Every failure a user can fix is one `error:` line and exit 2: UserErrors and click's usage errors alike."""
    from typer._click import exceptions as click_errors  # typer vendors click; its errors live here

    name = _named_command(sys.argv[1:])
    if name in COMMANDS:
        load_commands([name])
    try:
        code = (app if name in COMMANDS else overview())(standalone_mode=False)
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
        message = e.named(flag_for) if isinstance(e, ParameterError) else str(e)
        err.print(f"error: {message}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)
    if isinstance(code, int) and code:
        sys.exit(code)
