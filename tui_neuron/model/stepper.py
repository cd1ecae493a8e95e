"""The instrumented stepper: one engine that encodes and decodes a batch one timestep at a time.

It recomputes the GRU / LSTM equations from the checkpoint's weights (torch's gate
order: GRU r,z,n; LSTM i,f,g,o) so every gate is visible, reproduces nn.GRU /
nn.LSTM to float precision, and applies interventions at named hook points
(`hook_points`): a gate where the step forms it, h or c right after the step computes
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
from .decoders import ATTENTION_HOOK, CONTEXT_HOOK, DecoderShape, Memory, PlainDecoder, make_decoder
from .examples import ControlSignal, Example, example_from_text, make_example
from .interventions import GATE_HOOKS, INPUT_HOOK, Intervention
from .recorder import Batch, DecodeRecord, Recorder, States
from .run_context import Needs, RunContext, edit_started_rows
from .seq2seq import Seq2Seq
from .tokenizer import Vocab
from .trace import Trace


def hook_points(cell: str, attention: bool = False, context: bool = False) -> tuple[str, ...]:
    """The named points a run records and an intervention can act on (TransformerLens-style names); a decoder
    that attends adds its weights and context, one that reads the encoder's final state at every step its
    context."""
    gates = tuple(f"decoder.{g}" for g in GATE_HOOKS[cell])
    step = (*((f"decoder.{ATTENTION_HOOK}",) if attention else ()), *((f"decoder.{CONTEXT_HOOK}",) if context else ()))
    return ("encoder.h", *(("encoder.c",) if cell == "lstm" else ()), "decoder.input", *step, *gates, "decoder.h",
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
        self.arch = self.config.architecture
        self.w = {part: [LayerWeights.of(p, part, k) for k in range(self.n_layers)] for part in ("encoder", "decoder")}
        self.w_reverse = [LayerWeights.of(p, "encoder", k, "_reverse") for k in range(self.n_layers)] \
            if self.arch.bidirectional else []
        source = model.source_embedding.weight.detach().float()
        # the first layer's input projection of every source entry, once: an encoder step then gathers rows
        self.in_proj = {"encoder": self.w["encoder"][0].input_projection(source)}
        if self.w_reverse:
            self.in_proj["encoder_reverse"] = self.w_reverse[0].input_projection(source)
        self.bridge = (p["bridge.weight"].t(), p["bridge.bias"]) if self.arch.bridge == "linear_tanh" else None
        self.pad_gates = [self._gates_before_source(k) for k in range(self.n_layers)]
        self.shape: DecoderShape = make_decoder(self.arch, p, model.target_embedding.weight.detach().float(),
                                                self.w["decoder"][0], self.n_layers - 1)

    def plain_decoder(self, what: str) -> PlainDecoder:
        """The plain shape's decoder, for code that replays its steps by hand (gradients, logits from recorded
        h); `what` names that code in the refusal a wired decoder gets."""
        self.model.require_plain(what)
        assert isinstance(self.shape, PlainDecoder)
        return self.shape

    def _gates_before_source(self, layer: int) -> tuple[Tensor, ...]:
        """Layer `layer`'s encoder gates on left padding (the pad token, a zero state): one value for every row."""
        w, h = self.w["encoder"][layer], torch.zeros(1, self.config.encoder_hidden)
        x = self.in_proj["encoder"][self.vocab.src.pad_id][None] if layer == 0 else \
            w.input_projection(torch.zeros(1, self.hidden))
        return tuple(g[0] for g in step(self.config.cell, w, x, h, h)[2])

    # ------------------------------------------------------------------ examples

    def example(self, source: str, controls: Sequence[ControlSignal | str]) -> Example:
        parsed = [c if isinstance(c, ControlSignal) else ControlSignal.parse(c) for c in controls]
        return make_example(self.vocab, source, parsed)

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
        for iv in interventions:
            iv.check(self.config.cell, self.hidden, self.n_layers, self.arch)
        max_steps = max_steps or self.config.max_len + 2
        batch = Batch.of(examples, self.vocab)
        ctx = self._context(batch, interventions, max_steps)
        states = States.zeros(self.n_layers, batch.size, self.hidden, self.config.cell == "lstm")
        rec = Recorder.empty(batch.n_enc + max_steps, self.n_layers, batch.size, self.hidden,
                             self.config.gate_names if record_gates else (), states.lstm)
        memory = self._encode_bidirectional(batch, ctx, states, rec) if self.arch.bidirectional else \
            self._encode(batch, ctx, states, rec)
        out = self._decode(batch, ctx, states, memory, max_steps, topk, keep_logits, stop_at_eos, rec)
        trace = rec.trace(self.config.cell, batch, out, self.vocab.eos_id)
        layer = self.view_layer if layer is None else layer
        return trace if layer is None else trace.for_layer(layer)

    def _context(self, batch: Batch, interventions: Sequence[Intervention], max_steps: int) -> RunContext:
        """Ask each intervention what it reads, make those runs, and index where each one fires."""
        needs = Needs()
        for iv in interventions:
            iv.prepare(needs)

        def run_clean(gates: bool) -> tuple[Trace, Tensor]:
            first: dict[int, int] = {}
            rows = torch.tensor([first.setdefault(id(e), len(first)) for e in batch.examples])
            unique = list({id(e): e for e in batch.examples}.values())
            return self.run(unique, (), max_steps, record_gates=gates, topk=0, stop_at_eos=False), rows

        def run_other(text: str, gates: bool) -> Trace:
            other = self._example_from_text(text)
            return self.run([other], (), max_steps, record_gates=gates, topk=0, stop_at_eos=False)

        ctx = RunContext(interventions, batch.positions, self.vocab.word_ids, self.n_layers)
        ctx.plan(needs, run_clean, run_other)
        ctx.check_steps(batch.enc_lens, max_steps)
        return ctx

    def _layers_step(self, part: str, s: int, t: int, x0: Tensor, rows: Tensor | None, ctx: RunContext,
                     states: States, rec: Recorder, keep: Tensor | None = None) -> None:
        """One step through every layer, bottom up, with each layer's hook points; layer k reads layer k-1's h
        after its interventions. `x0`: layer 0's input projection. `rows`: the only rows that have started
        reading their source (None: all); the rest keep their state, as packing leaves it, and record the
        padding's gates. `keep` ([B,1] bool): every row is computed and only these take the new state."""
        below, h, c, B = x0, states.h, states.c, states.batch
        for k, w in enumerate(self.w[part]):
            ctx.layer, ctx.t = k, t
            hk = h[k] if rows is None else h[k][rows]
            ck = c[k] if rows is None or c[k] is None else c[k][rows]  # type: ignore[index]
            x_proj = below if k == 0 else w.input_projection(below)
            edit, edited = (ctx.edit_gate if ctx.gate_hooks(k) else None), dict[str, Tensor]()
            if edit is not None and rows is not None:  # the edit sees (and may change) every row's gate
                edit = functools.partial(edit_started_rows, edit, rows, B,
                                         dict(zip(self.config.gate_names, self.pad_gates[k])), edited)
            h_new, c_new, gates = step(self.config.cell, w, x_proj, hk, ck, edit)
            if rows is not None:
                h_new = h[k].index_copy(0, rows, h_new)
                c_new = None if c_new is None else c[k].index_copy(0, rows, c_new)  # type: ignore[union-attr]
            if keep is not None:
                h_new = torch.where(keep, h_new, h[k])
                c_new = None if c_new is None else torch.where(keep, c_new, c[k])  # type: ignore[arg-type]
            h[k] = ctx.apply(k, "h", h_new)
            c[k] = None if c_new is None else ctx.apply(k, "c", c_new)
            below = h[k] if rows is None else h[k][rows]
            rec.put(s, k, h[k], c[k], gates, self.pad_gates[k], rows, edited)

    def _encode(self, batch: Batch, ctx: RunContext, states: States, rec: Recorder) -> Memory | None:
        """Every encoder step. Steps before t=0 that no intervention reaches are the same for repeated sources
        (an analysis's manipulations): those are encoded once per distinct source and copied. Returns what a
        wired decoder reads (None for the plain shape, which reads only the final state)."""
        S = batch.n_enc
        shared = S - 1 if ctx.first_step() >= 0 and batch.size > 1 else 0
        if shared:
            uniq, inverse = torch.unique(batch.ids[:, :shared], dim=0, return_inverse=True)
            if uniq.shape[0] < batch.size:
                self._encode_once(batch, uniq, inverse, states, rec)
            else:  # all distinct (a recording): copying rows back would only cost
                shared = 0
        self._encode_steps(batch, range(shared, S), ctx, states, rec)
        if not self.shape.reads_memory:
            return None
        return self._memory(rec.h[:S, self.n_layers - 1].transpose(0, 1), batch, states.h[-1])

    def _memory(self, outputs: Tensor, batch: Batch, initial: Tensor) -> Memory:
        """The encoder's top-layer states `outputs` [B,S,H] (left-padded) as the decoder reads them: column j is
        each row's j-th source token."""
        S, lens = batch.n_enc, batch.enc_lens[:, None]
        j = torch.arange(S)[None]
        index = (S - lens + j).clamp(max=S - 1)
        states = outputs.gather(1, index[:, :, None].expand(-1, -1, outputs.shape[-1]))
        return Memory(states, j < lens, initial)

    def _encode_bidirectional(self, batch: Batch, ctx: RunContext, states: States, rec: Recorder) -> Memory:
        """Both directions, layer by layer (a layer reads the one below in both directions); each step records
        [forward; backward] as torch's bidirectional module outputs it. The bridge then starts the decoder."""
        if ctx.first_step() < 1:
            raise UserError("interventions on a bidirectional encoder's steps (t ≤ 0) are not supported yet; act on "
                            "decoding steps, the attention or the context")
        finals: list[list[tuple[Tensor, Tensor | None]]] = []
        below: Tensor | None = None
        for k in range(self.n_layers):
            runs = [self._encode_direction(batch, k, reverse, below) for reverse in (False, True)]
            below = torch.cat([runs[0][0], runs[1][0]], -1)
            c_both = None if runs[0][1] is None else torch.cat([runs[0][1], runs[1][1]], -1)  # type: ignore[list-item]
            gates = [torch.cat([f, b], -1) for f, b in zip(runs[0][2], runs[1][2])]
            for s in range(batch.n_enc):
                at_s = [g[:, s] for g in gates]
                rec.put(s, k, below[:, s], None if c_both is None else c_both[:, s], at_s, at_s, None, {})
            finals.append([runs[0][3], runs[1][3]])
        self._bridge(finals, states)
        assert below is not None
        return self._memory(below, batch, states.h[-1])

    def _encode_direction(self, batch: Batch, k: int, reverse: bool, below: Tensor | None
                          ) -> tuple[Tensor, Tensor | None, list[Tensor], tuple[Tensor, Tensor | None]]:
        """Layer k of one direction over the whole source: its states [B,S,He], cell states, gates and final
        state. Left padding leaves the state as it was, as packing does."""
        w = (self.w_reverse if reverse else self.w["encoder"])[k]
        if below is None:
            gi = self.in_proj["encoder_reverse" if reverse else "encoder"][batch.ids]
        else:
            gi = torch.matmul(below, w.w_ih_t) + w.b_ih
        B, S, He = batch.size, batch.n_enc, self.config.encoder_hidden
        h = torch.zeros(B, He)
        c = torch.zeros(B, He) if self.config.cell == "lstm" else None
        hs, cs = torch.empty(B, S, He), torch.empty(B, S, He) if c is not None else None
        gates = [torch.empty(B, S, He) for _ in self.config.gate_names]
        for s in reversed(range(S)) if reverse else range(S):
            h_new, c_new, g = step(self.config.cell, w, gi[:, s], h, c)
            keep = batch.valid[:, s : s + 1]
            h = torch.where(keep, h_new, h)
            c = None if c is None else torch.where(keep, c_new, c)  # type: ignore[arg-type]
            hs[:, s] = h
            if cs is not None:
                cs[:, s] = c  # type: ignore[assignment]
            for buf, value in zip(gates, g):
                buf[:, s] = value
        return hs, cs, gates, (h, c)

    def _bridge(self, finals: list[list[tuple[Tensor, Tensor | None]]], states: States) -> None:
        """The decoder's initial states from each layer's final [forward; backward] states: joined (concat) or
        through tanh(W [fwd; bwd] + b) (linear_tanh, one layer)."""
        for k, ((h_f, c_f), (h_b, c_b)) in enumerate(finals):
            h = torch.cat([h_f, h_b], -1)
            if self.bridge is not None:
                h = torch.tanh(torch.addmm(self.bridge[1], h, self.bridge[0]))
            states.h[k] = h
            if c_f is not None and c_b is not None:
                states.c[k] = torch.cat([c_f, c_b], -1)

    def _encode_steps(self, batch: Batch, steps: range, ctx: RunContext, states: States, rec: Recorder) -> None:
        """Encoder steps `steps` of `batch`; like packing, a source starts at step S - len, and only the rows
        that have started are computed."""
        gi_all = self.in_proj["encoder"][batch.ids]  # [B,S,G*H]
        started = batch.valid.sum(0).tolist()
        order = torch.argsort(batch.valid.sum(1), descending=True, stable=True)
        for s in steps:
            t = s - (batch.n_enc - 1)
            if started[s] == batch.size:
                self._layers_step("encoder", s, t, gi_all[:, s], None, ctx, states, rec)
            else:
                rows = order[: started[s]]
                self._layers_step("encoder", s, t, gi_all[rows, s], rows, ctx, states, rec)

    def _encode_once(self, batch: Batch, uniq: Tensor, inverse: Tensor, states: States, rec: Recorder) -> None:
        """The first encoder steps (uniq's width) for each distinct source `uniq` once, copied to every row that
        has it (`inverse`: row -> its distinct source)."""
        n_steps = uniq.shape[1]
        valid = torch.zeros(uniq.shape, dtype=torch.bool)
        valid[inverse] = batch.valid[:, :n_steps]
        sub_states = States.zeros(self.n_layers, len(uniq), self.hidden, states.lstm)
        sub_rec = Recorder.empty(n_steps, self.n_layers, len(uniq), self.hidden, rec.gate_names, states.lstm)
        empty = RunContext((), torch.zeros(len(uniq), dtype=torch.long), self.vocab.word_ids, self.n_layers)
        gi = self.in_proj["encoder"][uniq]
        for s in range(n_steps):  # every distinct source at once; padding leaves the state as it was
            self._layers_step("encoder", s, s - (batch.n_enc - 1), gi[:, s], None, empty, sub_states, sub_rec,
                              keep=valid[:, s : s + 1])
        rec.copy_rows(sub_rec, n_steps, inverse)
        states.copy_rows(sub_states, inverse)

    def _decode(self, batch: Batch, ctx: RunContext, states: States, memory: Memory | None, max_steps: int,
                topk: int, keep_logits: bool, stop_at_eos: bool, rec: Recorder) -> DecodeRecord:
        """Greedy decoding: read the input (its hook point), step every layer, make the logits; the decoder
        shape forms what else a step reads (an attention, a context)."""
        top = self.n_layers - 1
        out = DecodeRecord.empty(max_steps, batch.size, min(topk, len(self.vocab)), keep_logits)
        if memory is not None:
            ctx.check_widths(ATTENTION_HOOK, memory.states.shape[1], "source position")
        run = self.shape.begin(memory, ctx, out)  # type: ignore[arg-type]
        tok = torch.full((batch.size,), self.vocab.bos_id, dtype=torch.long)
        finished = torch.zeros(batch.size, dtype=torch.bool)
        for t in range(1, max_steps + 1):
            ctx.t = t
            if ctx.has(top, INPUT_HOOK):
                tok = ctx.apply(top, INPUT_HOOK, tok.clone())
            out.inputs[t - 1] = tok
            self._layers_step("decoder", batch.n_enc + t - 1, t, run.step_input(tok, states.h), None, ctx,
                              states, rec)
            tok = out.put(t - 1, run.logits(states.h), batch.control_ids)
            finished |= tok == self.vocab.eos_id
            if stop_at_eos and bool(finished.all()):
                break
        return out

    def _example_from_text(self, text: str) -> Example:
        return example_from_text(self.vocab, text, "swap source")

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
