"""The README stays true: its key table is the bindings', and its decode examples land on the shipped model."""

from __future__ import annotations

import re

import pytest
from conftest import ROOT

from tui_neuron.analysis.decoding import decode_one
from tui_neuron.app.explorer import ExplorerApp
from tui_neuron.app.screens import markdown_key_table

README = (ROOT / "README.md").read_text()


def test_key_table_is_generated_from_the_bindings():
    assert markdown_key_table(ExplorerApp.all_bindings()) in README, "run python scripts/key_table.py"


DECODE_EXAMPLES = re.findall(r'tui-neuron decode \S+ "([^"]+)" --control (\S+@\d+)', README)


def test_readme_has_decode_examples():
    assert DECODE_EXAMPLES


@pytest.mark.parametrize("source,control", DECODE_EXAMPLES)
def test_readme_decode_examples_land(shipped, source, control):
    result = decode_one(shipped, source, [control], [])
    assert all(d["landed"] for d in result.landings()), result.landings()
