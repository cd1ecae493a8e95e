"""Training on a shared machine: steps per minute for --threads 1, 2 and the default, alone and beside one busy
process (a single-core busy loop, as another user's job would be), each a fresh `tui-neuron train` of the same
fixed step budget on one book.

Torch's OpenMP threads spin while they wait for a core; beside other work a thread per core starves. The
default now takes the cores the load average leaves free and lets idle threads sleep (OMP_WAIT_POLICY=PASSIVE).

Usage: python scripts/bench_threads.py [CORPUS] [--steps 300]   (run it on an otherwise quiet machine)
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent / "tui-neuron"


def one_run(corpus: str, steps: int, threads: int | None, out: Path) -> tuple[float, str]:
    cmd = [str(BIN), "train", corpus, "--out", str(out), "--steps", str(steps), "--eval-every", str(steps),
           "--eval-examples", "200", "--force", "--recipe", "paper"]
    if threads is not None:
        cmd += ["--threads", str(threads)]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"})
    took = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(proc.stderr[-500:])
    used = re.search(r"(\d+) thread\(s\)", proc.stderr)
    return steps / took * 60, used.group(1) if used else "?"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("corpus", nargs="?", default=str(ROOT.parent / "shared/data/gutenberg/austen-sense.txt"))
    ap.add_argument("--steps", type=int, default=300)
    args = ap.parse_args()
    print(f"{os.cpu_count()} cores; load average before: {os.getloadavg()[0]:.2f}")
    print("| threads | alone: steps/min | beside one busy process: steps/min | ratio |")
    print("|---|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "bench.safetensors"
        for threads in (1, 2, None):
            alone, used = one_run(args.corpus, args.steps, threads, out)
            busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
            try:
                time.sleep(65)  # the load average sees the busy process (its 1-minute window)
                beside, used_beside = one_run(args.corpus, args.steps, threads, out)
            finally:
                busy.kill()
                busy.wait()
            name = f"default ({used} alone, {used_beside} beside)" if threads is None else str(threads)
            print(f"| {name} | {alone:.0f} | {beside:.0f} | {beside / alone:.2f} |", flush=True)
            time.sleep(30)  # let the load average fall back


if __name__ == "__main__":
    main()
