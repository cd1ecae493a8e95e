"""Times `analyze functions` then `analyze table` on the shipped checkpoint for 50 tokens x T 1-13
(target: at most 5 minutes on the 2-core machine), against the time to evaluate the same checkpoint
(`tui-neuron eval`, 3000 examples) measured in the same run as a yardstick.

Usage: python scripts/bench_functions.py [CHECKPOINT] [--per-cell 8] [--out functions.json]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).with_name("tui-neuron")


def timed(args: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run([str(BIN), *args], check=True)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("checkpoint", nargs="?", default=str(ROOT / "checkpoints" / "gru-positioning.safetensors"))
    ap.add_argument("--per-cell", default="8")
    ap.add_argument("--out", default=None, help="results JSON (default: a temporary folder, removed after)")
    args = ap.parse_args()
    cache = Path(tempfile.mkdtemp(prefix="tn-bench-"))
    args.out = args.out or str(cache / "functions.json")  # nothing lands in the current folder unasked
    try:
        t_eval = timed(["eval", args.checkpoint, "--json"])
        t_fn = timed(["analyze", "functions", args.checkpoint, "--n-tokens", "50", "--positions", "1-13",
                      "--per-cell", args.per_cell, "--cache", str(cache), "--out", args.out])
        t_table = timed(["analyze", "table", args.checkpoint, "--results", args.out])
        t_again = timed(["analyze", "functions", args.checkpoint, "--n-tokens", "50", "--positions", "1-13",
                         "--per-cell", args.per_cell, "--cache", str(cache), "--out", args.out])
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    total = t_fn + t_table
    print(f"analyze functions {t_fn / 60:.1f} min + analyze table {t_table:.1f} s = {total / 60:.1f} min "
          f"(target <= 5 min); second run with the cached recording {t_again / 60:.1f} min; "
          f"yardstick: eval of 3000 examples {t_eval:.1f} s ({total / t_eval:.0f}x)")


if __name__ == "__main__":
    main()
