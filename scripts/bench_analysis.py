"""Analysis benchmarks, each against a baseline in the same run.

1. State gradients at hidden 256 (the shipped encoder): the batched computation (per-step Jacobians from
   torch.func + batched chain products) vs one backward pass per hidden unit, for the same windows
   (target >= 20x). The per-unit baseline is timed on `--rowwise-steps` end steps of a window and scaled to
   every step of it, since running it whole takes minutes.
2. Probe (plain + balanced + control task) and elastic-net ranking (with the masking table) over the encoder
   states of 5,000 held-out sentences (target: under a minute), beside the time to record those states.

Usage: python scripts/bench_analysis.py [CHECKPOINT] [--tagged ../shared/data/gutenberg_pos]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from tui_neuron.analysis import memory, neurox, probes
from tui_neuron.analysis.corpus_states import sentence_states
from tui_neuron.checkpoint.format import load_checkpoint

ROOT = Path(__file__).resolve().parent.parent


def bench_gradients(ckpt, windows: int, length: int, rowwise_steps: int) -> None:
    cell = memory.Cell.from_module(ckpt.model.encoder)
    emb = ckpt.model.embedding.weight.detach()
    rng = np.random.default_rng(0)
    seqs = [emb[torch.tensor(rng.integers(20, len(emb), size=length))] for _ in range(windows)]
    memory.delay_jacobians(cell, seqs[0], length - 1)  # warm-up
    t0 = time.perf_counter()
    for x in seqs:
        memory.delay_jacobians(cell, x, length - 1)
    batched = (time.perf_counter() - t0) / windows
    t0 = time.perf_counter()
    for t in range(length - rowwise_steps, length):
        memory.rowwise_jacobian(cell, seqs[0], t)
    per_step = (time.perf_counter() - t0) / rowwise_steps
    rowwise = per_step * length
    print(f"state gradients  batched {batched:6.3f} s/window   one backward per unit {rowwise:6.1f} s/window "
          f"(measured {per_step:.2f} s per step x {length} steps)   speed-up {rowwise / batched:.0f}x (target >= 20x)")


def bench_probes(ckpt, tagged, sentences: int) -> None:
    t0 = time.perf_counter()
    states = sentence_states(ckpt, [tagged] if tagged else None, sentences)
    y = probes.encoder_labels(states, "pos" if tagged else "position")
    t_rec = time.perf_counter() - t0
    t0 = time.perf_counter()
    res = probes.probe(states.X, y, states.sentence, states.words)
    t_probe = time.perf_counter() - t0
    t0 = time.perf_counter()
    ranked = neurox.rank(states.X, y, states.sentence, neurox.RankConfig(stability_seeds=1, resamples=0))
    t_rank = time.perf_counter() - t0
    print(f"probe + ranking  {len(states.words)} tokens of {sentences} sentences: recording {t_rec:.1f} s, "
          f"probes {t_probe:.1f} s (accuracy {res['plain']['accuracy']:.3f}), ranking + masking {t_rank:.1f} s "
          f"(elastic-net accuracy {ranked['accuracy']:.3f}); probe + ranking {t_probe + t_rank:.1f} s (target < 60 s)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("checkpoint", nargs="?", default=str(ROOT / "checkpoints" / "gru-positioning.safetensors"))
    ap.add_argument("--tagged", type=Path, default=ROOT.parent / "shared" / "data" / "gutenberg_pos")
    ap.add_argument("--windows", type=int, default=8)
    ap.add_argument("--length", type=int, default=24)
    ap.add_argument("--rowwise-steps", type=int, default=2)
    ap.add_argument("--sentences", type=int, default=5000)
    args = ap.parse_args()
    ckpt = load_checkpoint(args.checkpoint)
    print(f"torch threads {torch.get_num_threads()}, hidden {ckpt.config.hidden}")
    bench_gradients(ckpt, args.windows, args.length, args.rowwise_steps)
    bench_probes(ckpt, args.tagged if args.tagged.exists() else None, args.sentences)


if __name__ == "__main__":
    main()
