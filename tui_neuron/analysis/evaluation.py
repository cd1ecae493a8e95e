"""Held-out positioning accuracy of a checkpoint, on its recorded held-out block or on a new corpus."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..errors import UserError
from ..model.checkpoint import Checkpoint
from ..model.data import Corpus, Example, ExampleSource, SamplingConfig
from ..model.evaluate import evaluate


def heldout_examples(
    ckpt: Checkpoint,
    corpus: Sequence[Path] | None = None,
    corpus_dir: Sequence[Path] | None = None,
    n: int = 3000,
    seed: int = 4321,
    signals: int | None = None,
) -> tuple[str, list[Example]]:
    """Examples drawn from the checkpoint's held-out block (or all of a new corpus), never training text."""
    rec = ckpt.heldout
    cfg = ckpt.config
    if not ckpt.vocab.has_positions:
        raise UserError("this model has no position tokens, so there is no positioning to evaluate")
    if n < 1:
        raise UserError("--examples must be at least 1")
    k = signals or cfg.n_signals
    if not 1 <= k <= cfg.max_position:
        raise UserError(f"--signals {k}: must be between 1 and {cfg.max_position}")
    sampling = SamplingConfig(rec.get("mode", "spans"), rec.get("min_len", 4), rec.get("max_len", cfg.max_len), k)
    if corpus:
        lines = Corpus.load(corpus, heldout_fraction=0.0).lines("all")
        label = f"all of {', '.join(str(c) for c in corpus)}"
    else:
        if not rec.get("files"):
            raise UserError("this checkpoint records no held-out block; pass a CORPUS to score")
        lines = Corpus.from_heldout_record(rec, corpus_dir, _folder(ckpt)).lines("heldout")
        label = f"held-out block of {len(rec['files'])} corpus files"
    return label, ExampleSource(ckpt.vocab, lines, sampling).sample_many(n, seed, cfg.max_position)


def _folder(ckpt: Checkpoint) -> Path | None:
    return Path(ckpt.path).parent if ckpt.path else None


def evaluate_checkpoint(ckpt: Checkpoint, corpus=None, corpus_dir=None, n: int = 3000, seed: int = 4321,
                        signals: int | None = None) -> dict:
    label, examples = heldout_examples(ckpt, corpus, corpus_dir, n, seed, signals)
    report = evaluate(ckpt.model, ckpt.vocab, examples)
    return {"checkpoint": str(ckpt.path), "source": label, "seed": seed, "report": report.to_json()}
