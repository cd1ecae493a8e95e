"""What a stepper run knows about its interventions: what each asked for before the run (steps, a clean run,
another source's run), which rows and steps each fires on, and the values they read while it runs.

It is the run side of the intervention protocol (`interventions.RunPlan` before, `RunReader` during): the
stepper hands it the values at each hook point and it lets the interventions that fall there write them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

from ..errors import UserError
from .interventions import STEP_HOOKS, Intervention, StepRef
from .trace import Trace


@dataclass
class Needs:
    """What the interventions asked for in `prepare` (the RunPlan side)."""

    steps: list[StepRef] = field(default_factory=list)
    clean: bool = False
    clean_gates: bool = False
    others: dict[str, bool] = field(default_factory=dict)  # source text -> with gates

    def use_step(self, ref: StepRef) -> None:
        if ref not in self.steps:
            self.steps.append(ref)

    def need_clean_run(self, gates: bool) -> None:
        self.clean, self.clean_gates = True, self.clean_gates or gates

    def need_run_of(self, text: str, gates: bool) -> None:
        self.others[text] = self.others.get(text, False) or gates


@dataclass
class RunContext:
    """The interventions of one run, where each fires, and what they read (the RunReader side)."""

    interventions: Sequence[Intervention]
    positions: Tensor  # [B] each example's first control position T
    word_ids: Tensor
    n_layers: int
    steps_per_example: dict[StepRef, Tensor] = field(default_factory=dict)
    clean: Trace | None = None
    clean_rows: Tensor | None = None  # batch row -> its row in `clean` (repeated examples run clean once)
    others: dict[str, Trace] = field(default_factory=dict)
    row_masks: dict[int, Tensor] = field(default_factory=dict)  # id(intervention) -> the batch rows it may touch
    schedule: dict[int, set[int]] = field(default_factory=dict)  # id(intervention) -> steps where it fires
    columns: dict[int, Tensor] = field(default_factory=dict)  # id(intervention) -> its neuron indices, made once
    by_hook: dict[tuple[int, str], list[Intervention]] = field(default_factory=dict)  # (layer, hook) -> its list
    gate_layers: frozenset[int] = frozenset()  # the layers some gate intervention acts on (asked at every step)
    layer: int = 0  # the layer being stepped
    t: int = 0  # the step being computed

    @property
    def batch(self) -> int:
        return len(self.positions)

    def plan(self, needs: Needs, run_clean: Callable[[bool], tuple[Trace, Tensor]],
             run_other: Callable[[str, bool], Trace]) -> None:
        """Resolve the steps, make the runs the interventions read, and index who fires where."""
        for ref in needs.steps:
            offset = torch.full_like(self.positions, ref.offset)
            self.steps_per_example[ref] = self.positions + ref.offset if ref.relative_to_t else offset
        if needs.clean:
            self.clean, self.clean_rows = run_clean(needs.clean_gates)
        self.others = {text: run_other(text, gates) for text, gates in needs.others.items()}
        top = self.n_layers - 1
        for iv in self.interventions:
            if iv.neurons.indices is not None:
                self.columns[id(iv)] = torch.tensor(iv.neurons.indices, dtype=torch.long)
            if iv.rows is not None:
                mask = torch.zeros(self.batch, dtype=torch.bool)
                mask[list(iv.rows)] = True
                self.row_masks[id(iv)] = mask
            if not iv.step.every:
                fire = self.steps_per_example[iv.step]
                self.schedule[id(iv)] = set((fire[self.row_masks[id(iv)]] if iv.rows is not None else fire).tolist())
            layer = top if iv.layer is None or iv.hook in STEP_HOOKS else iv.layer
            self.by_hook.setdefault((layer, iv.hook), []).append(iv)
        self.gate_layers = frozenset(k for k, hook in self.by_hook if hook not in ("h", "c", *STEP_HOOKS))

    def check_widths(self, hook: str, width: int, what: str) -> None:
        """An intervention on `hook` naming a column past `width` (a source position past the longest source)
        is refused before the run, with the range there is."""
        for iv in self.by_hook.get((self.n_layers - 1, hook), ()):
            if iv.neurons.indices and max(iv.neurons.indices) >= width:
                raise UserError(f"{iv.spec()}: {what} {max(iv.neurons.indices)} does not exist; this source has "
                                f"{what}s 0..{width - 1}")

    def first_step(self) -> int:
        """The earliest step any intervention fires on (1 when none does before decoding)."""
        firsts = [min(self.schedule[id(iv)], default=1) if not iv.step.every else 1 for iv in self.interventions]
        return min(firsts, default=1)

    def check_steps(self, enc_lens: Tensor, max_steps: int) -> None:
        """An intervention whose step falls outside every example's run would change nothing: say so."""
        first = 1 - enc_lens  # each example's first encoder step
        for ref, steps in self.steps_per_example.items():
            if not bool(((steps >= first) & (steps <= max_steps)).any()):
                at = f" (= {int(steps[0])})" if ref.relative_to_t and len(steps) == 1 else ""
                raise UserError(f"step {ref}{at} is outside this run: its steps go from {int(first.max())} "
                                f"(the first source word) to {max_steps} (the last decoding step)")

    # ------------------------------------------------------------------ RunReader

    def clean_values(self, hook: str, ref: StepRef, rows, what: str) -> Tensor:
        assert self.clean is not None and self.clean_rows is not None  # asked for with need_clean_run
        clean = self.clean.for_layer(self.layer)
        src_t = self.steps_per_example[ref]
        idx = (src_t + clean.n_enc - 1)[rows] if isinstance(rows, Tensor) else src_t + clean.n_enc - 1
        if bool((idx < 0).any()) or bool((idx >= clean.h.shape[1]).any()):
            raise UserError(f"{what}: the source step is outside the run")
        b_idx = self.clean_rows[torch.arange(len(self.clean_rows))[rows]]
        return clean.at_hook(hook)[b_idx, idx]

    def other_run(self, text: str) -> Trace:
        return self.others[text]

    # ------------------------------------------------------------------ hook points

    def rows(self, iv: Intervention, t: int) -> Tensor | slice | None:
        """Which examples this intervention hits at step t (None: none)."""
        mask = self.row_masks.get(id(iv))
        if iv.step.every:
            if t < 1:
                return None
            return slice(None) if mask is None else mask
        if t not in self.schedule[id(iv)]:
            return None
        rows = self.steps_per_example[iv.step] == t
        return rows if mask is None else rows & mask

    def has(self, layer: int, hook: str) -> bool:
        return (layer, hook) in self.by_hook

    def gate_hooks(self, layer: int) -> bool:
        return layer in self.gate_layers

    def apply(self, layer: int, hook: str, values: Tensor) -> Tensor:
        """The hook point: `values` ([B, …], a fresh tensor of this step, changed in place) after this layer's
        interventions on `hook` that fall on this step wrote theirs."""
        for iv in self.by_hook.get((layer, hook), ()):
            rows = self.rows(iv, self.t)
            if rows is None:
                continue
            sel = values[rows]
            iv.write(sel, self.columns.get(id(iv), slice(None)), self, rows)
            values[rows] = sel
        return values

    def edit_gate(self, name: str, gate: Tensor) -> Tensor:
        """The gate hook point of the layer being stepped (cell.GateEdit)."""
        return self.apply(self.layer, name, gate)


def steps_outside(interventions: Sequence[Intervention], enc_len: int, position: int, max_steps: int) -> str | None:
    """Why these interventions would reach a step outside a run of one example (its encoder length, its first
    control's T), or None: what can be checked before running, so a caller can refuse at entry."""
    needs = Needs()
    for iv in interventions:
        iv.prepare(needs)
    first = 1 - enc_len
    for ref in needs.steps:
        t = position + ref.offset if ref.relative_to_t else ref.offset
        if not first <= t <= max_steps:
            at = f" (= {t})" if ref.relative_to_t else ""
            return (f"step {ref}{at} is outside this run: its steps go from {first} (the first source word) to "
                    f"{max_steps} (the last decoding step)")
    return None


def edit_started_rows(edit, rows: Tensor, batch: int, pad_gates: dict[str, Tensor], edited: dict[str, Tensor],
                      name: str, gate: Tensor) -> Tensor:
    """A gate edit on a step computed for some rows only: it sees the whole batch (rows not yet started hold the
    padding's gate), the started rows go on with its result, and the whole edited gate is kept for the record."""
    full = pad_gates[name].expand(batch, -1).index_copy(0, rows, gate)
    edited[name] = full = edit(name, full)
    return full[rows]
