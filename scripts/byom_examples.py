"""Build each layout of docs/bring-your-own-model.md with its codebase's own module code (tests/byom_reference.py,
random weights), save it the way that codebase saves, import it with no --rename and print what `tui-neuron
import` says: the texts the guide quotes.

Usage: python scripts/byom_examples.py
"""

from __future__ import annotations

import contextlib
import io
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
import test_byom_layouts as shapes  # noqa: E402
from conftest import run_main  # noqa: E402


def main() -> None:
    for name, build in shapes.SHAPES.items():
        with tempfile.TemporaryDirectory() as folder:
            args, _ = build(Path(folder))
            shown = [a.name if isinstance(a, Path) else a for a in args]
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                code = run_main("import", *args, "--out", Path(folder) / f"{name}.safetensors")[0]
            print(f"## {name} (exit {code})\n$ tui-neuron import {' '.join(shown)} --out {name}.safetensors")
            print(out.getvalue().replace(folder + "/", ""))


if __name__ == "__main__":
    main()
