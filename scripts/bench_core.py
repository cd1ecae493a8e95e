"""Core benchmarks, each against a baseline in the same run, printed as ratios.

1. Training: tokens/s of the project's training step (Trainer.train_step) vs a bare
   nn.GRU teacher-forced loop on the same batches (target ratio >= 1.0).
2. Recording: all h and gates for N held-out examples with the stepper's batch mode vs
   nn.GRU forward for hidden states only, on the same inputs (target <= 1.3x), and vs a greedy decode with
   torch's own modules from the same examples, batching included (target <= 1.1x).

Each ratio is of the fastest round of each side (interleaved rounds; as timeit reports its minimum: other
processes only add time, and on this shared 2-core machine they add a lot, in bursts), with the ratio of the
medians printed beside it.

Usage: python scripts/bench_core.py [CHECKPOINT] [--examples 2000] [--steps 30]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

from tui_neuron.checkpoint.format import load_checkpoint
from tui_neuron.model.stepper import Stepper
from tui_neuron.training.config import MODEL_OPTIONS
from tui_neuron.training.corpus import collate
from tui_neuron.training.evaluate import heldout_examples
from tui_neuron.training.trainer import TrainConfig, Trainer, TrainingData

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the torch-only greedy decode the stepper tests check against
from torch_reference import torch_greedy  # noqa: E402


def bench_training(ckpt, examples, steps: int) -> None:
    cfg = ckpt.config
    batches = [collate(examples[i : i + 128], ckpt.vocab) for i in range(0, 128 * steps, 128)]
    tokens = sum(b.n_target_tokens + int(b.src_len.sum()) for b in batches)

    shape = {k: getattr(cfg, k) for k in MODEL_OPTIONS}
    recipe = TrainConfig.from_options(corpus=(), out="", max_steps=1, **shape)  # the default recipe, this model
    trainer = Trainer(recipe, TrainingData(ckpt.vocab, None, []))  # only steps are taken, on the batches below
    trainer.model.train()

    class Bare(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(cfg.vocab_size, cfg.emb_dim)
            self.enc = nn.GRU(cfg.emb_dim, cfg.hidden, batch_first=True)
            self.dec = nn.GRU(cfg.emb_dim, cfg.hidden, batch_first=True)
            self.out = nn.Linear(cfg.hidden, cfg.vocab_size)

        def forward(self, b):
            drop = nn.functional.dropout  # the same recipe: dropout, control-weighted cross-entropy, clipping, AdamW
            _, h = self.enc(drop(self.emb(b.src), recipe.dropout))  # no packing: the simplest possible loop
            y, _ = self.dec(drop(self.emb(b.tgt_in), recipe.dropout), h)
            ce = nn.functional.cross_entropy(self.out(drop(y, recipe.dropout)).flatten(0, 1), b.tgt_out.flatten(),
                                             ignore_index=0, reduction="none")
            w = (b.tgt_out.flatten() != 0).float()
            w = torch.where(b.control_mask.flatten(), w * recipe.control_weight, w)
            return (ce * w).sum() / w.sum()

    torch.manual_seed(0)
    bare = Bare()
    bare_opt = torch.optim.AdamW(bare.parameters(), lr=2e-3, weight_decay=recipe.weight_decay)

    def bare_step(b):
        loss = bare(b)
        bare_opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(bare.parameters(), recipe.grad_clip)  # the recipe clips too
        bare_opt.step()

    def timed(fn) -> float:
        fn(batches[0])  # warm-up
        t0 = time.perf_counter()
        for b in batches:
            fn(b)
        return tokens / (time.perf_counter() - t0)

    rates_ours, rates_bare = [], []
    for _ in range(3):  # interleaved rounds, so machine load hits both alike
        rates_ours.append(timed(trainer.train_step))
        rates_bare.append(timed(bare_step))
    ours, base = max(rates_ours), max(rates_bare)
    median = statistics.median(rates_ours) / statistics.median(rates_bare)
    print(f"training   ours {ours:9.0f} tok/s   bare nn.GRU loop {base:9.0f} tok/s   ratio {ours / base:.2f} "
          f"(fastest rounds; medians {median:.2f}; target >= 1.0)")


def bench_recording(ckpt, examples) -> None:
    stepper = Stepper(ckpt.model, ckpt.vocab)
    model = ckpt.model

    def ours():
        return stepper.run_batched(examples, batch_size=1000, record_gates=True, topk=0)

    traces = ours()
    # the baseline gets the same encoder inputs and the decoder inputs the greedy decode produced
    inputs = []
    for tr, start in zip(traces, range(0, len(examples), 1000)):
        chunk = examples[start : start + 1000]
        b = collate(chunk, ckpt.vocab)
        inputs.append((b.src, tr.tokens[:, tr.n_enc :]))

    @torch.no_grad()
    def baseline():
        for src, dec_in in inputs:
            enc_out, h = model.encoder(model.embedding(src))
            model.decoder(model.embedding(dec_in), h)

    max_steps = max(tr.n_dec for tr in traces)

    def greedy_baseline():  # from the same Example lists: its batching (collate) is timed, as the stepper's is
        for i in range(0, len(examples), 1000):
            b = collate(examples[i : i + 1000], ckpt.vocab)
            torch_greedy(model, b.src, b.src_len, max_steps, ckpt.vocab.bos_id)

    t_ours, t_base, t_greedy = [], [], []
    for _ in range(7):  # interleaved rounds, so machine load hits all alike
        for fn, acc in ((ours, t_ours), (baseline, t_base), (greedy_baseline, t_greedy)):
            t0 = time.perf_counter()
            fn()
            acc.append(time.perf_counter() - t0)
    a, b, g = min(t_ours), min(t_base), min(t_greedy)
    med = statistics.median
    print(f"recording  stepper (h + gates + greedy decode) {a:6.2f} s for {len(examples)} examples (fastest of 7 rounds)")
    print(f"           vs nn.GRU forward, h only (no output layer)  {b:6.2f} s   ratio {a / b:.2f}x "
          f"(medians {med(t_ours) / med(t_base):.2f}x; target <= 1.3x)")
    print(f"           vs greedy decode with torch modules (h only) {g:6.2f} s   ratio {a / g:.2f}x "
          f"(medians {med(t_ours) / med(t_greedy):.2f}x; target <= 1.1x)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("checkpoint", nargs="?", default=str(ROOT / "checkpoints" / "gru-positioning.safetensors"))
    ap.add_argument("--examples", type=int, default=2000)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    ckpt = load_checkpoint(args.checkpoint)
    _, examples = heldout_examples(ckpt, n=max(args.examples, 128 * args.steps), seed=99)
    print(f"torch threads {torch.get_num_threads()}, checkpoint {args.checkpoint}")
    bench_training(ckpt, examples, args.steps)
    bench_recording(ckpt, examples[: args.examples])


if __name__ == "__main__":
    main()
