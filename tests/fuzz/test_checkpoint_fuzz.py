"""≥1,000 seeded mutations of a checkpoint: each is a one-line UserError or loads and decodes as the original."""

from __future__ import annotations

import json
import random
import struct

import torch
from safetensors.torch import save as save_bytes

from tui_neuron.checkpoint.format import load_checkpoint
from tui_neuron.checkpoint.validate import tensors_digest

from .helpers import decode_ids, join_safetensors, split_safetensors, tiny_checkpoint

JSON_VALUES = [None, True, False, 0, -1, 1, 2.5, 256.0, 10**9, 10**30, -(10**12), "", "abc", "16", [], {}, [1, 2],
               {"a": 1}, float("nan"), float("inf"), "[" * 50, ["x"] * 3]


_split, _join = split_safetensors, join_safetensors


def _random_json(rng: random.Random):
    if rng.random() < 0.1:
        depth = rng.choice([40, 3000, 100_000])
        return "BOMB" + str(depth)
    return rng.choice(JSON_VALUES)


def _dumps(value) -> str:
    if isinstance(value, str) and value.startswith("BOMB"):
        depth = int(value[4:])
        return "[" * depth + "]" * depth
    return json.dumps(value)


def mutate(raw: bytes, rng: random.Random, ckpt) -> tuple[str, bytes]:
    header, data = _split(raw)
    meta = header["__metadata__"]
    kind = rng.choice(["truncate", "flip_header", "flip_data", "length_prefix", "meta_field", "meta_key", "dtype",
                       "shape", "offsets", "nonfinite", "drop_tensor", "extra_tensor", "drop_digest", "format",
                       "meta_raw", "huge"])
    if kind == "truncate":
        return kind, raw[: rng.randrange(len(raw))]
    if kind == "flip_header":
        b = bytearray(raw)
        for _ in range(rng.randint(1, 4)):
            b[rng.randrange(min(len(b), 8 + len(json.dumps(header))))] ^= 1 << rng.randrange(8)
        return kind, bytes(b)
    if kind == "flip_data":
        b = bytearray(raw)
        b[len(raw) - 1 - rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        return kind, bytes(b)
    if kind == "length_prefix":
        return kind, struct.pack("<Q", rng.choice([0, 1, 7, 128, 2**63, len(raw), rng.randrange(2**40)])) + raw[8:]
    if kind in ("meta_field", "huge"):
        field = rng.choice(["config", "vocab", "heldout", "training"])
        doc = json.loads(meta[field])
        key = rng.choice(list(doc) or ["x"])
        if kind == "huge":
            key = rng.choice(["vocab_size", "hidden", "emb_dim", "max_position", "max_len"])
            field = "vocab" if key == "max_position" and rng.random() < 0.5 else "config"
            doc = json.loads(meta[field])
            value = rng.choice([10**9, 10**12, 2**63, 65536, -5])
        else:
            value = _random_json(rng)
        text = json.dumps({**doc, key: None})
        meta[field] = text.replace('"' + key + '": null', '"' + key + '": ' + _dumps(value), 1)
    elif kind == "meta_key":
        field = rng.choice(["config", "vocab", "heldout", "training", "format", "tensors_sha256"])
        if rng.random() < 0.5:
            meta.pop(field, None)
        else:
            meta[field] = _dumps(_random_json(rng))
    elif kind == "meta_raw":
        field = rng.choice(list(meta))
        text = meta[field]
        cut = rng.randrange(len(text) + 1)
        meta[field] = text[:cut] + rng.choice(["", "{", "]", '"', "\\", "\x00", "ü"]) + text[cut:]
    elif kind == "format":
        meta["format"] = rng.choice(["tui-neuron/0", "tui-neuron/9", "", "x" * 1000])
    elif kind in ("dtype", "shape", "offsets", "drop_tensor", "extra_tensor"):
        names = [k for k in header if k != "__metadata__"]
        name = rng.choice(names)
        if kind == "dtype":
            header[name]["dtype"] = rng.choice(["I32", "F16", "BF16", "F64", "U8", "BOOL", "I64", "Q4", 5])
        elif kind == "shape":
            shape = header[name]["shape"]
            header[name]["shape"] = rng.choice([[], [0], shape[::-1], [*shape, 1], [x * 2 for x in shape], [-1], "x",
                                                [10**12]])
        elif kind == "offsets":
            header[name]["data_offsets"] = rng.choice([[0, 0], [0, 10**15], [5, 1], "ab", [1, 2, 3]])
        elif kind == "drop_tensor":
            del header[name]
        else:
            header["decoder.weight_ih_l1"] = dict(header[name])
        return kind, _join(header, data)
    elif kind == "nonfinite":
        tensors = {k: t.clone() for k, t in ckpt.model.state_dict().items()}
        name = rng.choice(sorted(tensors))
        tensors[name].view(-1)[rng.randrange(tensors[name].numel())] = rng.choice([float("nan"), float("inf"),
                                                                                   float("-inf")])
        meta["tensors_sha256"] = tensors_digest(tensors)
        return kind, save_bytes(tensors, metadata=meta)
    elif kind == "drop_digest":
        meta.pop("tensors_sha256")
    return kind, _join(header, data)


def test_mutated_checkpoints(tmp_path, tally):
    base = tmp_path / "base.safetensors"
    ckpt = tiny_checkpoint(base)
    raw = base.read_bytes()
    expected = decode_ids(ckpt)
    rng = random.Random(20261122)
    path = tmp_path / "mutant.safetensors"
    for i in range(1100):
        kind, mutant = mutate(raw, rng, ckpt)
        path.write_bytes(mutant)
        tally.run(f"case {i} ({kind})", lambda: load_checkpoint(path),
                  lambda loaded: decode_ids(loaded) == expected)
    assert tally.counts["tried"] >= 1000
    assert tally.counts["clean rejection"] > 500 and tally.counts["accepted and equal"] > 50


def test_lstm_mutations(tmp_path, tally):
    base = tmp_path / "lstm.safetensors"
    ckpt = tiny_checkpoint(base, "lstm")
    raw, expected = base.read_bytes(), decode_ids(ckpt)
    rng = random.Random(7)
    path = tmp_path / "m.safetensors"
    for i in range(150):
        kind, mutant = mutate(raw, rng, ckpt)
        path.write_bytes(mutant)
        tally.run(f"lstm case {i} ({kind})", lambda: load_checkpoint(path), lambda c: decode_ids(c) == expected)


def test_torch_pickles_are_refused(tmp_path, tally):
    ckpt = tiny_checkpoint(tmp_path / "base.safetensors")
    for i, protocol in enumerate([2, 3, 4, 5]):
        p = tmp_path / f"p{i}.safetensors"
        torch.save(ckpt.model.state_dict(), p, pickle_protocol=protocol, _use_new_zipfile_serialization=bool(i % 2))
        tally.run(f"pickle protocol {protocol}", lambda p=p: load_checkpoint(p))
    assert tally.counts["clean rejection"] == 4
