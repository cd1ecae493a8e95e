"""The shape of the code, as the architecture asks for it: short functions, no dispatch on intervention kinds
outside their module, one grammar row per kind, binding ids written out."""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import ROOT

from tui_neuron.model import interventions
from tui_neuron.model.syntax import GRAMMAR, parse_intervention

PACKAGE = ROOT / "tui_neuron"
KINDS = {name for name, obj in vars(interventions).items()
         if isinstance(obj, type) and issubclass(obj, interventions.Intervention)}


def _sources() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_every_function_is_at_most_60_lines():
    long = []
    for path in _sources():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1  # type: ignore[operator]
                if n > 60:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({n} lines)")
    assert not long, long


def test_nothing_asks_an_intervention_its_kind_outside_its_module():
    """The stepper and the rest never dispatch on the kind: an intervention applies itself."""
    found = []
    for path in _sources():
        if path.name == "interventions.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "isinstance" and len(node.args) == 2:
                names = {n.id for n in ast.walk(node.args[1]) if isinstance(n, ast.Name)}
                if names & KINDS:
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not found, found


def test_every_kind_has_its_grammar_row_and_round_trips():
    built = {type(parse_intervention(op.example)).__name__ for op in GRAMMAR}
    assert built == KINDS - {"Intervention"}
    for op in GRAMMAR:
        assert parse_intervention(op.example).spec() == op.example


def test_bindings_have_ids_written_out_and_unique():
    from tui_neuron.app.explorer import ExplorerApp

    bindings = ExplorerApp.all_bindings()
    ids = [b.id for b in bindings]
    assert all(ids) and len(set(ids)) == len(ids)
    source = "\n".join(p.read_text() for p in (PACKAGE / "app").rglob("*.py"))
    for b in bindings:  # each id stands in the source as written, not derived from the description
        assert b.id.removeprefix("explorer.") in source, b.id


def test_scale_from_the_cli(tiny_gru, capsys):
    import json

    from conftest import run_main

    code, out, _ = run_main("decode", tiny_gru.path, "w1 w2 w3 w4", "-c", "w2@2", "-i", "scale:0-7=-1@1", "--json",
                            capsys=capsys)
    data = json.loads(out)
    assert code == 0 and data["interventions"] == ["scale:0-7=-1@1"]
    clean = {s["t"]: s["h"] for s in data["steps"]}
    changed = {s["t"]: s["h"] for s in data["changed_steps"]}
    assert changed[1][:8] == [-v for v in clean[1][:8]] and changed[0] == clean[0]


def test_an_intervention_checks_the_hook_points_the_wiring_forms():
    """The check that a model forms an attention or a context lives in the intervention, so the explorer's prompt
    refuses `attend:` on a plain model before any run, with the stepper's own message."""
    import pytest

    from tui_neuron.errors import UserError
    from tui_neuron.model.config import Architecture

    plain, context_fed = Architecture(), Architecture(rnn_input=("embedding", "context"))
    attentive = Architecture(attention="additive", rnn_input=("embedding", "context"))
    for text, arch, message in [("attend:0@1", plain, "forms no attention"),
                                ("zero.context:all@1", plain, "forms no context"),
                                ("attend:0@1", context_fed, "has no attention")]:
        with pytest.raises(UserError, match=message):
            parse_intervention(text).check("gru", 16, 1, arch)
    parse_intervention("attend:0@1").check("gru", 16, 1, attentive)
    parse_intervention("zero.context:all@1").check("gru", 16, 1, context_fed)
