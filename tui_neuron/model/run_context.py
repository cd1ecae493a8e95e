"""What a stepper run keeps while it runs, for its interventions to read (copies, swaps, rows, steps)."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from ..errors import UserError
from .interventions import CopyFromRun, CopyFromStep, Intervention, RandomInput, StepRef
from .trace import Trace


@dataclass
class RunContext:
    """What interventions read while a run is in progress (the `Sources` a copy or a swap reads)."""

    steps_per_example: dict[StepRef, Tensor] = field(default_factory=dict)
    clean: Trace | None = None
    swaps: dict[str, Trace] = field(default_factory=dict)
    row_masks: dict[int, Tensor] = field(default_factory=dict)  # id(intervention) -> the batch rows it may touch
    schedule: dict[int, set[int]] = field(default_factory=dict)  # id(intervention) -> steps where it fires
    clean_rows: Tensor | None = None  # batch row -> its row in `clean` (repeated examples run clean once)
    columns: dict[int, Tensor] = field(default_factory=dict)  # id(intervention) -> its neuron indices, made once
    this_positions: Tensor | None = None  # this run's first control position T per example
    layer: int = 0  # the layer being stepped
    t: int = 0  # the step being computed

    def copied(self, iv: CopyFromStep, rows) -> Tensor:
        if iv.source.every:
            raise UserError(f"{iv.spec()}: the source step cannot be *")
        assert self.clean is not None and self.clean_rows is not None  # run() makes both for copies
        clean = self.clean.for_layer(self.layer)
        src_t = self.steps_per_example[iv.source]
        idx = (src_t + clean.n_enc - 1)[rows] if isinstance(rows, Tensor) else src_t + clean.n_enc - 1
        if bool((idx < 0).any()) or bool((idx >= clean.h.shape[1]).any()):
            raise UserError(f"{iv.spec()}: the source step is outside the run")
        b_idx = self.clean_rows[torch.arange(len(self.clean_rows))[rows]]
        return clean.at_hook(iv.hook)[b_idx, idx]

    def swapped(self, iv: CopyFromRun) -> Tensor:
        """The other source's value at this step; a step relative to T (@T-1) reads the other source at its own
        T-1, so runs with different T line up as the compare view aligns them."""
        other = self.swaps[iv.source_text].for_layer(self.layer)
        state = other.at_hook(iv.hook)
        t = self.t
        if iv.step.relative_to_t and other.positions is not None and self.this_positions is not None:
            t = t - int(self.this_positions[0]) + int(other.positions[0])
        i = t + other.n_enc - 1
        if not 0 <= i < state.shape[1]:
            raise UserError(f"{iv.spec()}: step {self.t} is outside the other source's run")
        return state[0, i]

    def rows(self, iv: Intervention, t: int) -> Tensor | None:
        """Which examples this intervention hits at step t (None: none)."""
        mask = self.row_masks.get(id(iv))
        if iv.step.every:
            if t < 1:
                return None
            return slice(None) if mask is None else mask  # type: ignore[return-value]
        if t not in self.schedule[id(iv)]:
            return None
        rows = self.steps_per_example[iv.step] == t
        return rows if mask is None else rows & mask

    def write(self, iv: Intervention, target: Tensor) -> Tensor:
        """`target` with the intervention's rows at this step overwritten (a fresh tensor of this step: in place)."""
        rows = self.rows(iv, self.t)
        if rows is None:
            return target
        sel = target[rows]
        iv.write(sel, self.columns.get(id(iv), slice(None)), self, rows)
        target[rows] = sel
        return target

    def intervene(self, interventions: list[Intervention], h: Tensor, c: Tensor | None):
        """Apply this layer's interventions on h or c that fall on this step, right after the step computed them."""
        for iv in interventions:
            if iv.on_cell:
                assert c is not None  # .c interventions were checked to need an LSTM
                c = self.write(iv, c)
            else:
                h = self.write(iv, h)
        return h, c

    def edit_gate(self, interventions: list[Intervention], name: str, gate: Tensor) -> Tensor:
        """The gate hook point: this layer's gate interventions on `name` at this step, before the step uses it."""
        for iv in interventions:
            if iv.hook == name:
                gate = self.write(iv, gate)
        return gate

    def random_inputs(self, interventions, t: int, tok: Tensor, word_ids: Tensor) -> Tensor:
        """The decoder.input hook point: random words replace the input token where a randin fires."""
        for iv in interventions:
            if not isinstance(iv, RandomInput):
                continue
            if iv.step.every and t == 1:
                continue  # keep <bos>: the paper replaces the inputs after it
            rows = self.rows(iv, t)
            if rows is not None:
                tok = iv.replace_tokens(tok, rows, t, word_ids)
        return tok


def edit_started_rows(edit, rows: Tensor, batch: int, pad_gates: dict[str, Tensor], edited: dict[str, Tensor],
                       name: str, gate: Tensor) -> Tensor:
    """A gate edit on a step computed for some rows only: it sees the whole batch (rows not yet started hold the
    padding's gate), the started rows go on with its result, and the whole edited gate is kept for the record."""
    full = pad_gates[name].expand(batch, -1).index_copy(0, rows, gate)
    edited[name] = full = edit(name, full)
    return full[rows]
