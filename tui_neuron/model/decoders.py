"""Decoder shapes: what a decoding step reads besides its own state, and what its output layer reads.

The stepper's loop is the same for every shape: read the decoder input, run each layer's cell at its hook
points, run the output. A shape is the small object that says how the input is formed and how the logits are
made, so a decoder that also reads an attention context plugs in here without touching the loop. `begin` starts
one run (what it reads from the encoder, where it records, the run's hook points) and returns the object whose
`step_input` and `logits` the loop calls.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Protocol

import torch
from torch import Tensor

from .cell import LayerWeights
from .config import Architecture

ATTENTION_HOOK, CONTEXT_HOOK = "attention", "context"


@dataclass
class Memory:
    """What the decoder may read from the encoder: its top-layer states left-aligned (column j is the j-th source
    token of each row; columns past a row's length are padding), and the decoder's initial top-layer state."""

    states: Tensor  # [B,S,H]
    valid: Tensor  # [B,S]
    initial: Tensor  # [B,H]


class StepHooks(Protocol):
    """The run's hook points as a decoder shape sees them (run_context.RunContext)."""

    t: int

    def apply(self, layer: int, hook: str, values: Tensor) -> Tensor: ...


class Record(Protocol):
    """Where a shape records what it formed at decoding step d (recorder.DecodeRecord)."""

    def put_attention(self, d: int, weights: Tensor | None, context: Tensor) -> None: ...


class DecoderRun(Protocol):
    def step_input(self, tokens: Tensor, h: Sequence[Tensor]) -> Tensor:
        """Layer 0's input projection at this step, [B, G*H], from the input tokens and the state before it."""
        ...

    def logits(self, h: Sequence[Tensor]) -> Tensor:
        """[B, V] from every layer's h after the step."""
        ...


class DecoderShape(Protocol):
    name: str
    reads_memory: bool  # whether `begin` needs the encoder's states (the plain shape reads only the final state)

    def begin(self, memory: Memory, hooks: StepHooks, record: Record) -> DecoderRun: ...


class PlainDecoder:
    """No attention, as in Lee et al.: layer 0 reads its embedded input token, the output layer the top h. An
    activation on the embedding (the tutorial's relu) is folded into the precomputed projection."""

    name = "plain"
    reads_memory = False

    def __init__(self, input_projection: Tensor, w_out_t: Tensor, b_out: Tensor):
        self.input_projection = input_projection  # [V, G*H]: every target embedding through layer 0's input weights
        self.w_out_t, self.b_out = w_out_t, b_out

    def begin(self, memory: Memory, hooks: StepHooks, record: Record) -> PlainDecoder:
        return self

    def step_input(self, tokens: Tensor, h: Sequence[Tensor]) -> Tensor:
        return self.input_projection[tokens]

    def logits(self, h: Sequence[Tensor]) -> Tensor:
        return torch.addmm(self.b_out, h[-1], self.w_out_t)


@dataclass(frozen=True)
class WiredWeights:
    """A declared wiring's parameters, transposed as F.linear uses them (None where the wiring has none)."""

    embedding: Tensor  # [V, E] after the embedding activation
    layer0: LayerWeights
    w_out_t: Tensor
    b_out: Tensor
    query_t: Tensor | None = None
    query_b: Tensor | None = None
    key_t: Tensor | None = None
    key_b: Tensor | None = None
    v: Tensor | None = None  # [A]
    out_t: Tensor | None = None  # the attentional layer
    out_b: Tensor | None = None

    @classmethod
    def of(cls, params: dict[str, Tensor], embedding: Tensor, layer0: LayerWeights) -> WiredWeights:
        def t(name: str) -> Tensor | None:
            return params[name].t() if name in params else None

        return cls(embedding, layer0, params["output.weight"].t(), params["output.bias"],
                   t("attention.query.weight"), params.get("attention.query.bias"), t("attention.key.weight"),
                   params.get("attention.key.bias"),
                   params["attention.v.weight"][0] if "attention.v.weight" in params else None,
                   t("attention.out.weight"), params.get("attention.out.bias"))


class WiredDecoder:
    """Any declared `Architecture`: an embedding activation, a context fed to each step, additive or
    multiplicative attention on the state before or after the step, Luong's attentional vector and input
    feeding, and an output layer reading any of these."""

    name = "wired"
    reads_memory = True

    def __init__(self, arch: Architecture, weights: WiredWeights, top: int):
        self.arch, self.w, self.top = arch, weights, top

    def begin(self, memory: Memory, hooks: StepHooks, record: Record) -> WiredRun:
        keys = None
        if self.arch.attention == "additive":  # the keys' projection does not change during a run
            assert self.w.key_t is not None
            keys = torch.matmul(memory.states, self.w.key_t)
            if self.w.key_b is not None:
                keys = keys + self.w.key_b
        return WiredRun(self, memory, hooks, record, keys)


class WiredRun:
    """One run of a wired decoder: the context, the attentional vector it feeds, the step's embedding."""

    def __init__(self, shape: WiredDecoder, memory: Memory, hooks: StepHooks, record: Record, keys: Tensor | None):
        self.shape, self.memory, self.hooks, self.record, self.keys = shape, memory, hooks, record, keys
        B, H = memory.initial.shape
        self.context = memory.initial.new_zeros(B, memory.states.shape[-1])
        self.feed = memory.initial.new_zeros(B, H)  # Luong's input feeding starts from zeros
        self.embedded = memory.initial.new_zeros(B, shape.w.embedding.shape[1])

    def step_input(self, tokens: Tensor, h: Sequence[Tensor]) -> Tensor:
        arch, w = self.shape.arch, self.shape.w
        self.embedded = w.embedding[tokens]
        if arch.attention != "none" and arch.query == "previous":
            self.context = self._attend(h[-1])
        elif arch.attention == "none" and arch.has_context:  # the encoder's final state, read at every step
            self._record(None, self.memory.initial.clone())
        parts = {"embedding": self.embedded, "context": self.context, "feed": self.feed}
        x = torch.cat([parts[p] for p in arch.rnn_input], 1) if len(arch.rnn_input) > 1 else self.embedded
        return w.layer0.input_projection(x)

    def logits(self, h: Sequence[Tensor]) -> Tensor:
        arch, w = self.shape.arch, self.shape.w
        top = h[-1]
        if arch.attention != "none" and arch.query == "current":
            self.context = self._attend(top)
        if arch.attentional:
            assert w.out_t is not None
            self.feed = _linear(torch.cat([self.context, top], 1), w.out_t, w.out_b)
            if arch.attentional_activation == "tanh":
                self.feed = torch.tanh(self.feed)
        parts = {"h": top, "attentional": self.feed, "context": self.context, "embedding": self.embedded}
        x = torch.cat([parts[p] for p in arch.output_input], 1) if len(arch.output_input) > 1 else \
            parts[arch.output_input[0]]
        return torch.addmm(w.b_out, x, w.w_out_t)

    def _attend(self, query: Tensor) -> Tensor:
        """The attention weights over the source (hook point decoder.attention) and their context (hook point
        decoder.context), recorded after the interventions on them."""
        arch, w, m = self.shape.arch, self.shape.w, self.memory
        if arch.attention == "additive":
            assert w.query_t is not None and w.v is not None and self.keys is not None
            energy = torch.tanh(_linear(query, w.query_t, w.query_b)[:, None] + self.keys)
            scores = torch.matmul(energy, w.v)
        else:
            q = query if arch.attention == "dot" else _linear(query, w.query_t, w.query_b)  # type: ignore[arg-type]
            scores = torch.bmm(m.states, q[:, :, None])[:, :, 0]
        weights = torch.softmax(scores.masked_fill(~m.valid, float("-inf")), -1)
        weights = self.hooks.apply(self.shape.top, ATTENTION_HOOK, weights)
        context = torch.bmm(weights[:, None], m.states)[:, 0]
        return self._record(weights, context)

    def _record(self, weights: Tensor | None, context: Tensor) -> Tensor:
        context = self.hooks.apply(self.shape.top, CONTEXT_HOOK, context)
        self.record.put_attention(self.hooks.t - 1, weights, context)
        self.context = context
        return context


def _linear(x: Tensor, w_t: Tensor, b: Tensor | None) -> Tensor:
    return torch.matmul(x, w_t) if b is None else torch.addmm(b, x, w_t)


def make_decoder(arch: Architecture, params: dict[str, Tensor], target_embedding: Tensor, layer0: LayerWeights,
                 top: int) -> DecoderShape:
    """The plain shape when the wiring is (an activation on the embedding folds into its projection), else a
    wired decoder."""
    embedding = torch.relu(target_embedding) if arch.embed_activation == "relu" else target_embedding
    if replace(arch, embed_activation="none").is_plain:
        return PlainDecoder(layer0.input_projection(embedding), params["output.weight"].t(), params["output.bias"])
    return WiredDecoder(arch, WiredWeights.of(params, embedding, layer0), top)
