"""Helpers of the fuzz suite: a tally of outcomes, a tiny random-weight checkpoint and its reference decode."""

from __future__ import annotations

import json
import struct
import time
from collections import Counter
from pathlib import Path

import torch

from tui_neuron.checkpoint.format import Checkpoint, save_checkpoint
from tui_neuron.errors import UserError
from tui_neuron.model.examples import Example
from tui_neuron.model.seq2seq import ModelConfig, Seq2Seq
from tui_neuron.model.stepper import Stepper
from tui_neuron.model.tokenizer import Vocab

CASE_SECONDS = 5.0


class Tally:
    """Counts outcomes; anything but a one-line UserError or an accepted-and-equal result is a failure."""

    def __init__(self, name: str):
        self.name = name
        self.counts: Counter[str] = Counter()
        self.failures: list[str] = []

    def run(self, label: str, action, check_accepted=None) -> None:
        start = time.monotonic()
        try:
            value = action()
        except UserError as e:
            message = str(e)
            if not message or "\n" in message:
                self.failures.append(f"{label}: UserError is not one line: {message!r}")
            else:
                self.counts["clean rejection"] += 1
        except Exception as e:  # noqa: BLE001 - any other exception is exactly what the fuzz looks for
            self.failures.append(f"{label}: {type(e).__name__}: {str(e)[:200]}")
        else:
            if check_accepted is not None and not check_accepted(value):
                self.failures.append(f"{label}: accepted but different from the original")
            else:
                self.counts["accepted and equal"] += 1
        if time.monotonic() - start > CASE_SECONDS:
            self.failures.append(f"{label}: took {time.monotonic() - start:.1f} s")
        self.counts["tried"] += 1

    def report(self) -> str:
        c = self.counts
        return (f"{self.name}: tried {c['tried']}, clean rejection {c['clean rejection']}, "
                f"accepted and equal {c['accepted and equal']}, failures {len(self.failures)}")


def tiny_checkpoint(path: Path, cell: str = "gru") -> Checkpoint:
    torch.manual_seed(0)
    vocab = Vocab.standard([f"w{i}" for i in range(12)], 4)
    model = Seq2Seq(ModelConfig(len(vocab), cell, 6, 8, 4, 1, 8)).eval()
    heldout = {"files": [{"name": "c.txt", "path": "c.txt", "sha256": "0" * 64, "heldout_start": 3, "lines": 5}]}
    ckpt = Checkpoint(model, vocab, heldout, {"steps": 1, "heldout_accuracy": 0.5, "history": []})
    save_checkpoint(ckpt, path)
    assert vocab.encode(["w1", "w2", "w3", "w4"]) == SOURCE_IDS
    return ckpt


# ids of "w1 w2 w3 w4" with control w2@2 in the tiny vocabulary: compared by id, so a metadata edit that only
# renames tokens (the digest covers the weights, not the names) still decodes "the same"
SOURCE_IDS, CONTROL = [9, 10, 11, 12], (10, 2)


def decode_ids(ckpt: Checkpoint) -> list[int]:
    example = Example(SOURCE_IDS, [CONTROL])
    return Stepper(ckpt.model, ckpt.vocab).run([example]).outputs[0].tolist()


def split_safetensors(raw: bytes) -> tuple[dict, bytes]:
    """A safetensors file as (its JSON header, its data), for mutating the header."""
    (n,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8 : 8 + n]), raw[8 + n :]


def join_safetensors(header: dict, data: bytes) -> bytes:
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + data
