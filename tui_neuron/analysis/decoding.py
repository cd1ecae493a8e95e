"""Decode one typed source with controls, clean and with interventions: what `decode` and the explorer show."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..checkpoint.format import Checkpoint
from ..model.examples import ControlSignal, Example, unknown_words
from ..model.interventions import Intervention, resolve_all
from ..model.stepper import Stepper, Trace


@dataclass
class DecodeResult:
    example: Example
    vocab_itos: list[str]
    clean: Trace
    changed: Trace | None
    interventions: tuple[Intervention, ...] = ()
    encoder_ids: tuple[int, ...] = ()
    unknown_words: tuple[str, ...] = ()  # the source's words the vocabulary lacks (read as its unknown token)
    source_itos: list[str] | None = None  # a two-vocabulary model's source tokens (None: vocab_itos reads both)

    @property
    def source_vocab(self) -> list[str]:
        return self.vocab_itos if self.source_itos is None else self.source_itos

    @property
    def source_tokens(self) -> list[str]:
        return [self.source_vocab[i] for i in self.example.source_ids]

    @property
    def controls(self) -> list[str]:
        return [f"{self.vocab_itos[t]}@{p}" for t, p in self.example.controls]

    @property
    def output_ids(self) -> list[int]:
        return self.clean.output_ids(0)

    @property
    def output_tokens(self) -> list[str]:
        return [self.vocab_itos[i] for i in self.output_ids]

    @property
    def changed_ids(self) -> list[int]:
        return self.changed.output_ids(0) if self.changed is not None else self.output_ids

    @property
    def changed_tokens(self) -> list[str]:
        return [self.vocab_itos[i] for i in self.changed_ids]

    def landings(self, changed: bool = False) -> list[dict]:
        """Per control: did TOKEN land at T, and where did it land instead."""
        ids = self.changed_ids if changed else self.output_ids
        out = []
        for tok, pos in self.example.controls:
            where = [i + 1 for i, x in enumerate(ids) if x == tok]
            out.append({"control": f"{self.vocab_itos[tok]}@{pos}", "landed": pos in where,
                        "found_at": where})
        return out

    def landing_lines(self, changed: bool = False) -> list[str]:
        lines = []
        for d in self.landings(changed):
            mark = "landed" if d["landed"] else "missed"
            found = ", ".join(map(str, d["found_at"]))
            lines.append(f"{d['control']}: {mark} " + (f"(token at {found})" if found else "(not in the output)"))
        return lines

    def to_json(self, with_states: bool = False, layer: int | None = None) -> dict:
        """The run as plain data; with states, every step's h, gates (and c) of `layer` (default: the top one)."""
        data = {
            "source": self.source_tokens, "controls": self.controls,
            "source_ids": list(self.encoder_ids), "output_ids": self.output_ids,
            "output": self.output_tokens, "landings": self.landings(),
            "unknown_words": list(self.unknown_words),
            "interventions": [iv.spec() for iv in self.interventions],
        }
        if self.changed is not None:
            data.update(changed_output_ids=self.changed_ids, changed_output=self.changed_tokens,
                        changed_landings=self.landings(changed=True))
        if with_states:
            controls = [int(t) for t, _ in self.example.controls]
            view = (lambda t: t) if layer is None else (lambda t: t.for_layer(layer))
            data["layer"] = self.clean.n_layers - 1 if layer is None else layer
            data["steps"] = trace_steps(view(self.clean), self.vocab_itos, controls=controls,
                                        source_itos=self.source_itos)
            if self.changed is not None:
                data["changed_steps"] = trace_steps(view(self.changed), self.vocab_itos, controls=controls,
                                                    source_itos=self.source_itos)
        return data


def input_word(itos: Sequence[str], source_itos: Sequence[str] | None, t: int, token_id: int) -> str:
    """A step's input token as text: source steps (t ≤ 0) in a two-vocabulary model's source vocabulary."""
    return (source_itos if source_itos is not None and t <= 0 else itos)[token_id]


def trace_steps(trace: Trace, itos: Sequence[str], b: int = 0, controls: Sequence[int] = (),
                source_itos: Sequence[str] | None = None) -> list[dict]:
    """Every valid step of example b: t, input token, h, gates (and c), as plain lists; on decoding steps also
    the top-k (ids, tokens, probabilities), the attention weights over the source tokens and the context (a
    decoder that forms them), and, from the kept logits, each control token's probability and rank (1 = the
    most likely token, as the explorer's top-5 panel shows it)."""
    steps = []
    n_out = len(trace.output_ids(b)) + 1  # decoding steps up to and including <eos>
    for i, t in enumerate(trace.times):
        if not trace.valid[b, i] or t > n_out:
            continue
        tok = int(trace.tokens[b, i])
        step: dict[str, Any] = {"t": int(t), "input_id": tok, "input": input_word(itos, source_itos, int(t), tok),
                                "h": [round(x, 6) for x in trace.h[b, i].tolist()]}
        for name, g in trace.gates.items():
            step[name] = [round(x, 6) for x in g[b, i].tolist()]
        if trace.c is not None:
            step["c"] = [round(x, 6) for x in trace.c[b, i].tolist()]
        if t >= 1:
            d = t - 1
            step["output_id"] = int(trace.outputs[b, d])
            step["output"] = itos[step["output_id"]]
            if trace.attention is not None:
                step["attention"] = [round(x, 6) for x in trace.source_weights(b, int(t))]
            if trace.context is not None:
                step["context"] = [round(x, 6) for x in trace.context[b, d].tolist()]
            if trace.top_ids is not None and trace.top_probs is not None:
                step["top_k"] = [{"id": int(i), "token": itos[int(i)], "p": round(float(p), 6)}
                                 for i, p in zip(trace.top_ids[b, d].tolist(), trace.top_probs[b, d].tolist())]
            if trace.logits is not None and controls:
                logits = trace.logits[b, d]
                lse = float(logits.logsumexp(-1))
                step["controls"] = [{"id": tok, "token": itos[tok], "p": round(float((logits[tok] - lse).exp()), 6),
                                     "rank": int((logits > logits[tok]).sum()) + 1} for tok in controls]
        steps.append(step)
    return steps


def decode_one(ckpt: Checkpoint, source: str, controls: Sequence[str | ControlSignal],
               interventions: Sequence[Intervention] = (), stepper: Stepper | None = None,
               names: Mapping[str, Sequence[int]] | None = None) -> DecodeResult:
    """The clean run and, with interventions, the changed one; named neuron sets (roles, groups) are looked up
    in `names` here, when the run starts."""
    stepper = stepper or Stepper(ckpt.model, ckpt.vocab)
    interventions = resolve_all(interventions, names or {})
    example = stepper.example(source, controls)
    clean = stepper.run([example], keep_logits=True)
    changed = stepper.run([example], interventions, keep_logits=True) if interventions else None
    return DecodeResult(example, ckpt.vocab.itos, clean, changed, tuple(interventions),
                        tuple(example.encoder_ids(ckpt.vocab)), tuple(unknown_words(ckpt.vocab, source)),
                        None if ckpt.vocab.source is None else ckpt.vocab.source.itos)
