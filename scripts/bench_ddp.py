"""Data-parallel throughput: the same training command as 1 process and as 2 processes under torchrun (gloo).

Prints examples/s for each, from the checkpoints' own training records (loop time only, no start-up), and the
ratio. On a 2-core machine the two processes share the cores, so the ratio is honest rather than flattering.

    python scripts/bench_ddp.py CORPUS [--steps 400] [--threads-per-process 1]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from tui_neuron.checkpoint.format import load_checkpoint

BIN = Path(sys.executable).parent


def run(corpus: str, out: Path, steps: int, threads: int, nproc: int) -> float:
    cmd = [str(BIN / "tui-neuron"), "train", corpus, "--out", str(out), "--steps", str(steps), "--threads", str(threads),
           "--eval-every", str(steps), "--eval-examples", "200", "--force"]
    if nproc > 1:
        cmd = [str(BIN / "torchrun"), "--standalone", "--nproc-per-node", str(nproc), *cmd]
    subprocess.run(cmd, check=True, capture_output=True, env={**os.environ, "OMP_NUM_THREADS": str(threads)})
    record = load_checkpoint(out).training
    batch = record["args"]["batch_size"]
    return record["steps"] * batch * nproc / record["seconds"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("corpus")
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--threads-per-process", type=int, default=1)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        one = run(args.corpus, Path(tmp) / "one.safetensors", args.steps, args.threads_per_process, 1)
        two = run(args.corpus, Path(tmp) / "two.safetensors", args.steps, args.threads_per_process, 2)
    print(f"1 process : {one:8.0f} examples/s")
    print(f"2 processes: {two:8.0f} examples/s  (torchrun, gloo, {args.threads_per_process} thread(s) each)")
    print(f"ratio 2/1  : {two / one:.2f}")


if __name__ == "__main__":
    main()
