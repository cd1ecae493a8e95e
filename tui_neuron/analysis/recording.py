"""Recordings: examples with control signals for chosen tokens and positions, run once through the
stepper, with h (and gates) kept from t=-1 (the control token enters) to t=T+1, cached on disk.

Examples come from the held-out block: for a token A and a position T, an occurrence of A in the
text becomes target position T, and the text before the target start is the source.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..checkpoint.format import Checkpoint, atomic_write_bytes, atomic_write_text
from ..errors import ParameterError, UserError
from ..model.examples import Example
from ..model.stepper import Stepper
from ..training.corpus import Corpus
from ..training.evaluate import landed

FIRST_T = -1  # the control token is the encoder input at t=-1, <pos_T> at t=0

Progress = Callable[[int, int], None]


@dataclass
class Recording:
    """Arrays over examples: h[e, t - FIRST_T, :] for t in FIRST_T..T_max+1 (NaN beyond each example's T+1)."""

    token_ids: np.ndarray  # [N] control token id
    positions: np.ndarray  # [N] T
    landed: np.ndarray  # [N] bool
    outputs: np.ndarray  # [N, T_max+2] greedy outputs of decoding steps 1..T_max+2
    h: np.ndarray  # [N, L, H] float32
    gates: dict[str, np.ndarray]  # name -> [N, L, H]
    examples: list[Example]
    itos: list[str]

    @property
    def n_steps(self) -> int:
        return self.h.shape[1]

    def at(self, t: int | np.ndarray, examples: np.ndarray, array: np.ndarray | None = None) -> np.ndarray:
        """array[e, t_e] for the given examples (t may be one step or one per example); h by default."""
        arr = self.h if array is None else array
        idx = np.broadcast_to(np.asarray(t) - FIRST_T, (len(examples),))
        return arr[examples, idx]

    def tokens(self) -> list[str]:
        return [self.itos[i] for i in sorted(set(self.token_ids.tolist()), key=self.token_ids.tolist().index)]


def frequent_targets(ckpt: Checkpoint, lines: Sequence[list[str]], n: int) -> list[str]:
    counts = Counter(t for line in lines for t in line if t in ckpt.vocab.stoi and ckpt.vocab.is_word_id(ckpt.vocab.stoi[t]))
    return [w for w, _ in counts.most_common(n)]


def build_examples(ckpt: Checkpoint, lines: Sequence[list[str]], tokens: Sequence[str], positions: Sequence[int],
                   per_cell: int, seed: int = 0, min_len: int = 4, max_len: int | None = None) -> list[Example]:
    """For every (token, T): up to `per_cell` examples drawn from occurrences of the token in `lines`."""
    vocab = ckpt.vocab
    max_len = max_len or ckpt.config.max_len
    stream = np.concatenate([np.asarray(vocab.encode(line), dtype=np.int64) for line in lines])
    rng = np.random.default_rng(seed)
    out: list[Example] = []
    for tok in tokens:
        if tok not in vocab.stoi:
            raise UserError(f"token {tok!r} is not in the model's vocabulary")
        tid = vocab.stoi[tok]
        occ = np.nonzero(stream == tid)[0]
        for T in positions:
            if not 1 <= T <= ckpt.config.max_position:
                raise UserError(f"position {T} is outside 1..{ckpt.config.max_position}")
            starts = occ - (T - 1)
            ok = starts[(starts >= max_len) & (starts + max(T, min_len) <= len(stream))]
            if len(ok) == 0:
                continue
            for start in rng.choice(ok, size=min(per_cell, len(ok)), replace=False):
                src_len = int(rng.integers(min_len, max_len + 1))
                tgt_len = int(rng.integers(max(T, min_len), max(max_len, T) + 1))
                src = stream[start - src_len : start].tolist()
                tgt = stream[start : start + tgt_len].tolist()
                out.append(Example(src, [(tid, T)], tgt))
    if not out:
        raise UserError("no examples could be drawn for these tokens and positions")
    return out


def record(ckpt: Checkpoint, examples: Sequence[Example], batch_size: int = 512,
           progress: Progress | None = None, gates: bool = True) -> Recording:
    """Run the examples through the stepper and keep h (and gates) from t=-1 to T+1."""
    stepper = Stepper(ckpt.model, ckpt.vocab, ckpt.analysis_layer)
    t_max = max(e.controls[0][1] for e in examples) + 1
    L = t_max - FIRST_T + 1
    H = ckpt.config.hidden
    n = len(examples)
    h = np.full((n, L, H), np.nan, dtype=np.float32)
    names = list(ckpt.config.gate_names) + (["c"] if ckpt.config.cell == "lstm" else [])
    gate_arrays = {g: np.full((n, L, H), np.nan, dtype=np.float32) for g in names} if gates else {}
    hit = np.zeros(n, dtype=bool)
    outputs = np.zeros((n, t_max + 1), dtype=np.int64)
    for start in range(0, n, batch_size):
        chunk = examples[start : start + batch_size]
        tr = stepper.run(chunk, max_steps=t_max + 1, record_gates=gates, topk=0, stop_at_eos=False)
        lo = tr.n_enc - 1 + FIRST_T
        hh = tr.h[:, lo : lo + L].numpy()
        gg = {k: v[:, lo : lo + L].numpy() for k, v in tr.gates.items()}
        if tr.c is not None and gates:
            gg["c"] = tr.c[:, lo : lo + L].numpy()
        for b, ex in enumerate(chunk):
            T = ex.controls[0][1]
            keep = T + 1 - FIRST_T + 1
            h[start + b, :keep] = hh[b, :keep]
            for k, v in gg.items():
                gate_arrays[k][start + b, :keep] = v[b, :keep]
            hit[start + b] = landed(tr.output_ids(b), *ex.controls[0])
        outputs[start : start + len(chunk)] = tr.outputs[:, : t_max + 1].numpy()
        if progress:
            progress(min(start + batch_size, n), n)
    return Recording(np.array([e.controls[0][0] for e in examples]), np.array([e.controls[0][1] for e in examples]),
                     hit, outputs, h, gate_arrays, list(examples), ckpt.vocab.itos)


# ----------------------------------------------------------------------------- cache


def cache_key(ckpt: Checkpoint, **params) -> str:
    h = hashlib.sha256()
    h.update(Path(ckpt.path).read_bytes() if ckpt.path else b"")
    h.update(json.dumps(params, sort_keys=True).encode())
    return h.hexdigest()[:16]


def save_recording(rec: Recording, path: Path) -> None:
    """npz of the arrays plus a JSON index beside it; both written atomically."""
    import io

    buf = io.BytesIO()
    arrays = {"token_ids": rec.token_ids, "positions": rec.positions, "landed": rec.landed, "outputs": rec.outputs,
              "h": rec.h,
              **{f"gate_{k}": v for k, v in rec.gates.items()}}
    np.savez(buf, **arrays)  # type: ignore[arg-type]
    atomic_write_bytes(path.with_suffix(".npz"), buf.getvalue())
    index = {"examples": [{"source_ids": e.source_ids, "controls": e.controls, "target_ids": e.target_ids}
                          for e in rec.examples], "gates": list(rec.gates)}
    atomic_write_text(path.with_suffix(".json"), json.dumps(index))


def load_recording(path: Path, itos: list[str]) -> Recording:
    index = json.loads(path.with_suffix(".json").read_text())
    with np.load(path.with_suffix(".npz")) as z:
        gates = {k: z[f"gate_{k}"] for k in index["gates"]}
        rec = Recording(z["token_ids"], z["positions"], z["landed"], z["outputs"], z["h"], gates,
                        [Example(d["source_ids"], [tuple(c) for c in d["controls"]], d["target_ids"])
                         for d in index["examples"]], itos)
    return rec


def cached_record(ckpt: Checkpoint, cache_dir: Path | None, examples_fn: Callable[[], list[Example]],
                  key: str, progress: Progress | None = None) -> tuple[Recording, bool]:
    """Load the recording for `key` from cache_dir, or build, record and save it. Returns (recording, from_cache)."""
    if cache_dir is not None:
        path = Path(cache_dir) / f"recording-{key}"
        if path.with_suffix(".npz").exists() and path.with_suffix(".json").exists():
            try:
                return load_recording(path, ckpt.vocab.itos), True
            except (OSError, ValueError, KeyError, json.JSONDecodeError):
                pass  # a damaged cache is rebuilt
    rec = record(ckpt, examples_fn(), progress=progress)
    if cache_dir is not None:
        save_recording(rec, Path(cache_dir) / f"recording-{key}")
    return rec, False


def require_role_model(ckpt: Checkpoint) -> None:
    """The role analyses (functions, curves, storing, legibility, patching by position) read a model that takes
    control signals through the plain shape's modules (their gradients): refuse any other at once, with why."""
    if not ckpt.vocab.has_positions:
        raise UserError("this model takes no control signals (its vocabulary has no position tokens), so there is no "
                        "token to position and no neuron roles to find; decode, probes, rank, match, top-words, "
                        "memory, compare, interventions and export run on it")
    ckpt.model.require_plain("the role analyses")


def heldout_lines(ckpt: Checkpoint, corpus: Sequence[Path] | None = None,
                  corpus_dir: Sequence[Path] | None = None) -> list[list[str]]:
    if corpus:
        return Corpus.load(corpus, heldout_fraction=0.0).lines("all")
    if not ckpt.heldout.get("files"):
        raise ParameterError("corpus", "this checkpoint records no held-out block; give a {param} to read")
    return Corpus.from_heldout_record(ckpt.heldout, corpus_dir, ckpt.path.parent if ckpt.path else None).lines("heldout")


__all__ = ["FIRST_T", "Recording", "build_examples", "cached_record", "frequent_targets", "heldout_lines", "record",
           "require_role_model"]
