"""Activation-patching speed, each figure a ratio to one plain greedy decode of the same pair, timed in the same run.

1. A full single-neuron sweep of h for one pair (every neuron × every decoder step up to T, and the encoder
   steps too), exact (target ≤ 5 s on 2 cores).
2. 100 position pairs at blocks of 16 neurons, exact and attribution (target ≤ 60 s).
3. Attribution patching against exact patching for the same cells (target ≥ 50× quicker).

Pairs come from the checkpoint's held-out block when its corpus is here, else from its vocabulary's most common
words (the speed does not depend on which words). Times are the fastest of `--rounds` rounds (other processes
only add time); the machine's load is printed with them.

Usage: python scripts/bench_patch.py [CHECKPOINT] [--pairs 100] [--rounds 2]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from tui_neuron.analysis.patch_pairs import Pair, generate_pairs
from tui_neuron.analysis.patching import PatchConfig, run_patching
from tui_neuron.checkpoint.format import load_checkpoint
from tui_neuron.errors import UserError
from tui_neuron.model.examples import example_from_text
from tui_neuron.model.stepper import Stepper

ROOT = Path(__file__).resolve().parent.parent
ONE = Pair("the king came to the castle and the lady said king@4", "the king came to the castle and the lady said king@5")


def fastest(fn, rounds: int) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(rounds):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def position_pairs(ckpt, n: int) -> list[Pair]:
    from tui_neuron.training.evaluate import heldout_examples

    try:
        _, held = heldout_examples(ckpt, n=4 * n, seed=11)
        return generate_pairs(ckpt, "position", held, n, seed=0)
    except UserError:
        words = ckpt.vocab.words[:40]
        return [Pair(" ".join(words[i % 30 : i % 30 + 8]) + f" {words[i % 30]}@{1 + i % 10}",
                     " ".join(words[i % 30 : i % 30 + 8]) + f" {words[i % 30]}@{2 + i % 10}") for i in range(n)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("checkpoint", nargs="?", default=str(ROOT / "checkpoints" / "gru-positioning.safetensors"))
    ap.add_argument("--pairs", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    ckpt = load_checkpoint(args.checkpoint)
    stepper = Stepper(ckpt.model, ckpt.vocab)
    example = example_from_text(ckpt.vocab, ONE.corrupt)
    decode_s, _ = fastest(lambda: stepper.run([example]), 5)
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; torch threads "
          f"{__import__('torch').get_num_threads()}")
    print(f"baseline: one greedy decode of the pair {decode_s * 1000:.1f} ms")

    single, res = fastest(lambda: run_patching(ckpt, [ONE], PatchConfig(block=1)), args.rounds)
    cells = len(res["steps"]) * len(res["blocks"])
    exact1, attr1 = res["seconds"]["exact"], res["seconds"]["attribution"]
    print(f"1. single-neuron sweep of h, one pair ({cells} cells): exact {exact1:.2f} s = {exact1 / decode_s:.0f}x a "
          f"decode (target <= 5 s); attribution {attr1:.3f} s, {exact1 / attr1:.0f}x quicker (target >= 50x)")

    pairs = position_pairs(ckpt, args.pairs)
    many, res = fastest(lambda: run_patching(ckpt, pairs, PatchConfig(block=16)), 1)
    print(f"2. {len(pairs)} pairs at blocks of 16 ({res['n_pairs']} traced): {many:.1f} s = "
          f"{many / decode_s:.0f}x a decode (target <= 60 s); Spearman attribution vs exact "
          f"{res['rank_correlation']['spearman']:.3f}")

    exact = res["seconds"]["exact"]
    attr = res["seconds"]["attribution"]
    print(f"3. at blocks of 16, 100 pairs: attribution {attr:.2f} s vs exact {exact:.2f} s for the same cells: "
          f"{exact / attr:.0f}x quicker (target >= 50x)")


if __name__ == "__main__":
    main()
