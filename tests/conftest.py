"""Shared fixtures: a synthetic corpus and a tiny model that learns token positioning in seconds."""

from __future__ import annotations

import os
import random
import tempfile
from pathlib import Path

import pytest
import torch

from tui_neuron.checkpoint.format import load_checkpoint
from tui_neuron.training.trainer import TrainConfig, TrainingData, train

torch.set_num_threads(1)
# what the tool writes without a path (results, sessions, recordings) goes to a throwaway folder, never $HOME
_HOME = tempfile.mkdtemp(prefix="tui-neuron-tests-")
os.environ.setdefault("TUI_NEURON_HOME", os.path.join(_HOME, "data"))
os.environ.setdefault("TUI_NEURON_CACHE", os.path.join(_HOME, "cache"))
ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "checkpoints" / "gru-positioning.safetensors"


def write_corpus(path: Path, lines: int = 3000, words: int = 24, seed: int = 0) -> Path:
    rng = random.Random(seed)
    vocab = [f"w{i}" for i in range(words)]
    path.write_text("\n".join(" ".join(rng.choice(vocab) for _ in range(rng.randint(5, 10))) for _ in range(lines)))
    return path


def tiny_config(corpus: Path, out: Path, **kw) -> TrainConfig:
    """The tiny fixtures' recipe: the plain one (no regularisation), so analyses see the same mechanism each run."""
    base = dict(corpus=(str(corpus),), out=str(out), emb_dim=32, hidden=64, vocab_words=30, max_position=6,
                min_len=3, max_len=8, batch_size=64, lr=5e-3, max_steps=500, eval_every=250, eval_examples=300,
                curriculum_steps=0, schedule="plateau", dropout=0.0, word_dropout=0.0, weight_decay=0.0,
                control_weight=1.0)
    base.update(kw)
    return TrainConfig.from_options(**base)


def with_data(cfg: TrainConfig) -> tuple[TrainConfig, TrainingData]:
    """A config and the data it trains on: what `Trainer` takes."""
    return cfg, TrainingData.load(cfg)


@pytest.fixture(scope="session")
def corpus_path(tmp_path_factory) -> Path:
    return write_corpus(tmp_path_factory.mktemp("corpus") / "synthetic.txt")


def _train(tmp_path_factory, corpus_path, name, **kw):
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp(name) / f"{name}.safetensors"
    train(tiny_config(corpus_path, out, **kw))
    return load_checkpoint(out)


@pytest.fixture(scope="session")
def tiny_gru(tmp_path_factory, corpus_path):
    """A GRU that positions tokens (held-out accuracy is asserted in test_training)."""
    return _train(tmp_path_factory, corpus_path, "gru", cell="gru")


@pytest.fixture(scope="session")
def tiny_gru_seed1(tmp_path_factory, corpus_path):
    """The tiny GRU's configuration trained from another seed (cross-model correlation)."""
    return _train(tmp_path_factory, corpus_path, "gru_seed1", cell="gru", seed=1)


@pytest.fixture(scope="session")
def tiny_lstm(tmp_path_factory, corpus_path):
    return _train(tmp_path_factory, corpus_path, "lstm", cell="lstm", max_steps=600, eval_every=300)


@pytest.fixture(scope="session")
def shipped():
    assert SHIPPED.exists(), f"the shipped checkpoint {SHIPPED} is missing"
    return load_checkpoint(SHIPPED)


def shipped_corpus_or_skip(ckpt) -> None:
    """Tests that read the shipped checkpoint's held-out block need the training texts it names (../shared/data
    beside a checkout); a clone without them skips those tests with the reason instead of failing on a missing file."""
    from tui_neuron.analysis.recording import heldout_lines
    from tui_neuron.errors import UserError

    try:
        heldout_lines(ckpt)
    except UserError as e:
        pytest.skip(f"the shipped checkpoint's corpus is not here: {e}")


def run_main(*args, capsys=None) -> tuple[int, str, str]:
    """The real `tui-neuron` entry point, in-process: (exit code, stdout, stderr)."""
    import sys

    from tui_neuron.cli import main

    saved = sys.argv
    sys.argv = ["tui-neuron", *map(str, args)]
    code = 0
    try:
        main()
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    finally:
        sys.argv = saved
    if capsys is None:
        return code, "", ""
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="session")
def recording(tiny_gru):
    """Five tokens x T 1..6 x 20 examples of the tiny GRU, recorded with gates."""
    from tui_neuron.analysis.recording import build_examples, frequent_targets, heldout_lines, record

    lines = heldout_lines(tiny_gru)
    tokens = frequent_targets(tiny_gru, lines, 5)
    return record(tiny_gru, build_examples(tiny_gru, lines, tokens, range(1, 7), 20, seed=0))


@pytest.fixture(scope="session")
def results(tiny_gru, recording):
    """analyze_functions on that recording (the results document)."""
    from tui_neuron.analysis.functions import FunctionsConfig, analyze_functions

    return analyze_functions(tiny_gru, recording, FunctionsConfig(candidate_fraction=0.2, ig_steps=16))
