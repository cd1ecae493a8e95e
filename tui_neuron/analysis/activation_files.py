"""Activation files other tools read, written as sentences stream in and read back here.

- NeuroX hdf5, as NeuroX's own writer lays it out (`neurox/data/writer.py`): one dataset per sentence named
  by its index, [tracks, tokens, hidden]; a `sentence_to_index` dataset holding one JSON string that maps each
  space-joined sentence to its index, a repeated sentence suffixed ` (Occurrence N)`. NeuroX calls the first
  axis "layers"; here it holds one track per (state, layer), named in the file's `tui_neuron_tracks` attribute.
- NeuroX json: one line per sentence, {"linex_index": i, "features": [{"token": t, "layers": [{"index": l,
  "values": [...]}]}]}.
- LSTMVis (README and docs/chapter/config_states.md, meta.md of HendrikStrobelt/LSTMVis at 00e4fff): a folder
  with states.h5 ([timesteps, cells] per track), words.h5 (`word_ids`), words.dict (`word id` lines) and
  lstm.yml (written as JSON, which YAML reads).

Every writer writes beside its target and renames into place at the end, so an interrupted export leaves no
half-written file at `--out`.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UserError

FORMATS = ("neurox-hdf5", "neurox-json", "lstmvis")


def _partial(out: Path) -> Path:
    return out.with_name(f".{out.name}.part-{os.getpid()}")


class _OneFileWriter:
    """A single file written beside `out` (`file`, open on `tmp`) and renamed into place when complete."""

    out: Path
    tmp: Path
    file: Any

    def _finish(self) -> None:
        self.file.close()
        os.replace(self.tmp, self.out)

    def abort(self) -> None:
        self.file.close()
        self.tmp.unlink(missing_ok=True)


class NeuroXHDF5Writer(_OneFileWriter):
    def __init__(self, out: Path, tracks: Sequence[str]):
        import h5py

        self.out, self.tmp, self.tracks = out, _partial(out), list(tracks)
        self.file = h5py.File(self.tmp, "w")
        self.index: dict[str, str] = {}
        self.n = 0

    def write(self, tokens: Sequence[str], acts: np.ndarray, tags: Sequence[str] | None = None) -> None:
        self.file.create_dataset(str(self.n), data=acts, dtype="float32")
        sentence = key = " ".join(tokens)
        count = 1
        while key in self.index:
            count += 1
            key = f"{sentence} (Occurrence {count})"
        self.index[key] = str(self.n)
        self.n += 1

    def close(self) -> None:
        import h5py

        ds = self.file.create_dataset("sentence_to_index", (1,), dtype=h5py.special_dtype(vlen=str))
        ds[0] = json.dumps(self.index)
        self.file.attrs["tui_neuron_tracks"] = json.dumps(self.tracks)
        self._finish()


class NeuroXJSONWriter(_OneFileWriter):
    def __init__(self, out: Path, tracks: Sequence[str]):
        self.out, self.tmp, self.tracks = out, _partial(out), list(tracks)
        self.file = self.tmp.open("w", encoding="utf-8")
        self.n = 0

    def write(self, tokens: Sequence[str], acts: np.ndarray, tags: Sequence[str] | None = None) -> None:
        rounded = np.round(acts.astype(np.float64), 8)
        features = [{"token": tok, "layers": [{"index": layer, "values": rounded[layer, i].tolist()}
                                              for layer in range(acts.shape[0])]} for i, tok in enumerate(tokens)]
        self.file.write(json.dumps({"linex_index": self.n, "features": features}) + "\n")
        self.n += 1

    def close(self) -> None:
        self._finish()


class LSTMVisWriter:
    """States appended to resizable datasets, one per track (`h1`: h of layer 1, as LSTMVis counts layers)."""

    def __init__(self, out: Path, tracks: Sequence[str], hidden: int, itos: Sequence[str], stoi: dict[str, int],
                 unk: int, description: str):
        import h5py

        self.out, self.tmp, self.tracks = out, _partial(out), list(tracks)
        self.tmp.mkdir()
        self.itos, self.stoi, self.unk, self.description = itos, stoi, unk, description
        self.states: Any = h5py.File(self.tmp / "states.h5", "w")
        self.paths = [f"{t.split('/')[0]}{int(t.split('/l')[1]) + 1}" for t in tracks]
        for p in self.paths:
            self.states.create_dataset(p, (0, hidden), maxshape=(None, hidden), dtype="float32",
                                       chunks=(1024, hidden))
        self.words: Any = h5py.File(self.tmp / "words.h5", "w")
        self.words.create_dataset("word_ids", (0,), maxshape=(None,), dtype="int32", chunks=(4096,))
        self.n = 0
        self.buffer: list[tuple[Sequence[str], np.ndarray]] = []
        self.buffered = 0
        self.tags: list[int] = []  # part-of-speech ids per timestep (a tagged corpus): the meta track
        self.tag_ids: dict[str, int] = {}

    def write(self, tokens: Sequence[str], acts: np.ndarray, tags: Sequence[str] | None = None) -> None:
        self.buffer.append((tokens, acts))
        if tags is not None:
            self.tags += [self.tag_ids.setdefault(t, len(self.tag_ids)) for t in tags]
        self.buffered += len(tokens)
        if self.buffered >= 8192:  # appending in blocks: a resize per sentence is slow
            self.flush()

    def flush(self) -> None:
        if not self.buffer:
            return
        k = self.buffered
        block = np.concatenate([a for _, a in self.buffer], axis=1)  # [tracks, k, hidden]
        for i, p in enumerate(self.paths):
            ds = self.states[p]
            ds.resize(self.n + k, axis=0)
            ds[self.n : self.n + k] = block[i]
        ids = self.words["word_ids"]
        ids.resize(self.n + k, axis=0)
        ids[self.n : self.n + k] = [self.stoi.get(t, self.unk) for tokens, _ in self.buffer for t in tokens]
        self.n += k
        self.buffer, self.buffered = [], 0

    def close(self) -> None:
        self.flush()
        self.states.close()
        self.words.close()
        (self.tmp / "words.dict").write_text("".join(f"{w} {i}\n" for i, w in enumerate(self.itos)), "utf-8")
        if self.tags:
            self._write_tags()
        (self.tmp / "lstm.yml").write_text(json.dumps(self.config(), indent=1) + "\n", "utf-8")
        if self.out.exists():  # only with --force (checked before anything ran)
            shutil.rmtree(self.out) if self.out.is_dir() else self.out.unlink()
        os.replace(self.tmp, self.out)

    def _write_tags(self) -> None:
        import h5py

        with h5py.File(self.tmp / "pos.h5", "w") as f:
            f.create_dataset("pos", data=np.asarray(self.tags, dtype=np.int32))
        (self.tmp / "pos.dict").write_text("".join(f"{t} {i}\n" for t, i in self.tag_ids.items()), "utf-8")

    def config(self) -> dict:
        types = []
        for track, path in zip(self.tracks, self.paths):
            state, layer = track.split("/l")
            entry: dict[str, Any] = {"type": "state", "layer": int(layer) + 1, "path": path}
            if state in ("h", "n", "g"):
                entry["transform"] = "none"  # already in [-1, 1]
            elif state != "c":
                entry.update(transform="none", unsigned=True)  # a gate: in [0, 1]
            types.append(entry)
        config: dict[str, Any] = {
            "name": self.out.name, "description": self.description,
            "files": {"states": "states.h5", "words": "words.h5", "dict": "words.dict"},
            "word_sequence": {"file": "words", "path": "word_ids", "dict_file": "dict"},
            "states": {"file": "states", "types": types}}
        if self.tags:
            config["files"].update(pos="pos.h5", pos_dict="pos.dict")
            config["meta"] = {"part_of_speech": {"file": "pos", "path": "pos", "dict": "pos_dict",
                                                 "vis": {"type": "discrete", "range": "dict"}}}
        return config

    def abort(self) -> None:
        for f in (self.states, self.words):
            try:
                f.close()
            except Exception:  # noqa: BLE001 - already closed
                pass
        shutil.rmtree(self.tmp, ignore_errors=True)


@dataclass
class ActivationFile:
    """A NeuroX file read back: each sentence's tokens and its activations [tokens, tracks × hidden]."""

    tokens: list[list[str]]
    acts: list[np.ndarray]
    tracks: list[str]
    hidden: int


def read_activations(path: Path, limit: int | None = None) -> ActivationFile:
    """A NeuroX hdf5 (.hdf5/.h5) or json file, its first `limit` sentences (None: all); anything else, or a damaged
    one, is one line."""
    if not path.is_file():
        raise UserError(f"activations file {path} does not exist or is not a file")
    try:
        if path.suffix in (".hdf5", ".h5"):
            return _read_hdf5(path, limit)
        return _read_json(path, limit)
    except (OSError, KeyError, ValueError, TypeError, IndexError) as e:
        reason = (str(e).splitlines() or [type(e).__name__])[0][:160]
        raise UserError(f"activations file {path} is not a NeuroX activations file ({reason})") from None


def _read_hdf5(path: Path, limit: int | None) -> ActivationFile:
    import h5py

    with h5py.File(path, "r") as f:
        index = json.loads(f["sentence_to_index"][0])
        tracks = json.loads(f.attrs.get("tui_neuron_tracks", "[]"))
        tokens, acts = [], []
        for sentence, key in sorted(index.items(), key=lambda kv: int(kv[1]))[:limit]:
            a = np.asarray(f[key], dtype=np.float32)
            if a.ndim != 3:
                raise ValueError(f"dataset {key} has {a.ndim} axes, not [layers, tokens, hidden]")
            words = sentence.rsplit(" (Occurrence ", 1)[0].split(" ") if " (Occurrence " in sentence else \
                sentence.split(" ")
            tokens.append(words)
            acts.append(np.swapaxes(a, 0, 1).reshape(a.shape[1], -1))
    return _checked(path, tokens, acts, tracks, a.shape[2] if acts else 0)


def _read_json(path: Path, limit: int | None) -> ActivationFile:
    tokens: list[list[str]] = []
    acts: list[np.ndarray] = []
    hidden = 0
    with path.open(encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            if limit is not None and len(tokens) >= limit:
                break
            features = json.loads(line)["features"]
            tokens.append([str(x["token"]) for x in features])
            rows = [np.concatenate([np.asarray(layer["values"], dtype=np.float32) for layer in x["layers"]])
                    for x in features]
            hidden = len(features[0]["layers"][0]["values"]) if features else hidden
            acts.append(np.stack(rows) if rows else np.zeros((0, 0), np.float32))
    return _checked(path, tokens, acts, [], hidden)


def _checked(path: Path, tokens: list[list[str]], acts: list[np.ndarray], tracks: list[str],
             hidden: int) -> ActivationFile:
    if not acts:
        raise UserError(f"activations file {path} holds no sentences")
    widths = {a.shape[1] for a in acts}
    if len(widths) != 1 or any(len(t) != a.shape[0] for t, a in zip(tokens, acts)):
        raise UserError(f"activations file {path}: its sentences disagree in size with their tokens or each other")
    return ActivationFile(tokens, acts, tracks, hidden)
