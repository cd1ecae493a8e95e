"""The README and docs stay true: the key table is the bindings', the intervention table the grammar's, every
link resolves, and the decode examples land on the shipped model."""

from __future__ import annotations

import re

import pytest
from conftest import ROOT

from tui_neuron.analysis.decoding import decode_one
from tui_neuron.app.explorer import ExplorerApp
from tui_neuron.app.screens import markdown_key_table

README = (ROOT / "README.md").read_text()
DOCS = {p: p.read_text() for p in [ROOT / "README.md", ROOT / "ARCHITECTURE.md", *sorted((ROOT / "docs").glob("*.md"))]}
ALL_DOCS = "\n".join(DOCS.values())


def test_key_table_is_generated_from_the_bindings():
    assert markdown_key_table(ExplorerApp.all_bindings()) in DOCS[ROOT / "docs" / "explorer.md"], \
        "run python scripts/key_table.py"


def test_intervention_table_is_generated_from_the_grammar():
    from tui_neuron.model.syntax import markdown_table

    assert markdown_table() in DOCS[ROOT / "docs" / "cli.md"], "run python scripts/syntax_table.py"


def test_readme_is_short_and_opens_with_the_two_commands():
    assert len(README.splitlines()) < 250
    commands = re.search(r"```bash\n(.*?)```", README, re.S).group(1)
    assert [line for line in commands.splitlines() if line and not line.startswith("#")] == [
        "python3 -m venv .venv && .venv/bin/pip install torch==2.13.0 && .venv/bin/pip install -e . && "
        ".venv/bin/tui-neuron open", "bash scripts/test.sh"]


def _anchors(text: str) -> set[str]:
    """GitHub's anchors for a page's headings."""
    out = set()
    for head in re.findall(r"^#+ (.+)$", text, re.M):
        out.add(re.sub(r"[^\w\- ]", "", head.strip().lower()).replace(" ", "-"))
    return out


@pytest.mark.parametrize("page", list(DOCS), ids=lambda p: p.name)
def test_every_link_resolves(page):
    text = re.sub(r"```.*?```", "", DOCS[page], flags=re.S)
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if target.startswith(("http://", "https://")):
            continue
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        assert file.exists(), f"{page.name}: {target} does not exist"
        if anchor and file.suffix == ".md":
            assert anchor in _anchors(file.read_text()), f"{page.name}: no heading for #{anchor} in {file.name}"


DECODE_EXAMPLES = re.findall(r'tui-neuron decode \S+ "([^"]+)" --control (\S+@\d+)', ALL_DOCS)


def test_readme_has_decode_examples():
    assert DECODE_EXAMPLES


@pytest.mark.parametrize("source,control", DECODE_EXAMPLES)
def test_readme_decode_examples_land(shipped, source, control):
    result = decode_one(shipped, source, [control], [])
    assert all(d["landed"] for d in result.landings()), result.landings()


def test_recipe_study_rows_are_the_kept_results():
    """Each study row in docs/recipe-study.md is what scripts/recipe_table.py prints from the kept results, so a
    rerun (or a hand edit) cannot drift from the files the figures came from."""
    import subprocess
    import sys

    printed = subprocess.run([sys.executable, str(ROOT / "scripts" / "recipe_table.py"),
                              str(ROOT / "docs" / "results" / "recipe-study")], capture_output=True, text=True,
                             check=True).stdout.splitlines()[2:]
    assert printed, "no study results kept in docs/results/recipe-study"
    page = DOCS[ROOT / "docs" / "recipe-study.md"].splitlines()
    missing = [row.split("|")[1:3] for row in printed if row not in page]
    assert not missing, f"rows differ from the kept results (run python scripts/recipe_table.py): {missing}"
