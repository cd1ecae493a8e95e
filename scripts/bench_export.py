"""Export at scale: the decoder states (h and every gate) of a share of the shared corpus, streamed to NeuroX hdf5.

Prints tokens/s as a ratio to a bare nn.GRU teacher-forced forward over as many tokens (target >= 0.5x), and the
export's peak RSS (target <= 1.5 GB whatever the corpus size), for each share asked (default 10% and 100%).

Usage: python scripts/bench_export.py [CHECKPOINT] [--shares 0.1,1.0] [--data ../shared/data]
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

import torch
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent / "tui-neuron"


def corpus_lines(files: list[Path]) -> int:
    return sum(1 for f in files for line in f.open(encoding="utf-8") if line.strip())


def bare_tokens_per_s(tokens: int, emb: int, hidden: int, vocab: int, length: int = 16, batch: int = 256) -> float:
    """A bare nn.GRU with its embedding and output layer, teacher-forced, over `tokens` tokens (capped at 2M)."""
    torch.manual_seed(0)
    embed, gru, out = nn.Embedding(vocab, emb), nn.GRU(emb, hidden, batch_first=True), nn.Linear(hidden, vocab)
    n = min(tokens, 2_000_000)
    start = time.perf_counter()
    with torch.no_grad():
        for _ in range(max(1, n // (batch * length))):
            ids = torch.randint(0, vocab, (batch, length))
            h, _ = gru(embed(ids))
            out(h).argmax(-1)
    return max(1, n // (batch * length)) * batch * length / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("checkpoint", nargs="?", default=str(ROOT / "checkpoints" / "gru-positioning.safetensors"))
    ap.add_argument("--shares", default="0.1,1.0")
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    args = ap.parse_args()
    data = Path(args.data)
    files = [data / "tinyshakespeare.txt", *sorted((data / "gutenberg").glob("*.txt"))]
    total = corpus_lines(files)
    from tui_neuron.checkpoint.format import load_checkpoint

    cfg = load_checkpoint(args.checkpoint).config
    print(f"{total:,} corpus lines; load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    print("| share | sentences | tokens | seconds | tokens/s | bare nn.GRU tokens/s | ratio | peak RSS |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for share in (float(x) for x in args.shares.split(",")):
        limit = max(1, int(total * share))
        with tempfile.TemporaryDirectory() as tmp:
            cmd = ["/usr/bin/time", "-f", "RSS %M", str(BIN), "export", "activations", args.checkpoint,
                   *map(str, files), "--out", f"{tmp}/a.hdf5", "--part", "decoder", "--states",
                   ",".join(("h", *cfg.gate_names)), "--limit", str(limit)]
            start = time.perf_counter()
            proc = subprocess.run(cmd, capture_output=True, text=True)
            took = time.perf_counter() - start
        if proc.returncode != 0:
            raise SystemExit(proc.stderr[-600:])
        sentences, tokens = map(int, re.search(r"(\d+) sentences, (\d+) tokens", proc.stdout).groups())
        rss = int(re.search(r"RSS (\d+)", proc.stderr).group(1)) / 1024
        bare = bare_tokens_per_s(tokens, cfg.emb_dim, cfg.hidden, cfg.vocab_size)
        rate = tokens / took
        print(f"| {share:.0%} | {sentences:,} | {tokens:,} | {took:.0f} | {rate:,.0f} | {bare:,.0f} | "
              f"{rate / bare:.2f} | {rss:,.0f} MB |", flush=True)


if __name__ == "__main__":
    main()
