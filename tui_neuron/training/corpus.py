"""Corpora, example sampling and batching for training and evaluation.

A corpus is a list of files; each file keeps its last `heldout_fraction` of lines
as a contiguous held-out block, recorded in the checkpoint so that `eval` never
scores training text. Examples are either consecutive line pairs (`lines`, the
paper's setting) or a random span and the span after it (`spans`, the default).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..checkpoint.validate import require_regular_file
from ..errors import UserError
from ..model.examples import Example
from ..model.tokenizer import PAD_ID, Vocab, tokenize
from .config import SamplingConfig


def corpus_files(paths: Sequence[str | Path]) -> list[Path]:
    """Expand files and folders (every *.txt inside, sorted) into a file list."""
    files: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            found = sorted(x for x in p.rglob("*.txt") if x.is_file())
            if not found:
                raise UserError(f"corpus folder {p} holds no .txt files")
            files += found
        elif p.exists():
            require_regular_file(p, "corpus file")  # a pipe or device would hang the read
            files.append(p)
        else:
            raise UserError(f"corpus {p} does not exist: give a text file or a folder of .txt files")
    return files


def _find_default(name: str, near: Path | None = None) -> Path | None:
    """A moved corpus file looked up by name (its sha256 is checked by the caller): in $TUI_NEURON_DATA, then in
    a `shared/data` folder beside the checkout, beside the checkpoint's folder or the current one, or above."""
    import os

    roots = [Path(p) for p in os.environ.get("TUI_NEURON_DATA", "").split(os.pathsep) if p]
    starts = [Path(__file__).resolve().parents[2], Path.cwd()] + ([near.resolve()] if near is not None else [])
    roots += [a / "shared" / "data" for start in starts for a in (start, *start.parents)]
    for root in dict.fromkeys(roots):
        if root.is_dir():
            for hit in root.rglob(name):
                if hit.is_file() and "_pos" not in hit.parent.name:  # not the tagged copy of the same book
                    return hit
    return None


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass
class CorpusFile:
    name: str
    path: str
    sha256: str
    lines: list[list[str]]
    heldout_start: int  # first held-out line index


class Corpus:
    """Tokenized lines of each file, split into a training part and a held-out tail per file."""

    def __init__(self, files: list[CorpusFile]):
        self.files = files

    @classmethod
    def load(cls, paths: Sequence[str | Path], heldout_fraction: float = 0.05) -> Corpus:
        out = []
        for f in corpus_files(paths):
            try:
                text = f.read_text(encoding="utf-8", errors="replace")
            except OSError as e:
                raise UserError(f"cannot read corpus file {f}: {e.strerror}") from None
            lines = [t for t in (tokenize(line) for line in text.splitlines()) if t]
            start = len(lines) - int(round(len(lines) * heldout_fraction))
            out.append(CorpusFile(f.name, str(f), sha256_file(f), lines, start))
        if sum(len(f.lines) for f in out) < 2:
            raise UserError("the corpus has fewer than two non-empty lines; give more text")
        return cls(out)

    @classmethod
    def from_heldout_record(cls, record: dict, search: Sequence[str | Path] | None = None,
                            base: Path | None = None) -> Corpus:
        """Reload the files a checkpoint was trained on, check their hashes, and reapply its split.

        A relative path is taken from `base` (the checkpoint's folder); a missing file is looked up by name.
        """
        files = []
        candidates = corpus_files(search) if search else []
        by_name = {c.name: c for c in candidates}
        for entry in record["files"]:
            path = Path(entry.get("path") or entry["name"])
            if base is not None and not path.is_absolute():
                path = base / path
            if not search and not path.is_file():
                path = _find_default(entry["name"], base) or path
            if search:
                if entry["name"] not in by_name:
                    raise UserError(f"corpus file {entry['name']} (from the checkpoint) is not under {list(search)}")
                path = by_name[entry["name"]]
            if not path.is_file():
                raise UserError(
                    f"the checkpoint's corpus file {path} is missing; pass its new folder with --corpus"
                )
            digest = sha256_file(path)
            if digest != entry["sha256"]:
                raise UserError(f"corpus file {path} changed since training (sha256 differs); pass the original")
            text = path.read_text(encoding="utf-8", errors="replace")
            lines = [t for t in (tokenize(line) for line in text.splitlines()) if t]
            start = int(entry["heldout_start"])
            _check_split(entry, lines, start, path)
            files.append(CorpusFile(entry["name"], str(path), digest, lines, start))
        return cls(files)

    def heldout_record(self, relative_to: Path | None = None) -> dict:
        """Files by name, sha256 and first held-out line, with a path relative to `relative_to` (the checkpoint's
        folder) when given; never an absolute path. `--corpus DIR` finds moved files by name."""
        import os

        def rel(f: CorpusFile) -> dict:
            return {"path": os.path.relpath(Path(f.path).resolve(), relative_to.resolve())} if relative_to else {}

        return {
            "files": [
                {"name": f.name, **rel(f), "sha256": f.sha256, "heldout_start": f.heldout_start, "lines": len(f.lines),
                 "first_heldout_line": " ".join(f.lines[f.heldout_start])[:200] if f.heldout_start < len(f.lines)
                 else ""}
                for f in self.files
            ]
        }

    def sha256(self) -> str:
        h = hashlib.sha256()
        for f in self.files:
            h.update(f.sha256.encode())
        return h.hexdigest()

    def lines(self, part: str) -> list[list[str]]:
        """`train`, `heldout` or `all` lines, concatenated over files."""
        out: list[list[str]] = []
        for f in self.files:
            if part == "train":
                out += f.lines[: f.heldout_start]
            elif part == "heldout":
                out += f.lines[f.heldout_start :]
            else:
                out += f.lines
        return out


def relative_heldout(record: dict, folder: Path, old_folder: Path | None = None) -> dict:
    """A held-out record whose paths are relative to `folder` (absolute paths from format 1 are rewritten)."""
    import os

    files = []
    for entry in record.get("files", []):
        entry = dict(entry)
        path = entry.get("path")
        if path:
            p = Path(path) if Path(path).is_absolute() or old_folder is None else old_folder / path
            entry["path"] = os.path.relpath(p.resolve(), folder.resolve()) if p.exists() else None
            if entry["path"] is None:
                del entry["path"]
        files.append(entry)
    return {**record, "files": files}


# ----------------------------------------------------------------------------- sampling




class ExampleSource:
    """Draws examples with control signals from encoded lines; deterministic for a given numpy Generator."""

    def __init__(self, vocab: Vocab, lines: list[list[str]], sampling: SamplingConfig):
        self.vocab = vocab
        self.sampling = sampling
        encoded = [np.asarray(vocab.encode(t), dtype=np.int64) for t in lines]
        if sampling.mode == "lines":
            self.pairs = [(a, b) for a, b in zip(encoded, encoded[1:]) if len(b) >= 1]
            if not self.pairs:
                raise UserError("no consecutive line pairs in this corpus part")
        elif sampling.mode == "spans":
            self.stream = np.concatenate(encoded) if encoded else np.zeros(0, dtype=np.int64)
            if len(self.stream) < 2 * sampling.max_len + 1:
                raise UserError(
                    f"corpus part has {len(self.stream)} tokens; spans mode needs at least {2 * sampling.max_len + 1}"
                )
        else:
            raise UserError(f"data mode {sampling.mode!r} is unknown; use spans or lines")

    def sample(self, rng: np.random.Generator, max_position: int, max_target_len: int | None = None) -> Example:
        """One example; `max_target_len` (the curriculum) caps the target length and so T."""
        s = self.sampling
        hi = s.max_len if max_target_len is None else min(s.max_len, max_target_len)
        k = s.n_signals
        for _ in range(100):
            if s.mode == "spans":
                positions = np.sort(rng.choice(np.arange(1, min(max_position, hi) + 1), size=k, replace=False))
                tgt_len = int(rng.integers(max(int(positions[-1]), s.min_len, k), max(hi, int(positions[-1])) + 1))
                src_len = int(rng.integers(s.min_len, s.max_len + 1))
                start = int(rng.integers(0, len(self.stream) - src_len - tgt_len + 1))
                src = self.stream[start : start + src_len]
                tgt = self.stream[start + src_len : start + src_len + tgt_len]
            else:
                a, b = self.pairs[int(rng.integers(len(self.pairs)))]
                src, tgt = a[: s.max_len], b[:hi]
                limit = min(max_position, len(tgt))
                if limit < k:
                    continue
                positions = np.sort(rng.choice(np.arange(1, limit + 1), size=k, replace=False))
            tokens = [int(tgt[p - 1]) for p in positions]
            if all(self.vocab.is_word_id(t) for t in tokens) and len(set(tokens)) == k:
                return Example(src.tolist(), [(t, int(p)) for t, p in zip(tokens, positions)], tgt.tolist())
        raise UserError("could not draw an example whose control tokens are in the vocabulary; enlarge the vocabulary")

    def sample_many(self, n: int, seed: int, max_position: int) -> list[Example]:
        rng = np.random.default_rng(seed)
        return [self.sample(rng, max_position) for _ in range(n)]


# ----------------------------------------------------------------------------- batching


@dataclass
class TrainBatch:
    """Right-padded tensors for teacher forcing: src [B,S], tgt_in/tgt_out [B,L]."""

    src: torch.Tensor
    src_len: torch.Tensor
    tgt_in: torch.Tensor
    tgt_out: torch.Tensor
    pad_id: int = PAD_ID
    control_mask: torch.Tensor | None = None  # [B,L] True where a control token is the target

    @property
    def n_target_tokens(self) -> int:
        return int((self.tgt_out != self.pad_id).sum())


def collate(examples: Sequence[Example], vocab: Vocab) -> TrainBatch:
    encs = [e.encoder_ids(vocab) for e in examples]
    tgts = [list(e.target_ids or []) + [vocab.eos_id] for e in examples]
    b, s, lt = len(examples), max(map(len, encs)), max(map(len, tgts))
    src = torch.full((b, s), vocab.pad_id, dtype=torch.long)
    tgt_in = torch.full((b, lt), vocab.pad_id, dtype=torch.long)
    tgt_out = torch.full((b, lt), vocab.pad_id, dtype=torch.long)
    control_mask = torch.zeros(b, lt, dtype=torch.bool)
    for i, (e, t) in enumerate(zip(encs, tgts)):
        src[i, : len(e)] = torch.tensor(e)
        tgt_in[i, : len(t)] = torch.tensor([vocab.bos_id, *t[:-1]])
        tgt_out[i, : len(t)] = torch.tensor(t)
        for _, position in examples[i].controls:
            if position <= len(t):
                control_mask[i, position - 1] = True
    return TrainBatch(src, torch.tensor([len(e) for e in encs]), tgt_in, tgt_out, vocab.pad_id, control_mask)


def _check_split(entry: dict, lines: list[list[str]], start: int, path: Path) -> None:
    """The recorded split must be the file's: held-out lines counted to its end, and the first held-out line as
    recorded (a changed `heldout_start` would score training lines as held-out)."""
    if not 0 <= start <= len(lines):
        raise UserError(f"the checkpoint's held-out block of {path} starts at line {start}, outside the file's "
                        f"{len(lines)} lines; the checkpoint's held-out record is damaged")
    if entry.get("lines") is not None and int(entry["lines"]) != len(lines):
        raise UserError(f"the checkpoint records {entry['lines']} lines for {path}, which has {len(lines)}; "
                        "the checkpoint's held-out record is damaged")
    first = entry.get("first_heldout_line")
    actual = " ".join(lines[start])[:200] if start < len(lines) else ""
    if isinstance(first, str) and first != actual:
        raise UserError(f"the checkpoint's first held-out line of {path} is not the file's line {start}; the "
                        "checkpoint's held-out record is damaged")
