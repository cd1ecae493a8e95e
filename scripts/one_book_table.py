"""The README's one-book table from the runs of scripts/one_book_runs.sh.

    python scripts/one_book_table.py runs/one-book

Per book: words, training minutes and steps (from the checkpoint's training record), the held-out positioning
accuracy of `tui-neuron eval` (3,000 examples, seed 4321; saved beside it as BOOK.eval.json) and its smallest
per-T value.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tui_neuron.checkpoint.format import load_checkpoint


def main(folder: Path) -> None:
    print("| book | words | minutes | steps | held-out positioning | lowest T | n |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for ev in sorted(folder.glob("*.eval.json")):
        name = ev.name.removesuffix(".eval.json")
        report = json.loads(ev.read_text())["report"]
        record = load_checkpoint(folder / f"{name}.safetensors").training
        corpus = Path(record["args"]["corpus"][0])
        words = len(corpus.read_text(encoding="utf-8", errors="replace").split()) if corpus.exists() else 0
        per_t = {int(t): v["accuracy"] for t, v in report["per_position"].items()}
        low_t = min(per_t, key=per_t.get)
        print(f"| {name} | {words:,} | {record['seconds'] / 60:.0f} | {record['steps']:,} | "
              f"{report['overall']['accuracy']:.2%} | {per_t[low_t]:.1%} (T={low_t}) | {report['overall']['n']:,} |")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "runs/one-book"))
