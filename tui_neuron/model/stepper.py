"""The instrumented stepper: one engine that encodes and decodes a batch one timestep at a time.

It recomputes the GRU / LSTM equations from the checkpoint's weights (torch's gate
order: GRU r,z,n; LSTM i,f,g,o) so every gate is visible, reproduces nn.GRU /
nn.LSTM to float precision, and applies interventions to h (or c) right after a
step computes it, before the logits and the next step read it.

Time: t<0 encoding, t=0 the last source token (end of encoding), t>=1 decoding,
where decoding step t emits output token t. Sources are left-padded (pad steps
leave the state unchanged) so that t lines up across a batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from ..errors import UserError
from .data import ControlSignal, Example, make_example
from .interventions import (
    CopyFromRun,
    CopyFromStep,
    Intervention,
    KeepOnly,
    RandomInput,
    SetValue,
    StepRef,
)
from .seq2seq import Seq2Seq
from .tokenizer import BOS_ID, EOS_ID, PAD_ID, Vocab, tokenize


@dataclass
class Trace:
    """Everything one run computed, indexed [example, step index, neuron]; step index = t + n_enc - 1."""

    cell: str
    n_enc: int
    tokens: Tensor  # [B,S] input token of each step (PAD on left padding)
    valid: Tensor  # [B,S] False on encoder left padding
    h: Tensor  # [B,S,H] after interventions
    gates: dict[str, Tensor]  # name -> [B,S,H]
    c: Tensor | None  # [B,S,H] LSTM cell state
    outputs: Tensor  # [B,D] greedy output token of decoding steps 1..D
    top_ids: Tensor  # [B,D,k]
    top_probs: Tensor  # [B,D,k]
    logits: Tensor | None = None  # [B,D,V] when kept
    positions: Tensor | None = None  # [B] first control position T
    control_ids: Tensor | None = None  # [B] first control token id
    control_probs: Tensor | None = None  # [B,D] probability of the first control token at each decoding step
    control_ranks: Tensor | None = None  # [B,D] its rank (0 = top)

    @property
    def n_dec(self) -> int:
        return self.outputs.shape[1]

    @property
    def times(self) -> np.ndarray:
        return np.arange(-(self.n_enc - 1), self.n_dec + 1)

    def index(self, t: int) -> int:
        i = t + self.n_enc - 1
        if not 0 <= i < self.h.shape[1]:
            raise UserError(f"step {t} is outside this run ({-(self.n_enc - 1)}..{self.n_dec})")
        return i

    def h_at(self, t: int) -> Tensor:
        return self.h[:, self.index(t)]

    def h_prev_at(self, t: int) -> Tensor:
        i = self.index(t)
        return self.h[:, i - 1] if i > 0 else torch.zeros_like(self.h[:, 0])

    def x(self, embedding: Tensor) -> Tensor:
        """x_t, the input embedding of every step [B,S,E] (rows of the checkpoint's embedding)."""
        return embedding[self.tokens]

    def output_ids(self, b: int) -> list[int]:
        ids = self.outputs[b].tolist()
        return ids[: ids.index(EOS_ID)] if EOS_ID in ids else ids


@dataclass
class _Context:
    """What interventions read while a run is in progress."""

    steps_per_example: dict[StepRef, Tensor] = field(default_factory=dict)
    clean: Trace | None = None
    swaps: dict[str, Trace] = field(default_factory=dict)


class Stepper:
    def __init__(self, model: Seq2Seq, vocab: Vocab):
        self.model = model.eval()
        self.vocab = vocab
        self.config = model.config
        h = self.config.hidden
        gates = len(self.config.gate_names)
        self.hidden, self.n_gates = h, gates
        p = {k: v.detach().float() for k, v in model.state_dict().items()}
        self.emb = p["embedding.weight"]
        self.w = {
            # transposed views, not copies: the same BLAS calls as F.linear, so sums run in torch's order
            part: (p[f"{part}.weight_ih_l0"].t(), p[f"{part}.bias_ih_l0"],
                   p[f"{part}.weight_hh_l0"].t(), p[f"{part}.bias_hh_l0"])
            for part in ("encoder", "decoder")
        }
        self.w_out, self.b_out = p["output.weight"].t(), p["output.bias"]
        # input projections of every vocabulary entry, once: a step then gathers rows instead of a matmul
        self.in_proj = {part: torch.addmm(w[1], self.emb, w[0]) for part, w in self.w.items()}

    # ------------------------------------------------------------------ cell math

    def _cell(self, part: str, gi: Tensor, h: Tensor, c: Tensor | None):
        """One step given the input projection gi [B,G*H]; returns h, c and the gates."""
        _, _, w_hh, b_hh = self.w[part]
        gh = torch.addmm(b_hh, h, w_hh)
        H = self.hidden
        if self.config.cell == "gru":
            r, z = torch.sigmoid(gi[:, : 2 * H] + gh[:, : 2 * H]).chunk(2, 1)
            n = torch.tanh(gi[:, 2 * H :] + r * gh[:, 2 * H :])
            h_new = n + z * (h - n)
            return h_new, None, (r, z, n)
        a = gi + gh
        i, f = torch.sigmoid(a[:, : 2 * H]).chunk(2, 1)
        g = torch.tanh(a[:, 2 * H : 3 * H])
        o = torch.sigmoid(a[:, 3 * H :])
        c_new = f * c + i * g
        return o * torch.tanh(c_new), c_new, (i, f, g, o)

    # ------------------------------------------------------------------ examples

    def example(self, source: str, controls: Sequence[ControlSignal | str]) -> Example:
        parsed = [c if isinstance(c, ControlSignal) else ControlSignal.parse(c) for c in controls]
        return make_example(self.vocab, source, parsed)

    def _example_from_text(self, text: str) -> Example:
        """A sentence whose trailing WORD@T words are its controls (the swap syntax)."""
        words = text.split()
        controls = []
        while words and "@" in words[-1]:
            controls.insert(0, ControlSignal.parse(words.pop()))
        if not controls:
            raise UserError(f"swap source {text!r} needs control signals at its end, e.g. 'the queen came queen@2'")
        return make_example(self.vocab, " ".join(words), controls)

    # ------------------------------------------------------------------ running

    @torch.no_grad()
    def run(
        self,
        examples: Sequence[Example],
        interventions: Sequence[Intervention] = (),
        max_steps: int | None = None,
        keep_logits: bool = False,
        record_gates: bool = True,
        topk: int = 5,
        stop_at_eos: bool = True,
    ) -> Trace:
        """Encode and greedily decode `examples` as one batch, applying `interventions`.

        topk=0 skips the output distribution statistics (top-k, control probability and rank): the
        fast path for recording many examples.
        """
        if not examples:
            raise UserError("nothing to run: no examples")
        for iv in interventions:
            iv.neurons.check(self.hidden)
            if iv.on_cell and self.config.cell != "lstm":
                raise UserError(f"{iv.spec()}: .c acts on an LSTM's cell state; this model is a GRU")
        max_steps = max_steps or self.config.max_len + 2
        enc = [e.encoder_ids(self.vocab) for e in examples]
        B, S = len(enc), max(map(len, enc))
        ids = torch.full((B, S), PAD_ID, dtype=torch.long)
        for b, e in enumerate(enc):
            ids[b, S - len(e) :] = torch.tensor(e)
        valid_enc = ids != PAD_ID
        positions = torch.tensor([e.controls[0][1] if e.controls else 0 for e in examples])
        control_ids = torch.tensor([e.controls[0][0] if e.controls else 0 for e in examples])

        ctx = _Context()
        needs_clean = any(isinstance(iv, CopyFromStep) for iv in interventions)
        if needs_clean:
            ctx.clean = self.run(examples, (), max_steps, record_gates=False, topk=0, stop_at_eos=False)
        for iv in interventions:
            if isinstance(iv, CopyFromRun) and iv.source_text not in ctx.swaps:
                other = self._example_from_text(iv.source_text)
                ctx.swaps[iv.source_text] = self.run([other], (), max_steps, record_gates=False, topk=0,
                                                     stop_at_eos=False)
            for ref in (iv.step, getattr(iv, "source", None)):
                if isinstance(ref, StepRef) and not ref.every:
                    ctx.steps_per_example[ref] = positions + ref.offset if ref.relative_to_t else torch.full((B,), ref.offset)

        self._check_steps(ctx, torch.tensor([len(e) for e in enc]), max_steps)
        H = self.hidden
        h = torch.zeros(B, H)
        c = torch.zeros(B, H) if self.config.cell == "lstm" else None
        # time-major buffers filled in place: [step, example, neuron]; exposed as [example, step, neuron] views
        n_max = S + max_steps
        h_buf = torch.empty(n_max, B, H)
        c_buf = torch.empty(n_max, B, H) if c is not None else None
        gate_bufs = [torch.empty(n_max, B, H) for _ in self.config.gate_names] if record_gates else []

        def record(s: int, gates) -> None:
            h_buf[s] = h
            if c_buf is not None:
                c_buf[s] = c
            for buf, g in zip(gate_bufs, gates):
                buf[s] = g

        gi_all = self.in_proj["encoder"][ids]  # [B,S,G*H]
        for s in range(S):
            t = s - (S - 1)
            h_new, c_new, gates = self._cell("encoder", gi_all[:, s], h, c)
            m = valid_enc[:, s : s + 1]
            h = torch.where(m, h_new, h)
            if c is not None:
                c = torch.where(m, c_new, c)
            h, c = self._intervene(interventions, ctx, t, h, c, S)
            record(s, gates)

        dec_proj = self.in_proj["decoder"]
        k = min(topk, len(self.vocab))
        tok = torch.full((B,), BOS_ID, dtype=torch.long)
        dec_tok = torch.empty(max_steps, B, dtype=torch.long)
        outs = torch.empty(max_steps, B, dtype=torch.long)
        top_i = torch.empty(max_steps, B, k, dtype=torch.long)
        top_p = torch.empty(max_steps, B, k)
        cprob = torch.full((max_steps, B), float("nan"))
        crank = torch.full((max_steps, B), -1, dtype=torch.long)
        logit_rec = []
        finished = torch.zeros(B, dtype=torch.bool)
        n_dec = 0
        for t in range(1, max_steps + 1):
            d = t - 1
            tok = self._random_inputs(interventions, ctx, t, tok)
            dec_tok[d] = tok
            gi = dec_proj[tok]
            h, c, gates = self._cell("decoder", gi, h, c)
            h, c = self._intervene(interventions, ctx, t, h, c, S)
            record(S + d, gates)
            logits = torch.addmm(self.b_out, h, self.w_out)
            if k:
                top_l, top_i[d] = logits.topk(k, -1)
                lse = logits.logsumexp(-1, keepdim=True)
                top_p[d] = (top_l - lse).exp()
                cl = logits.gather(1, control_ids[:, None])
                cprob[d] = (cl - lse).exp()[:, 0]
                crank[d] = (logits > cl).sum(-1)
                tok = top_i[d, :, 0]
            else:  # recording mode: greedy output only, no distribution statistics
                tok = logits.argmax(-1)
            if keep_logits:
                logit_rec.append(logits)
            outs[d] = tok
            n_dec = t
            finished |= tok == EOS_ID
            if stop_at_eos and bool(finished.all()):
                break

        n = S + n_dec
        gates_out = {name: buf[:n].transpose(0, 1) for name, buf in zip(self.config.gate_names, gate_bufs)}
        return Trace(
            cell=self.config.cell,
            n_enc=S,
            tokens=torch.cat([ids, dec_tok[:n_dec].T], 1),
            valid=torch.cat([valid_enc, torch.ones(B, n_dec, dtype=torch.bool)], 1),
            h=h_buf[:n].transpose(0, 1),
            gates=gates_out,
            c=c_buf[:n].transpose(0, 1) if c_buf is not None else None,
            outputs=outs[:n_dec].T,
            top_ids=top_i[:n_dec].transpose(0, 1),
            top_probs=top_p[:n_dec].transpose(0, 1),
            logits=torch.stack(logit_rec, 1) if keep_logits else None,
            positions=positions,
            control_ids=control_ids,
            control_probs=cprob[:n_dec].T,
            control_ranks=crank[:n_dec].T,
        )

    @staticmethod
    def _check_steps(ctx: _Context, enc_lens: Tensor, max_steps: int) -> None:
        """An intervention whose step falls outside every example's run would change nothing: say so."""
        first = 1 - enc_lens  # each example's first encoder step
        for ref, steps in ctx.steps_per_example.items():
            if not bool(((steps >= first) & (steps <= max_steps)).any()):
                at = f" (= {int(steps[0])})" if ref.relative_to_t and len(steps) == 1 else ""
                raise UserError(f"step {ref}{at} is outside this run: its steps go from {int(first.max())} "
                                f"(the first source word) to {max_steps} (the last decoding step)")

    def _rows(self, iv: Intervention, ctx: _Context, t: int) -> Tensor | None:
        """Which examples this intervention hits at step t (None: none)."""
        if iv.step.every:
            return slice(None) if t >= 1 else None  # type: ignore[return-value]
        rows = ctx.steps_per_example[iv.step] == t
        return rows if bool(rows.any()) else None

    def _intervene(self, interventions, ctx: _Context, t: int, h: Tensor, c: Tensor | None, n_enc: int):
        for iv in interventions:
            if isinstance(iv, RandomInput):
                continue
            rows = self._rows(iv, ctx, t)
            if rows is None:
                continue
            target = c if iv.on_cell else h
            target = target.clone()
            cols = slice(None) if iv.neurons.indices is None else list(iv.neurons.indices)
            sel = target[rows]
            if isinstance(iv, SetValue):
                sel[:, cols] = iv.value
            elif isinstance(iv, KeepOnly):
                kept = sel[:, cols].clone()
                sel.zero_()
                sel[:, cols] = kept
            elif isinstance(iv, CopyFromStep):
                src_t = ctx.steps_per_example[iv.source] if not iv.source.every else None
                if src_t is None:
                    raise UserError(f"{iv.spec()}: the source step cannot be *")
                idx = (src_t + ctx.clean.n_enc - 1)[rows] if isinstance(rows, Tensor) else src_t + ctx.clean.n_enc - 1
                if bool((idx < 0).any()) or bool((idx >= ctx.clean.h.shape[1]).any()):
                    raise UserError(f"{iv.spec()}: the source step is outside the run")
                state = ctx.clean.c if iv.on_cell else ctx.clean.h
                b_idx = torch.arange(h.shape[0])[rows]
                sel[:, cols] = state[b_idx, idx][:, cols]
            elif isinstance(iv, CopyFromRun):
                other = ctx.swaps[iv.source_text]
                state = other.c if iv.on_cell else other.h
                i = t + other.n_enc - 1
                if not 0 <= i < state.shape[1]:
                    raise UserError(f"{iv.spec()}: step {t} is outside the other source's run")
                sel[:, cols] = state[0, i][cols]
            target[rows] = sel
            if iv.on_cell:
                c = target
            else:
                h = target
        return h, c

    def _random_inputs(self, interventions, ctx: _Context, t: int, tok: Tensor) -> Tensor:
        for iv in interventions:
            if not isinstance(iv, RandomInput):
                continue
            if iv.step.every and t == 1:
                continue  # keep <bos>: the paper replaces the inputs after it
            rows = self._rows(iv, ctx, t)
            if rows is None:
                continue
            gen = torch.Generator().manual_seed(iv.seed * 100_003 + t)
            rand = torch.randint(self.vocab.first_word_id, len(self.vocab), (tok.shape[0],), generator=gen)
            tok = tok.clone()
            tok[rows] = rand[rows]
        return tok

    def run_batched(self, examples: Sequence[Example], interventions: Sequence[Intervention] = (),
                    batch_size: int = 1024, **kw) -> list[Trace]:
        return [self.run(examples[i : i + batch_size], interventions, **kw) for i in range(0, len(examples), batch_size)]


def decode_examples(model: Seq2Seq, vocab: Vocab, examples: Sequence[Example],
                    interventions: Sequence[Intervention] = (), batch_size: int = 1024) -> list[list[int]]:
    """Greedy outputs (up to <eos>) for many examples, through the stepper without recording gates."""
    stepper = Stepper(model, vocab)
    out: list[list[int]] = []
    for trace in stepper.run_batched(examples, interventions, batch_size, record_gates=False, topk=0):
        out += [trace.output_ids(b) for b in range(trace.outputs.shape[0])]
    return out


def source_tokens(vocab: Vocab, source: str) -> list[str]:
    """The tokens the model sees for a typed source (unknown words shown as <unk>)."""
    return vocab.decode(vocab.encode(tokenize(source)))
