"""How quickly the CLI answers `--help` (and `--version`, and an argument error), as a ratio to a bare Python that
imports what the help is made with (typer, rich), in the same run.

Each side runs N times, interleaved, each a fresh process; the ratio is of the fastest runs (other processes
only add time, in bursts on a shared machine), with the ratio of the medians beside it. Target: <= 1.5x.

Usage: python scripts/bench_help.py [--runs 15]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

BIN = Path(sys.executable).parent / "tui-neuron"


def timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False,
                   env={**os.environ, "PYTHONDONTWRITEBYTECODE": ""})  # bytecode kept, as on a user's machine
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=15)
    args = ap.parse_args()
    sides = {"tui-neuron --help": [str(BIN), "--help"], "tui-neuron --version": [str(BIN), "--version"],
             "tui-neuron eval --bogus": [str(BIN), "eval", "--bogus"],
             "python -c 'import typer, rich'": [sys.executable, "-c", "import typer, rich"]}
    for cmd in sides.values():  # one warm-up run each (bytecode, file cache)
        timed(cmd)
    times: dict[str, list[float]] = {k: [] for k in sides}
    for _ in range(args.runs):
        for name, cmd in sides.items():
            times[name].append(timed(cmd))
    base = times["python -c 'import typer, rich'"]
    print(f"baseline python -c 'import typer, rich': fastest {min(base):.3f} s, median {statistics.median(base):.3f} s")
    for name in list(sides)[:3]:
        t = times[name]
        print(f"{name:28s} fastest {min(t):.3f} s, median {statistics.median(t):.3f} s   ratio {min(t) / min(base):.2f}x "
              f"(medians {statistics.median(t) / statistics.median(base):.2f}x; target <= 1.5x)")


if __name__ == "__main__":
    main()
