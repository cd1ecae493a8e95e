"""Interventions: small value objects the stepper applies to chosen neurons at a chosen step and hook point.

Each kind is one class here, and its text form is one row of the grammar table (`syntax.GRAMMAR`). The
stepper never asks for a kind: before a run, `prepare` tells the run what the intervention will read (the
steps it names, a clean run of the same examples, another source's run); at each step, the run hands the
values at the intervention's hook point to `write`, which changes them in place, reading through the
`RunReader` protocol. A new kind that reads the run (a copy, a swap, a random input) is one class.

Neurons may be named (`storing`, a group): the name stays in the object, in its text and in sessions, and
`resolved` fills in the indices when a run knows what the name means.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, ClassVar, Protocol

from ..errors import UserError

if TYPE_CHECKING:  # torch is imported where values are written: the CLI's help and parsing stay free of it
    from torch import Tensor

    from .config import Architecture

STATE_HOOKS = ("h", "c")
GATE_HOOKS = {"gru": ("r", "z", "n"), "lstm": ("i", "f", "g", "o")}
INPUT_HOOK = "input"  # the decoder's input token
ATTENTION_HOOKS = ("attention", "context")  # a wired decoder's weights over source positions, and its context
STEP_HOOKS = (INPUT_HOOK, *ATTENTION_HOOKS)  # formed once per decoding step, not per layer
HOOKS = (*STATE_HOOKS, *GATE_HOOKS["gru"], *GATE_HOOKS["lstm"], *ATTENTION_HOOKS)



def value_hooks(cell: str) -> tuple[str, ...]:
    """The hook points that hold a cell's neuron values at every step: h, c (an LSTM's) and its gates."""
    return ("h", *(("c",) if cell == "lstm" else ()), *GATE_HOOKS[cell])


MAX_NEURON_INDEX = 8191  # the largest hidden size a checkpoint may declare, minus one
MAX_STEP = 100_000  # far beyond any run; larger numbers are typos (and would overflow tensors)
NAME_RE = r"[A-Za-z_][\w?]*"  # a group or role name in the NEURONS field


def _bounded_step(digits: str, text: str) -> int:
    if len(digits.lstrip("+-")) > 6 or abs(int(digits)) > MAX_STEP:
        raise UserError(f"step {text!r} is beyond any run (steps are at most {MAX_STEP:,} from 0 or T)")
    return int(digits)


@dataclass(frozen=True)
class StepRef:
    """A step, absolute or relative to T (the first control's position); `every` = all decoding steps."""

    offset: int = 0
    relative_to_t: bool = False
    every: bool = False

    @classmethod
    def parse(cls, text: str) -> StepRef:
        s = text.strip().replace(" ", "")
        if s == "*":
            return cls(every=True)
        m = re.fullmatch(r"[Tt]([+-]\d+)?", s)
        if m:
            return cls(_bounded_step(m.group(1) or "0", text), relative_to_t=True)
        if re.fullmatch(r"[+-]?\d+", s):
            return cls(_bounded_step(s, text))
        raise UserError(f"step {text!r} is not a number, T, T-k, T+k or *")

    def __str__(self) -> str:
        if self.every:
            return "*"
        if self.relative_to_t:
            return "T" if self.offset == 0 else f"T{self.offset:+d}"
        return str(self.offset)


def _ranges(indices: Sequence[int]) -> str:
    """0,1,2,5 -> `0-2,5`."""
    parts: list[str] = []
    run: list[int] = []
    for i in sorted(indices):
        if run and i == run[-1] + 1:
            run.append(i)
            continue
        if run:
            parts.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
        run = [i]
    if run:
        parts.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
    return ",".join(parts)


@dataclass(frozen=True)
class NeuronSet:
    """Neuron indices; None with no name for every neuron. A named set (a role, a group) keeps its name, and
    its indices are None until `resolved` looks the name up."""

    indices: tuple[int, ...] | None = None
    name: str | None = None

    @classmethod
    def parse(cls, text: str) -> NeuronSet:
        s = text.strip().replace(" ", "")
        if s.lower() in ("all", "*"):
            return cls(None)
        if re.fullmatch(NAME_RE, s):
            return cls(None, s)
        out: list[int] = []
        for part in s.split(","):
            m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
            if not m:
                raise UserError(f"neurons {text!r}: {part!r} is not an index, a range like 10-20, a group or role "
                                "name, or all")
            if len(m.group(1)) > 7 or len(m.group(2) or "") > 7 or int(m.group(2) or m.group(1)) > MAX_NEURON_INDEX:
                raise UserError(f"neurons {text!r}: {part} goes beyond any model (neurons 0..{MAX_NEURON_INDEX} at most)")
            lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
            if hi < lo:
                raise UserError(f"neurons {text!r}: range {part} runs backwards")
            out += range(lo, hi + 1)
        return cls(tuple(sorted(set(out))))

    @classmethod
    def of(cls, indices, name: str | None = None) -> NeuronSet:
        """Sorted and unique, so that a set and its printed spec parse back to the same value."""
        return cls(tuple(sorted({int(i) for i in indices})), name)

    @property
    def is_resolved(self) -> bool:
        return self.name is None or self.indices is not None

    def __str__(self) -> str:
        if self.name is not None:
            return self.name
        return "all" if self.indices is None else _ranges(self.indices)

    def resolved(self, names: Mapping[str, Sequence[int]]) -> NeuronSet:
        """The indices of a named set (names match case-insensitively); an unknown or empty name is an error."""
        if self.name is None:
            return self
        by_lower = {k.lower(): v for k, v in names.items()}
        if self.name.lower() not in by_lower:
            known = ", ".join(sorted(names)) or "none"
            raise UserError(f"{self.name!r} is not a known group or role (known here: {known})")
        if not by_lower[self.name.lower()]:
            raise UserError(f"group {self.name!r} has no neurons")
        return NeuronSet.of(by_lower[self.name.lower()], self.name)

    def check(self, hidden: int) -> None:
        if not self.is_resolved:
            raise UserError(f"the neurons {self.name!r} are a name no run has resolved: load the results that "
                            "define it, or give neuron indices")
        if self.indices and max(self.indices) >= hidden:
            raise UserError(f"neuron {max(self.indices)} does not exist: the model has neurons 0..{hidden - 1}")


class RunPlan(Protocol):
    """What an intervention may ask of a run before it starts (`Intervention.prepare`)."""

    def use_step(self, ref: StepRef) -> None:
        """Resolve `ref` to each example's step (checked to fall inside the run)."""

    def need_clean_run(self, gates: bool) -> None:
        """Run the same examples without interventions first (with their gates when `gates`)."""

    def need_run_of(self, text: str, gates: bool) -> None:
        """Run another source (`sentence WORD@T`) without interventions first."""


class RunReader(Protocol):
    """What an intervention reads while a run is in progress (`Intervention.write`)."""

    t: int  # the step being computed
    layer: int  # the layer being stepped
    word_ids: Tensor  # the vocabulary's word ids (for random inputs)
    positions: Tensor  # [B] each example's first control position T

    @property
    def batch(self) -> int:
        """The number of examples in the run."""
        ...

    def clean_values(self, hook: str, ref: StepRef, rows, what: str) -> Tensor:
        """[rows, H]: the hook's values in the clean run at step `ref` of each hit row (`what` names the caller)."""
        ...

    def other_run(self, text: str):
        """The clean run of another source (a Trace), as asked for with `need_run_of`."""
        ...


@dataclass(frozen=True)
class Intervention:
    """Base: acts at `step` on `neurons` of the hook point `hook` of `layer` (None: the top layer).

    `hook` is h, c, a gate name (HOOKS) or `input` (the decoder's input token). `rows` limits it to these
    examples of a batch (None: all): how an analysis runs many manipulations, each on its own examples, as one
    batch; it is not part of the text syntax.
    """

    neurons: NeuronSet
    step: StepRef
    hook: str = "h"
    layer: int | None = field(default=None, kw_only=True)
    rows: tuple[int, ...] | None = field(default=None, kw_only=True, compare=False)

    op: ClassVar[str] = ""

    @property
    def on_cell(self) -> bool:
        return self.hook == "c"

    @property
    def on_gate(self) -> bool:
        return self.hook not in (*STATE_HOOKS, *STEP_HOOKS)

    def spec(self) -> str:
        return f"{self.op}{self._hook()}:{self.neurons}{self._value()}@{self.at()}{self._source()}"

    def _hook(self) -> str:
        return "" if self.hook == "h" else f".{self.hook}"

    def at(self) -> str:
        """The step, with the layer when one is named: `T-1` or `T-1/l0`."""
        return f"{self.step}" + ("" if self.layer is None else f"/l{self.layer}")

    def _value(self) -> str:
        return ""

    def _source(self) -> str:
        return ""

    def resolved(self, names: Mapping[str, Sequence[int]]) -> Intervention:
        """This intervention with a named neuron set looked up in `names` (the name is kept for its text)."""
        return self if self.neurons.name is None else replace(self, neurons=self.neurons.resolved(names))

    def check(self, cell: str, hidden: int, layers: int, arch: Architecture) -> None:
        """A UserError when this model has no such hook point, neuron or layer (source positions, the columns of
        the attention hook, are checked against the source when the run starts)."""
        self.neurons.check(hidden if self.hook != "attention" else MAX_NEURON_INDEX + 1)
        if self.hook in ATTENTION_HOOKS and not arch.has_context:
            raise UserError(f"{self.spec()}: this model's decoder forms no {self.hook} (it is {arch.describe()})")
        if self.hook == "attention" and arch.attention == "none":
            raise UserError(f"{self.spec()}: this model's decoder has no attention; its context is the encoder's "
                            "final state (act on .context)")
        if self.hook == "c" and cell != "lstm":
            raise UserError(f"{self.spec()}: .c acts on an LSTM's cell state; this model is a GRU")
        if self.on_gate and self.hook not in GATE_HOOKS[cell]:
            raise UserError(f"{self.spec()}: a {cell.upper()} has no gate {self.hook!r}; its gates are "
                            f"{', '.join(GATE_HOOKS[cell])}")
        if self.layer is not None and not 0 <= self.layer < layers:
            raise UserError(f"{self.spec()}: layer {self.layer} does not exist; the model has layers 0..{layers - 1}")

    def prepare(self, plan: RunPlan) -> None:
        """Tell the run what this intervention reads: by default only its own step."""
        if not self.step.every:
            plan.use_step(self.step)

    def write(self, sel: Tensor, cols, run: RunReader, rows) -> None:
        """Overwrite the hit rows' values `sel` ([rows, H], in place) at the neurons `cols`."""
        raise NotImplementedError

    def to_json(self) -> dict:
        return {"spec": self.spec()}


@dataclass(frozen=True)
class SetValue(Intervention):
    value: float = 0.0

    @property
    def op(self) -> str:  # type: ignore[override]
        return "zero" if self.value == 0.0 else "set"

    def _value(self) -> str:
        return "" if self.value == 0.0 else f"={self.value:g}"

    def write(self, sel: Tensor, cols, run: RunReader, rows) -> None:
        sel[:, cols] = self.value


@dataclass(frozen=True)
class Attend(Intervention):
    """Force the decoder's attention onto these source positions: equal weights on them, 0 elsewhere (the context
    is then formed from the forced weights)."""

    hook: str = "attention"
    op: ClassVar[str] = "attend"

    def spec(self) -> str:
        return f"attend:{self.neurons}@{self.at()}"

    def check(self, cell: str, hidden: int, layers: int, arch: Architecture) -> None:
        if self.neurons.indices is None and self.neurons.name is None:
            raise UserError(f"{self.spec()}: name the source positions to attend to (0 is the first source token)")
        super().check(cell, hidden, layers, arch)

    def write(self, sel: Tensor, cols, run: RunReader, rows) -> None:
        sel.zero_()
        sel[:, cols] = 1.0 / len(self.neurons.indices or (0,))


@dataclass(frozen=True)
class Scale(Intervention):
    """Multiply the neurons' values by `factor` (0 zeroes them, −1 flips them, 2 doubles them)."""

    factor: float = 1.0
    op: ClassVar[str] = "scale"

    def _value(self) -> str:
        return f"={self.factor:g}"

    def write(self, sel: Tensor, cols, run: RunReader, rows) -> None:
        sel[:, cols] *= self.factor


@dataclass(frozen=True)
class KeepOnly(Intervention):
    op: ClassVar[str] = "keep"

    def write(self, sel: Tensor, cols, run: RunReader, rows) -> None:
        kept = sel[:, cols].clone()
        sel.zero_()
        sel[:, cols] = kept


@dataclass(frozen=True)
class CopyFromStep(Intervention):
    """The neurons take their values at step `source` of the clean run of the same example."""

    source: StepRef = StepRef(0)
    op: ClassVar[str] = "copy"

    def _source(self) -> str:
        return f"<{self.source}"

    def prepare(self, plan: RunPlan) -> None:
        super().prepare(plan)
        if self.source.every:
            raise UserError(f"{self.spec()}: the source step cannot be *")
        plan.use_step(self.source)
        plan.need_clean_run(gates=self.on_gate)

    def write(self, sel: Tensor, cols, run: RunReader, rows) -> None:
        sel[:, cols] = run.clean_values(self.hook, self.source, rows, self.spec())[:, cols]


@dataclass(frozen=True)
class CopyFromRun(Intervention):
    """The neurons take their values at this step of another source's clean run; a step relative to T (@T-1)
    reads the other source at its own T-1, so runs with different T line up as the compare view aligns them."""

    source_text: str = ""
    op: ClassVar[str] = "swap"

    def _source(self) -> str:
        return f"<{self.source_text}"

    def prepare(self, plan: RunPlan) -> None:
        super().prepare(plan)
        plan.need_run_of(self.source_text, gates=self.on_gate)

    def write(self, sel: Tensor, cols, run: RunReader, rows) -> None:
        other = run.other_run(self.source_text).for_layer(run.layer)
        state, t = other.at_hook(self.hook), run.t
        if self.step.relative_to_t and other.positions is not None:
            t = t - int(run.positions[0]) + int(other.positions[0])
        i = t + other.n_enc - 1
        if not 0 <= i < state.shape[1]:
            raise UserError(f"{self.spec()}: step {run.t} is outside the other source's run")
        if state.shape[-1] != sel.shape[-1]:
            raise UserError(f"{self.spec()}: the other source is {state.shape[-1]} tokens long and this one "
                            f"{sel.shape[-1]}; copy attention between sources of one length")
        sel[:, cols] = state[0, i][cols]


@dataclass(frozen=True)
class RandomInput(Intervention):
    """Replace the decoder's input token (the hook point decoder.input) by a random word, seeded by the seed and
    the step; `neurons` is unused. At every step (`*`) the first input, <bos>, is kept, as the paper does."""

    hook: str = INPUT_HOOK
    seed: int = 0
    op: ClassVar[str] = "randin"

    def check(self, cell: str, hidden: int, layers: int, arch: Architecture) -> None:
        pass

    def spec(self) -> str:
        return f"randin@{self.step}" + (f":seed={self.seed}" if self.seed else "")

    def write(self, sel: Tensor, cols, run: RunReader, rows) -> None:
        import torch

        if self.step.every and run.t == 1:
            return
        gen = torch.Generator().manual_seed(self.seed * 100_003 + run.t)
        rand = run.word_ids[torch.randint(0, len(run.word_ids), (run.batch,), generator=gen)]
        sel[:] = rand[rows]


def resolve_all(interventions: Sequence[Intervention], names: Mapping[str, Sequence[int]]) -> list[Intervention]:
    """Every named neuron set looked up (what a run does before it starts)."""
    return [iv.resolved(names) for iv in interventions]
