"""Data-parallel training under torchrun: two CPU processes (gloo) train one model; it loads, its loss fell,
every rank ended on the same weights, and --resume continues a run started this way."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import write_corpus

from tui_neuron.checkpoint.format import load_checkpoint

BIN = Path(sys.executable).parent
TINY = ["--hidden", "16", "--emb", "8", "--vocab-size", "30", "--max-position", "6", "--max-len", "8", "--min-len",
        "3", "--batch-size", "16", "--eval-every", "10", "--eval-examples", "40", "--threads", "1",
        "--warmup-steps", "5", "--curriculum-steps", "0"]


def _torchrun(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "120"}
    return subprocess.run([str(BIN / "torchrun"), "--standalone", "--nproc-per-node", "2", str(BIN / "tui-neuron"),
                           "train", *args], capture_output=True, text=True, timeout=300, env=env)


@pytest.mark.skipif(not (BIN / "torchrun").exists(), reason="torchrun is not installed beside python")
def test_two_processes_train_one_model(tmp_path):
    corpus = write_corpus(tmp_path / "corpus.txt", lines=800)
    out = tmp_path / "ddp.safetensors"
    r = _torchrun(str(corpus), "--out", str(out), "--steps", "40", *TINY)
    assert r.returncode == 0, r.stderr[-3000:]
    record = load_checkpoint(out).training
    assert record["world_size"] == 2
    digests = record["rank_weight_sha256"]
    assert len(digests) == 2 and digests[0] == digests[1]  # gradients averaged: identical weights on every rank
    losses = [h["heldout_loss"] for h in record["history"]]
    assert losses[-1] < losses[0]
    r = _torchrun(str(corpus), "--out", str(out), "--steps", "60", "--resume", *TINY)
    assert r.returncode == 0, r.stderr[-3000:]
    record = load_checkpoint(out).training
    assert record["steps"] == 60 and record["rank_weight_sha256"][0] == record["rank_weight_sha256"][1]
