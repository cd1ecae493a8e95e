"""The README's Python example runs and prints the numbers the CLI prints."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re

from conftest import ROOT, run_main

import tui_neuron


def readme_example() -> str:
    text = (ROOT / "docs" / "cli.md").read_text()
    m = re.search(r"<!-- api-example -->\n```python\n(.*?)```", text, re.S)
    assert m, "docs/cli.md lost its Python example"
    return m.group(1)


def test_the_api_names_load_lazily_and_all_exist():
    for name in tui_neuron.__all__:
        assert getattr(tui_neuron, name) is not None


def test_readme_python_example_prints_what_the_cli_prints(shipped, capsys):
    from conftest import shipped_corpus_or_skip

    shipped_corpus_or_skip(shipped)  # the probe records states of the checkpoint's held-out text
    code = readme_example()
    out = io.StringIO()
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        with contextlib.redirect_stdout(out):
            exec(compile(code, "README.md", "exec"), {})
    finally:
        os.chdir(cwd)
    lines = out.getvalue().splitlines()
    ckpt = ROOT / "checkpoints" / "gru-positioning.safetensors"
    rc, text, err = run_main("decode", ckpt, "the old man sat by the fire .", "--control", "man@4",
                             "--intervene", "zero:all@T-1", "--json", capsys=capsys)
    assert rc == 0, err
    cli = json.loads(text)
    assert lines[0] == f"{cli['output']} {cli['landings']}"
    assert lines[1] == f"{cli['changed_output']} {cli['changed_landings']}"
    rc, text, err = run_main("analyze", "probe", ckpt, "--hypothesis", "steps-remaining", "--json", capsys=capsys)
    assert rc == 0, err
    assert float(lines[2]) == round(json.loads(text)["plain"]["accuracy"], 4)
