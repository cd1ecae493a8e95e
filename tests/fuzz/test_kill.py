"""Kill a real training process at seeded random moments (SIGKILL ×5, SIGINT ×5): what it left loads, and the
resumed run ends bit-identical to an uninterrupted one."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file

from tui_neuron.checkpoint.format import load_checkpoint
from tui_neuron.training.resume import read_resume
from tui_neuron.training.trainer import resume_path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from conftest import write_corpus  # noqa: E402

TINY = ["--hidden", "16", "--emb", "8", "--vocab-size", "30", "--max-position", "6", "--max-len", "8", "--min-len",
        "3", "--batch-size", "16", "--eval-every", "25", "--eval-examples", "40", "--steps", "250", "--threads", "1",
        "--warmup-steps", "20", "--curriculum-steps", "0"]


def _train(corpus: Path, out: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "COLUMNS": "120", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "tui_neuron.cli", "train", str(corpus), "--out", str(out), *TINY,
                             *extra], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)


def _finish(corpus: Path, out: Path) -> None:
    """Resume what the killed run left (or start afresh if it died before saving anything) until done."""
    extra = ["--resume"] if resume_path(out).exists() else ["--force"]
    proc = _train(corpus, out, *extra)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err.decode()[-2000:]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("kill")
    corpus = write_corpus(tmp / "corpus.txt", lines=600)
    out = tmp / "reference.safetensors"
    proc = _train(corpus, out)
    start = time.monotonic()
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err.decode()[-2000:]
    return corpus, load_file(resume_path(out)), time.monotonic() - start


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["SIGKILL", "SIGINT"])
def test_kill_and_resume_is_bit_exact(reference, tmp_path, sig):
    corpus, expected, duration = reference
    rng = random.Random(int(sig) * 1000 + 7)
    for i in range(5):
        out = tmp_path / f"run{i}.safetensors"
        proc = _train(corpus, out)
        time.sleep(rng.uniform(0.3, max(duration * 0.95, 0.6)))
        proc.send_signal(sig)
        proc.communicate(timeout=120)
        if out.exists():
            load_checkpoint(out)
        if resume_path(out).exists():
            read_resume(resume_path(out))
        _finish(corpus, out)
        got = load_file(resume_path(out))
        assert got.keys() == expected.keys()
        for key in expected:
            assert (got[key] == expected[key]).all(), f"{sig.name} case {i}: {key} differs after resume"
        assert not list(tmp_path.glob("*.tmp"))
