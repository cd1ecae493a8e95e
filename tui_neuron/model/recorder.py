"""The data a stepper run moves through: the batch it reads, the state it carries from step to step, and the
buffers it records into (time-major, filled in place, handed to `Trace` as [example, step, neuron] views)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from .examples import Example
from .tokenizer import Vocab
from .trace import Trace


def left_padded(rows: Sequence[Sequence[int]], pad_id: int) -> tuple[Tensor, Tensor]:
    """Token rows as one [B,S] batch padded on the left (so the last source token is at t=0), and where it is valid."""
    lens = torch.tensor([len(r) for r in rows])
    valid = torch.arange(int(lens.max()))[None] >= (lens.max() - lens)[:, None]
    ids = torch.full(valid.shape, pad_id, dtype=torch.long)
    ids[valid] = torch.tensor([i for r in rows for i in r], dtype=torch.long)  # row-major: each row's tokens in order
    return ids, valid


@dataclass
class Batch:
    """The examples of one run as the encoder reads them: left-padded ids, where they are valid, each one's T."""

    examples: Sequence[Example]
    ids: Tensor  # [B,S]
    valid: Tensor  # [B,S]
    positions: Tensor  # [B] first control position T (0 without controls)
    control_ids: Tensor  # [B] first control token (0 without controls)
    enc_lens: Tensor  # [B]

    @classmethod
    def of(cls, examples: Sequence[Example], vocab: Vocab) -> Batch:
        enc = [e.encoder_ids(vocab) for e in examples]
        ids, valid = left_padded(enc, vocab.src.pad_id)
        return cls(examples, ids, valid, torch.tensor([e.controls[0][1] if e.controls else 0 for e in examples]),
                   torch.tensor([e.controls[0][0] if e.controls else 0 for e in examples]),
                   torch.tensor([len(e) for e in enc]))

    @property
    def size(self) -> int:
        return self.ids.shape[0]

    @property
    def n_enc(self) -> int:
        return self.ids.shape[1]


@dataclass
class States:
    """Every layer's h (and c) between steps."""

    h: list[Tensor]
    c: list[Tensor | None]

    @classmethod
    def zeros(cls, layers: int, batch: int, hidden: int, lstm: bool) -> States:
        return cls([torch.zeros(batch, hidden) for _ in range(layers)],
                   [torch.zeros(batch, hidden) if lstm else None for _ in range(layers)])

    @property
    def lstm(self) -> bool:
        return self.c[0] is not None

    @property
    def batch(self) -> int:
        return self.h[0].shape[0]

    def copy_rows(self, other: States, rows: Tensor) -> None:
        """Take `other`'s state, row `rows[b]` for row b."""
        self.h = [h[rows] for h in other.h]
        self.c = [None if c is None else c[rows] for c in other.c]


@dataclass
class Recorder:
    """[step, layer, example, neuron] buffers of h, c and each gate (none when gates are not recorded)."""

    h: Tensor
    c: Tensor | None
    gates: list[Tensor]
    gate_names: tuple[str, ...]

    @classmethod
    def empty(cls, n_steps: int, layers: int, batch: int, hidden: int, gate_names: Sequence[str],
              lstm: bool) -> Recorder:
        shape = (n_steps, layers, batch, hidden)
        return cls(torch.empty(shape), torch.empty(shape) if lstm else None, [torch.empty(shape) for _ in gate_names],
                   tuple(gate_names))

    def put(self, s: int, k: int, h: Tensor, c: Tensor | None, gates: Sequence[Tensor], pad_gates: Sequence[Tensor],
            rows: Tensor | None, edited: dict[str, Tensor]) -> None:
        """Step s of layer k. With `rows` (only those were computed), the other rows record the padding's gates;
        an edited gate is recorded whole, as the edit left it."""
        self.h[s, k] = h
        if self.c is not None:
            self.c[s, k] = c  # type: ignore[assignment]
        for buf, g, pad, name in zip(self.gates, gates, pad_gates, self.gate_names):
            if rows is None or name in edited:
                buf[s, k] = edited.get(name, g)
            else:
                buf[s, k] = pad
                buf[s, k].index_copy_(0, rows, g)

    def copy_rows(self, other: Recorder, n_steps: int, rows: Tensor) -> None:
        """Steps 0..n_steps-1 from `other`, row `rows[b]` for row b."""
        self.h[:n_steps] = other.h[:n_steps, :, rows]
        if self.c is not None and other.c is not None:
            self.c[:n_steps] = other.c[:n_steps, :, rows]
        for buf, src in zip(self.gates, other.gates):
            buf[:n_steps] = src[:n_steps, :, rows]

    def trace(self, cell: str, batch: Batch, out: DecodeRecord, eos_id: int) -> Trace:
        n_dec = out.n_steps
        n, L = batch.n_enc + n_dec, self.h.shape[1]
        layer_h = tuple(self.h[:n, k].transpose(0, 1) for k in range(L))
        layer_c = tuple(self.c[:n, k].transpose(0, 1) if self.c is not None else None for k in range(L))
        layer_gates = tuple({name: buf[:n, k].transpose(0, 1) for name, buf in zip(self.gate_names, self.gates)}
                            for k in range(L))
        return Trace.of_layers(
            cell, batch.ids, batch.valid, out.inputs[:n_dec].T, layer_h, layer_c, layer_gates,
            outputs=out.outputs[:n_dec].T, top_ids=out.top_ids[:n_dec].transpose(0, 1),
            top_probs=out.top_probs[:n_dec].transpose(0, 1), eos_id=eos_id,
            logits=torch.stack(out.logits, 1) if out.keep_logits else None, positions=batch.positions,
            control_ids=batch.control_ids, control_probs=out.control_probs[:n_dec].T,
            control_ranks=out.control_ranks[:n_dec].T,
            attention=None if out.attention is None else out.attention[:n_dec].transpose(0, 1),
            context=None if out.context is None else out.context[:n_dec].transpose(0, 1))


@dataclass
class DecodeRecord:
    """What each decoding step read and chose, with the output distribution's statistics (top-k, the control
    token's probability and rank) unless `k` is 0, the fast path for recordings."""

    inputs: Tensor  # [steps, B] the decoder's input token
    outputs: Tensor  # [steps, B] the greedy output
    top_ids: Tensor
    top_probs: Tensor
    control_probs: Tensor
    control_ranks: Tensor
    keep_logits: bool
    logits: list[Tensor]
    n_steps: int = 0
    attention: Tensor | None = None  # [steps, B, S] a decoder's attention weights (made when it first attends)
    context: Tensor | None = None  # [steps, B, H] the context it read

    def put_attention(self, d: int, weights: Tensor | None, context: Tensor) -> None:
        """Decoding step d+1's attention weights (None: a context without attention) and context."""
        steps = self.outputs.shape[0]
        if self.context is None:
            self.context = torch.full((steps, *context.shape), float("nan"))
        self.context[d] = context
        if weights is not None:
            if self.attention is None:
                self.attention = torch.full((steps, *weights.shape), float("nan"))
            self.attention[d] = weights

    @classmethod
    def empty(cls, max_steps: int, batch: int, k: int, keep_logits: bool) -> DecodeRecord:
        return cls(torch.empty(max_steps, batch, dtype=torch.long), torch.empty(max_steps, batch, dtype=torch.long),
                   torch.empty(max_steps, batch, k, dtype=torch.long), torch.empty(max_steps, batch, k),
                   torch.full((max_steps, batch), float("nan")), torch.full((max_steps, batch), -1, dtype=torch.long),
                   keep_logits, [])

    def put(self, d: int, logits: Tensor, control_ids: Tensor) -> Tensor:
        """Decoding step d+1's logits: record them and return the greedy tokens."""
        if self.top_ids.shape[-1]:
            top_l, self.top_ids[d] = logits.topk(self.top_ids.shape[-1], -1)
            lse = logits.logsumexp(-1, keepdim=True)
            self.top_probs[d] = (top_l - lse).exp()
            cl = logits.gather(1, control_ids[:, None])
            self.control_probs[d] = (cl - lse).exp()[:, 0]
            self.control_ranks[d] = (logits > cl).sum(-1)
            tok = self.top_ids[d, :, 0]
        else:
            tok = logits.argmax(-1)
        if self.keep_logits:
            self.logits.append(logits)
        self.outputs[d] = tok
        self.n_steps = d + 1
        return tok
