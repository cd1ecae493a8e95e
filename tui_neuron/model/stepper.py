"""The instrumented stepper: one engine that encodes and decodes a batch one timestep at a time.

It recomputes the GRU / LSTM equations from the checkpoint's weights (torch's gate
order: GRU r,z,n; LSTM i,f,g,o) so every gate is visible, reproduces nn.GRU /
nn.LSTM to float precision, and applies interventions at named hook points
(HOOK_POINTS): a gate where the step forms it, h or c right after the step computes
them (before the logits and the next step read them), the decoder's input token
before the step.

Time: t<0 encoding, t=0 the last source token (end of encoding), t>=1 decoding,
where decoding step t emits output token t. Sources are left-padded (pad steps
leave the state unchanged) so that t lines up across a batch.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import torch
from torch import Tensor

from ..errors import UserError
from .cell import LayerWeights, step
from .examples import ControlSignal, Example, make_example, split_controls
from .interventions import GATE_HOOKS, CopyFromRun, CopyFromStep, Intervention, RandomInput, StepRef
from .run_context import RunContext, edit_started_rows
from .seq2seq import Seq2Seq
from .tokenizer import Vocab
from .trace import Trace


def hook_points(cell: str) -> tuple[str, ...]:
    """The named points a run records and an intervention can act on (TransformerLens-style names)."""
    gates = tuple(f"decoder.{g}" for g in GATE_HOOKS[cell])
    return ("encoder.h", *(("encoder.c",) if cell == "lstm" else ()), "decoder.input", *gates, "decoder.h",
            *(("decoder.c",) if cell == "lstm" else ()), "output.logits")


class Stepper:
    def __init__(self, model: Seq2Seq, vocab: Vocab, layer: int | None = None):
        """`layer`: the layer traces view by default (None: the top one); every layer is recorded anyway."""
        self.model = model.eval()
        self.view_layer = layer
        self.vocab = vocab
        self.config = model.config
        self.hidden, self.n_gates = self.config.hidden, len(self.config.gate_names)
        self.n_layers = self.config.layers
        p = {k: v.detach().float() for k, v in model.state_dict().items()}
        self.w = {part: [LayerWeights.of(p, part, k) for k in range(self.n_layers)] for part in ("encoder", "decoder")}
        self.w_out, self.b_out = p["output.weight"].t(), p["output.bias"]
        emb = {"encoder": model.source_embedding.weight.detach().float(),
               "decoder": model.target_embedding.weight.detach().float()}
        # the first layer's input projection of every vocabulary entry, once: a step then gathers rows
        self.in_proj = {part: w[0].input_projection(emb[part]) for part, w in self.w.items()}
        self.pad_gates = [self._gates_before_source(k) for k in range(self.n_layers)]

    def _gates_before_source(self, layer: int) -> tuple[Tensor, ...]:
        """Layer `layer`'s encoder gates on left padding (the pad token, a zero state): one value for every row."""
        w, zero = self.w["encoder"][layer], torch.zeros(1, self.hidden)
        x = self.in_proj["encoder"][self.vocab.pad_id][None] if layer == 0 else w.input_projection(zero)
        return tuple(g[0] for g in step(self.config.cell, w, x, zero, zero)[2])

    # ------------------------------------------------------------------ examples

    def example(self, source: str, controls: Sequence[ControlSignal | str]) -> Example:
        parsed = [c if isinstance(c, ControlSignal) else ControlSignal.parse(c) for c in controls]
        return make_example(self.vocab, source, parsed)

    def _example_from_text(self, text: str) -> Example:
        """A sentence whose trailing WORD@T words are its controls (the swap syntax)."""
        source, controls = split_controls(text)
        if not controls:
            raise UserError(f"swap source {text!r} needs control signals at its end, e.g. 'the queen came queen@2'")
        return make_example(self.vocab, source, controls)

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
        layer: int | None = None,
    ) -> Trace:
        """Encode and greedily decode `examples` as one batch, applying `interventions`.

        topk=0 skips the output distribution statistics (top-k, control probability and rank): the
        fast path for recording many examples. `layer` picks the layer the trace views (default: the top).
        """
        if not examples:
            raise UserError("nothing to run: no examples")
        L = self.n_layers
        for iv in interventions:
            iv.check(self.config.cell, self.hidden, L)
        max_steps = max_steps or self.config.max_len + 2
        vocab = self.vocab
        enc = [e.encoder_ids(vocab) for e in examples]
        ids, valid_enc = left_padded(enc, vocab.pad_id)
        B, S = ids.shape
        positions = torch.tensor([e.controls[0][1] if e.controls else 0 for e in examples])
        control_ids = torch.tensor([e.controls[0][0] if e.controls else 0 for e in examples])

        ctx = RunContext(this_positions=positions)
        if any(isinstance(iv, CopyFromStep) for iv in interventions):
            first: dict[int, int] = {}
            ctx.clean_rows = torch.tensor([first.setdefault(id(e), len(first)) for e in examples])
            unique = list({id(e): e for e in examples}.values())
            gates = any(iv.on_gate for iv in interventions if isinstance(iv, CopyFromStep))
            ctx.clean = self.run(unique, (), max_steps, record_gates=gates, topk=0, stop_at_eos=False)
        for iv in interventions:
            if isinstance(iv, CopyFromRun) and iv.source_text not in ctx.swaps:
                other = self._example_from_text(iv.source_text)
                ctx.swaps[iv.source_text] = self.run([other], (), max_steps, record_gates=iv.on_gate, topk=0,
                                                     stop_at_eos=False)
            for ref in (iv.step, getattr(iv, "source", None)):
                if isinstance(ref, StepRef) and not ref.every:
                    ctx.steps_per_example[ref] = positions + ref.offset if ref.relative_to_t else torch.full((B,), ref.offset)
        self._check_steps(ctx, torch.tensor([len(e) for e in enc]), max_steps)
        for iv in interventions:
            if iv.neurons.indices is not None:
                ctx.columns[id(iv)] = torch.tensor(iv.neurons.indices, dtype=torch.long)
            if iv.rows is not None:
                mask = torch.zeros(B, dtype=torch.bool)
                mask[list(iv.rows)] = True
                ctx.row_masks[id(iv)] = mask
            if not iv.step.every:
                fire = ctx.steps_per_example[iv.step]
                if id(iv) in ctx.row_masks:
                    fire = fire[ctx.row_masks[id(iv)]]
                ctx.schedule[id(iv)] = set(fire.tolist())
        by_layer = [[iv for iv in interventions if not isinstance(iv, RandomInput) and (
            iv.layer if iv.layer is not None else L - 1) == k] for k in range(L)]
        gate_ivs = [[iv for iv in ivs if iv.on_gate] for ivs in by_layer]
        state_ivs = [[iv for iv in ivs if not iv.on_gate] for ivs in by_layer]
        gate_edits = [functools.partial(ctx.edit_gate, ivs) if ivs else None for ivs in gate_ivs]
        # steps before t=0 that no intervention touches are the same for repeated sources: encode those once
        first_fire = min((min(ctx.schedule[id(iv)], default=1) if not iv.step.every else 1)
                         for iv in interventions) if interventions else 1

        H, lstm = self.hidden, self.config.cell == "lstm"
        h: list[Tensor] = [torch.zeros(B, H) for _ in range(L)]
        c: list[Tensor | None] = [torch.zeros(B, H) if lstm else None for _ in range(L)]
        # time-major buffers filled in place: [step, layer, example, neuron]; exposed as [example, step, neuron] views
        n_max = S + max_steps
        h_buf = torch.empty(n_max, L, B, H)
        c_buf = torch.empty(n_max, L, B, H) if lstm else None
        gate_bufs = [torch.empty(n_max, L, B, H) for _ in self.config.gate_names] if record_gates else []

        def advance(part: str, s: int, t: int, gi0: Tensor, rows: Tensor | None) -> None:
            """One step through every layer, bottom up: layer k reads layer k-1's state after its interventions.

            `rows`: the only rows that have started reading their source (None: all); the rest keep their state,
            as packing leaves it, and record the padding's gates.
            """
            below = gi0  # layer 0's input projection; above it, the layer below's h
            for k, w in enumerate(self.w[part]):
                ctx.layer, ctx.t = k, t
                ck = c[k] if rows is None or c[k] is None else c[k][rows]  # type: ignore[index]
                hk = h[k] if rows is None else h[k][rows]
                x_proj = below if k == 0 else w.input_projection(below)
                edit, edited = gate_edits[k], dict[str, Tensor]()
                if edit is not None and rows is not None:  # the edit sees (and may change) every row's gate
                    edit = functools.partial(edit_started_rows, gate_edits[k], rows, B,
                                             dict(zip(self.config.gate_names, self.pad_gates[k])), edited)
                h_new, c_new, gates = step(self.config.cell, w, x_proj, hk, ck, edit)
                if rows is not None:
                    h_new = h[k].index_copy(0, rows, h_new)
                    c_new = None if c_new is None else c[k].index_copy(0, rows, c_new)  # type: ignore[union-attr]
                h[k], c[k] = ctx.intervene(state_ivs[k], h_new, c_new)
                below = h[k] if rows is None else h[k][rows]
                h_buf[s, k] = h[k]
                if c_buf is not None:
                    c_buf[s, k] = c[k]  # type: ignore[assignment]
                for buf, g, pad, name in zip(gate_bufs, gates, self.pad_gates[k], self.config.gate_names):
                    if rows is None or name in edited:
                        buf[s, k] = edited.get(name, g)
                    else:
                        buf[s, k] = pad
                        buf[s, k].index_copy_(0, rows, g)

        shared = S - 1 if first_fire >= 0 and B > 1 else 0  # encoder steps t < 0 that no intervention reaches
        if shared:
            uniq, inverse = torch.unique(ids[:, :shared], dim=0, return_inverse=True)
            if uniq.shape[0] < B:  # repeated sources (an analysis's manipulations): encode each once
                _encode_unique(self, uniq, inverse, valid_enc, h, c, h_buf, c_buf, gate_bufs)
            else:  # all distinct (a recording): copying rows back would only cost
                shared = 0
        gi_all = self.in_proj["encoder"][ids]  # [B,S,G*H]
        # like packing: a source starts at step S - len, and only rows that have started are computed
        started = valid_enc.sum(0).tolist()
        order = torch.argsort(valid_enc.sum(1), descending=True, stable=True)
        for s in range(shared, S):
            if started[s] == B:
                advance("encoder", s, s - (S - 1), gi_all[:, s], None)
            else:
                rows = order[: started[s]]
                advance("encoder", s, s - (S - 1), gi_all[rows, s], rows)

        dec_proj = self.in_proj["decoder"]
        k_top = min(topk, len(vocab))
        tok = torch.full((B,), vocab.bos_id, dtype=torch.long)
        dec_tok = torch.empty(max_steps, B, dtype=torch.long)
        outs = torch.empty(max_steps, B, dtype=torch.long)
        top_i = torch.empty(max_steps, B, k_top, dtype=torch.long)
        top_p = torch.empty(max_steps, B, k_top)
        cprob = torch.full((max_steps, B), float("nan"))
        crank = torch.full((max_steps, B), -1, dtype=torch.long)
        logit_rec = []
        finished = torch.zeros(B, dtype=torch.bool)
        n_dec = 0
        for t in range(1, max_steps + 1):
            d = t - 1
            tok = ctx.random_inputs(interventions, t, tok, self.vocab.word_ids)
            dec_tok[d] = tok
            advance("decoder", S + d, t, dec_proj[tok], None)
            logits = torch.addmm(self.b_out, h[-1], self.w_out)
            if k_top:
                top_l, top_i[d] = logits.topk(k_top, -1)
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
            finished |= tok == vocab.eos_id
            if stop_at_eos and bool(finished.all()):
                break

        n = S + n_dec
        layer_h = tuple(h_buf[:n, k].transpose(0, 1) for k in range(L))
        layer_c = tuple(c_buf[:n, k].transpose(0, 1) if c_buf is not None else None for k in range(L))
        layer_gates = tuple({name: buf[:n, k].transpose(0, 1) for name, buf in zip(self.config.gate_names, gate_bufs)}
                            for k in range(L))
        trace = Trace.of_layers(
            self.config.cell, ids, valid_enc, dec_tok[:n_dec].T, layer_h, layer_c, layer_gates,
            outputs=outs[:n_dec].T, top_ids=top_i[:n_dec].transpose(0, 1), top_probs=top_p[:n_dec].transpose(0, 1),
            eos_id=vocab.eos_id, logits=torch.stack(logit_rec, 1) if keep_logits else None, positions=positions,
            control_ids=control_ids, control_probs=cprob[:n_dec].T, control_ranks=crank[:n_dec].T)
        layer = self.view_layer if layer is None else layer
        return trace if layer is None else trace.for_layer(layer)

    @staticmethod
    def _check_steps(ctx: RunContext, enc_lens: Tensor, max_steps: int) -> None:
        """An intervention whose step falls outside every example's run would change nothing: say so."""
        first = 1 - enc_lens  # each example's first encoder step
        for ref, steps in ctx.steps_per_example.items():
            if not bool(((steps >= first) & (steps <= max_steps)).any()):
                at = f" (= {int(steps[0])})" if ref.relative_to_t and len(steps) == 1 else ""
                raise UserError(f"step {ref}{at} is outside this run: its steps go from {int(first.max())} "
                                f"(the first source word) to {max_steps} (the last decoding step)")

    def run_batched(self, examples: Sequence[Example], interventions: Sequence[Intervention] = (),
                    batch_size: int = 1024, **kw) -> list[Trace]:
        return [self.run(examples[i : i + batch_size], interventions, **kw) for i in range(0, len(examples), batch_size)]


def _encode_unique(stepper: Stepper, uniq: Tensor, inverse: Tensor, valid: Tensor, h: list[Tensor],
                   c: list[Tensor | None], h_buf: Tensor, c_buf: Tensor | None, gate_bufs: list[Tensor]) -> None:
    """The first encoder steps (uniq's width) for each distinct source `uniq` once, copied to every row that
    has it (`inverse`: row -> its distinct source)."""
    U, n_steps = uniq.shape
    hu = [torch.zeros(U, stepper.hidden) for _ in range(stepper.n_layers)]
    cu = [torch.zeros(U, stepper.hidden) if x is not None else None for x in c]
    valid_u = torch.zeros(U, n_steps, dtype=torch.bool)
    valid_u[inverse] = valid[:, :n_steps]
    gi = stepper.in_proj["encoder"][uniq]
    for s in range(n_steps):
        mask = valid_u[:, s : s + 1]
        for k, w in enumerate(stepper.w["encoder"]):
            x_proj = gi[:, s] if k == 0 else w.input_projection(hu[k - 1])
            h_new, c_new, gates = step(stepper.config.cell, w, x_proj, hu[k], cu[k])
            hu[k] = torch.where(mask, h_new, hu[k])
            if c_new is not None:
                cu[k] = torch.where(mask, c_new, cu[k])  # type: ignore[arg-type]
            h_buf[s, k] = hu[k][inverse]
            if c_buf is not None:
                c_buf[s, k] = cu[k][inverse]  # type: ignore[index]
            for buf, g in zip(gate_bufs, gates):
                buf[s, k] = g[inverse]
    for k in range(stepper.n_layers):
        h[k] = hu[k][inverse]
        if c[k] is not None:
            c[k] = cu[k][inverse]  # type: ignore[index]


def left_padded(rows: Sequence[Sequence[int]], pad_id: int) -> tuple[Tensor, Tensor]:
    """Token rows as one [B,S] batch padded on the left (so the last source token is at t=0), and where it is valid."""
    lens = torch.tensor([len(r) for r in rows])
    valid = torch.arange(int(lens.max()))[None] >= (lens.max() - lens)[:, None]
    ids = torch.full(valid.shape, pad_id, dtype=torch.long)
    ids[valid] = torch.tensor([i for r in rows for i in r], dtype=torch.long)  # row-major: each row's tokens in order
    return ids, valid


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
    return vocab.decode(vocab.encode(vocab.tokenize(source)))
