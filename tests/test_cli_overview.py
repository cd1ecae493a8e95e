"""The CLI imports only the named command's modules: the overview that answers `--help` must say what the full
app says, and name every command with the modules that register it."""

from __future__ import annotations

import subprocess
import sys

import typer.main

from tui_neuron.cli import COMMANDS, app, load_commands, overview


def _help(typer_app) -> str:
    group = typer.main.get_command(typer_app)
    with group.make_context("tui-neuron", [], resilient_parsing=True) as ctx:
        return group.get_help(ctx)


def _lines(text: str) -> list[str]:
    """The help's lines, the commands' in name order (the full app lists them in the order their modules were
    first imported in this process)."""
    head, _, commands = text.partition("Commands:")
    return [*head.splitlines(), *sorted(commands.splitlines())]


def test_overview_help_is_the_full_apps_help():
    load_commands()
    assert _lines(_help(overview())) == _lines(_help(app))


def test_every_command_is_listed_with_the_modules_that_register_it():
    load_commands()
    group = typer.main.get_command(app)
    assert set(group.commands) == set(COMMANDS)
    for name, (modules, _) in COMMANDS.items():
        command = group.commands[name]
        callback = command.callback if name not in ("analyze", "export") else None
        if callback is not None:
            assert callback.__module__.rsplit(".", 1)[-1] in modules, name


def test_help_and_version_import_no_command_module():
    code = ("import sys; sys.argv = ['tui-neuron', '--help']\n"
            "from tui_neuron.cli import main\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "loaded = sorted(m for m in sys.modules if m.startswith('tui_neuron.cli.') and m.rsplit('.', 1)[-1] in "
            "{'checkpoints', 'decode', 'export', 'functions', 'legibility', 'match', 'neurox', 'patch', 'serve', "
            "'train'})\n"
            "print('LOADED', loaded, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60).stdout
    assert "LOADED [] False" in out, out
