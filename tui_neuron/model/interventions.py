"""Interventions: small value objects the stepper applies to chosen neurons at a chosen step.

Text syntax (shared by the CLI `--intervene`, the explorer and session files):

    zero:NEURONS@STEP            set the neurons to 0
    set:NEURONS=VALUE@STEP       set the neurons to VALUE
    keep:NEURONS@STEP            keep only these neurons, zero every other one
    copy:NEURONS@STEP<FROM       copy the neurons' values at step FROM of the clean run into STEP
    swap:NEURONS@STEP<SOURCE     copy the neurons' values at STEP of the clean run of another SOURCE
                                 (a sentence; trailing WORD@T words are its control signals; a STEP
                                 relative to T, like T-1, reads SOURCE at its own T-1)
    randin@STEP[:seed=N]         replace the decoder input x_t by a random word (STEP `*` = every step after <bos>)

NEURONS is `all` or a list of indices and ranges: `0,5,10-20`. STEP may end in `/lK` to act on
layer K of a multi-layer model (default: the top layer). STEP is an integer
(t<0 encoding, t=0 end of encoding, t>=1 decoding), `T`, `T-k` or `T+k` (relative to
each example's first control position), or `*` (every decoding step). Add a hook
to the operation to act on another named hook point than h: `.c` (an LSTM's cell state) or a gate (`.r`,
`.z`, `.n` of a GRU; `.i`, `.f`, `.g`, `.o` of an LSTM), which is changed inside the step, before h is formed
from it. NEURONS may also be a group or role name (`OUTPUTTING`) where the caller knows one
(`resolve_names`). Examples: `zero:all@T-1`, `copy:3,17@T-3<T-1`, `keep:0-49@T`, `set.z:12,40=1@T`,
`swap:all@0<the queen is here queen@2`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import torch
from torch import Tensor

from ..errors import UserError

STATE_HOOKS = ("h", "c")
GATE_HOOKS = {"gru": ("r", "z", "n"), "lstm": ("i", "f", "g", "o")}
HOOKS = (*STATE_HOOKS, *GATE_HOOKS["gru"], *GATE_HOOKS["lstm"])

MAX_NEURON_INDEX = 8191  # the largest hidden size a checkpoint may declare, minus one
MAX_STEP = 100_000  # far beyond any run; larger numbers are typos (and would overflow tensors)


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


@dataclass(frozen=True)
class NeuronSet:
    """Neuron indices, or None for every neuron."""

    indices: tuple[int, ...] | None = None

    @classmethod
    def parse(cls, text: str) -> NeuronSet:
        s = text.strip().replace(" ", "")
        if s.lower() in ("all", "*"):
            return cls(None)
        out: list[int] = []
        for part in s.split(","):
            m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
            if not m:
                raise UserError(f"neurons {text!r}: {part!r} is not an index or a range like 10-20 (or use all)")
            if len(m.group(1)) > 7 or len(m.group(2) or "") > 7 or int(m.group(2) or m.group(1)) > MAX_NEURON_INDEX:
                raise UserError(f"neurons {text!r}: {part} goes beyond any model (neurons 0..{MAX_NEURON_INDEX} at most)")
            lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
            if hi < lo:
                raise UserError(f"neurons {text!r}: range {part} runs backwards")
            out += range(lo, hi + 1)
        return cls(tuple(sorted(set(out))))

    @classmethod
    def of(cls, indices) -> NeuronSet:
        """Sorted and unique, so that a set and its printed spec parse back to the same value."""
        return cls(tuple(sorted({int(i) for i in indices})))

    def __str__(self) -> str:
        if self.indices is None:
            return "all"
        parts: list[str] = []
        run: list[int] = []
        for i in sorted(self.indices):
            if run and i == run[-1] + 1:
                run.append(i)
                continue
            if run:
                parts.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
            run = [i]
        if run:
            parts.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
        return ",".join(parts)

    def check(self, hidden: int) -> None:
        if self.indices is not None and self.indices and max(self.indices) >= hidden:
            raise UserError(f"neuron {max(self.indices)} does not exist: the model has neurons 0..{hidden - 1}")


class Sources(Protocol):
    """What a copy or a swap reads while the stepper runs (the stepper implements it)."""

    def copied(self, iv: CopyFromStep, rows) -> Tensor:
        """[rows, H]: the hook's values at the source step of the clean run, for the hit rows."""
        ...

    def swapped(self, iv: CopyFromRun) -> Tensor:
        """[H]: the hook's values at this step of the other source's clean run."""
        ...


@dataclass(frozen=True)
class Intervention:
    """Base: acts at `step` on `neurons` of the hook point `hook` of `layer` (None: the top layer).

    `hook` is h, c or a gate name (HOOKS). `rows` limits it to these examples of a batch (None: all): how
    an analysis runs many manipulations, each on its own examples, as one batch. It is not part of the
    text syntax. Each subclass writes its values itself (`write`): a new operation is one class here.
    """

    neurons: NeuronSet
    step: StepRef
    hook: str = "h"
    layer: int | None = field(default=None, kw_only=True)
    rows: tuple[int, ...] | None = field(default=None, kw_only=True, compare=False)

    op = ""

    @property
    def on_cell(self) -> bool:
        return self.hook == "c"

    @property
    def on_gate(self) -> bool:
        return self.hook not in STATE_HOOKS

    def spec(self) -> str:
        return f"{self.op}{self._hook()}:{self.neurons}@{self.at()}{self._suffix()}"

    def _hook(self) -> str:
        return "" if self.hook == "h" else f".{self.hook}"

    def at(self) -> str:
        """The step, with the layer when one is named: `T-1` or `T-1/l0`."""
        return f"{self.step}" + ("" if self.layer is None else f"/l{self.layer}")

    def _suffix(self) -> str:
        return ""

    def check(self, cell: str, hidden: int, layers: int) -> None:
        """A UserError when this model has no such hook point, neuron or layer."""
        self.neurons.check(hidden)
        if self.hook == "c" and cell != "lstm":
            raise UserError(f"{self.spec()}: .c acts on an LSTM's cell state; this model is a GRU")
        if self.on_gate and self.hook not in GATE_HOOKS[cell]:
            raise UserError(f"{self.spec()}: a {cell.upper()} has no gate {self.hook!r}; its gates are "
                            f"{', '.join(GATE_HOOKS[cell])}")
        if self.layer is not None and not 0 <= self.layer < layers:
            raise UserError(f"{self.spec()}: layer {self.layer} does not exist; the model has layers 0..{layers - 1}")

    def write(self, sel: Tensor, cols, sources: Sources, rows) -> None:
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

    def spec(self) -> str:
        if self.value == 0.0:
            return super().spec()
        return f"set{self._hook()}:{self.neurons}={self.value:g}@{self.at()}"

    def write(self, sel: Tensor, cols, sources: Sources, rows) -> None:
        sel[:, cols] = self.value


@dataclass(frozen=True)
class KeepOnly(Intervention):
    op = "keep"

    def write(self, sel: Tensor, cols, sources: Sources, rows) -> None:
        kept = sel[:, cols].clone()
        sel.zero_()
        sel[:, cols] = kept


@dataclass(frozen=True)
class CopyFromStep(Intervention):
    source: StepRef = StepRef(0)
    op = "copy"

    def _suffix(self) -> str:
        return f"<{self.source}"

    def write(self, sel: Tensor, cols, sources: Sources, rows) -> None:
        sel[:, cols] = sources.copied(self, rows)[:, cols]


@dataclass(frozen=True)
class CopyFromRun(Intervention):
    source_text: str = ""
    op = "swap"

    def _suffix(self) -> str:
        return f"<{self.source_text}"

    def write(self, sel: Tensor, cols, sources: Sources, rows) -> None:
        sel[:, cols] = sources.swapped(self)[cols]


@dataclass(frozen=True)
class RandomInput(Intervention):
    """Replace the decoder input token (the hook point decoder.input); `neurons` is unused."""

    seed: int = 0
    op = "randin"

    def check(self, cell: str, hidden: int, layers: int) -> None:
        pass

    def replace_tokens(self, tok: Tensor, rows, t: int, word_ids: Tensor) -> Tensor:
        """The input tokens with random words (seeded by the seed and t) in the hit rows."""
        gen = torch.Generator().manual_seed(self.seed * 100_003 + t)
        rand = word_ids[torch.randint(0, len(word_ids), (tok.shape[0],), generator=gen)]
        tok = tok.clone()
        tok[rows] = rand[rows]
        return tok

    def spec(self) -> str:
        return f"randin@{self.step}" + (f":seed={self.seed}" if self.seed else "")


_SPEC_RE = re.compile(
    r"^(?P<op>zero|set|keep|copy|swap)(\.(?P<hook>[a-z]+))?:(?P<neurons>[^@=<]+)(=(?P<value>[^@]+))?@(?P<step>[^<]+)(<(?P<src>.+))?$"
)


def parse_intervention(text: str) -> Intervention:
    """Parse the text syntax above; a UserError says what is wrong."""
    s = text.strip()
    m = re.fullmatch(r"randin@(?P<step>[^:]+)(:seed=(?P<seed>\d+))?", s)
    if m:
        return RandomInput(NeuronSet(None), StepRef.parse(m["step"]), seed=int(m["seed"] or 0))
    m = _SPEC_RE.match(s)
    if not m:
        raise UserError(
            f"intervention {text!r} is not understood; use e.g. zero:all@T-1, set:3=0.5@2, keep:0-9@T, "
            "copy:4,5@T-3<T-1, swap:all@0<other sentence word@2, randin@*"
        )
    step_text, layer = _split_layer(m["step"], text)
    op, neurons, step = m["op"], NeuronSet.parse(m["neurons"]), StepRef.parse(step_text)
    hook = m["hook"] or "h"
    if hook not in HOOKS:
        raise UserError(f"intervention {text!r}: .{hook} is not a hook point; use .c (an LSTM's cell state) or a "
                        "gate: .r .z .n (GRU), .i .f .g .o (LSTM); none means h")
    if op == "set" and m["value"] is None:
        raise UserError(f"intervention {text!r}: set needs a value, as set:NEURONS=VALUE@STEP (e.g. set:3=0.5@T)")
    if op != "set" and m["value"] is not None:
        raise UserError(f"intervention {text!r}: {op} takes no =VALUE; only set does (set:NEURONS=VALUE@STEP)")
    if (m["src"] is not None) != (op in ("copy", "swap")):
        raise UserError(f"intervention {text!r}: copy and swap need <FROM, the others take none")
    if op == "zero":
        return SetValue(neurons, step, hook, 0.0, layer=layer)
    if op == "set":
        try:
            value = float(m["value"])
        except ValueError:
            raise UserError(f"intervention {text!r}: {m['value']!r} is not a number") from None
        if value != value or abs(value) == float("inf"):
            raise UserError(f"intervention {text!r}: the value must be a finite number")
        return SetValue(neurons, step, hook, value, layer=layer)
    if op == "keep":
        return KeepOnly(neurons, step, hook, layer=layer)
    if op == "copy":
        return CopyFromStep(neurons, step, hook, StepRef.parse(m["src"]), layer=layer)
    if not m["src"].strip():
        raise UserError(f"intervention {text!r}: swap needs a source sentence after <")
    return CopyFromRun(neurons, step, hook, m["src"].strip(), layer=layer)


def _split_layer(step_text: str, text: str) -> tuple[str, int | None]:
    """`T-1/l0` -> (`T-1`, 0); a step without `/lK` acts on the top layer."""
    head, sep, tail = step_text.strip().partition("/")
    if not sep:
        return head, None
    m = re.fullmatch(r"[lL](\d{1,3})", tail.strip())
    if not m:
        raise UserError(f"intervention {text!r}: {tail!r} is not a layer; write /l0, /l1, … after the step")
    return head, int(m.group(1))


def from_json(data: dict) -> Intervention:
    if not isinstance(data, dict) or "spec" not in data:
        raise UserError("an intervention in JSON must be an object with a 'spec' string")
    return parse_intervention(str(data["spec"]))


_NAMED_NEURONS = re.compile(r"(?<=[:])([A-Za-z_][\w?]*)(?=[=@])")


def resolve_names(text: str, groups: Mapping[str, Sequence[int]]) -> str:
    """Replace a group or role name in the NEURONS field (`set.z:OUTPUTTING=1@T`) by its indices.

    Names match case-insensitively; `all` stays the selection syntax. An unknown name is a UserError
    listing the known ones."""
    by_lower = {k.lower(): v for k, v in groups.items()}

    def indices(m: re.Match) -> str:
        name = m.group(1)
        if name.lower() == "all":
            return name
        if name.lower() not in by_lower:
            known = ", ".join(sorted(groups)) or "none"
            raise UserError(f"{name!r} is not a known group or role (known here: {known})")
        neurons = list(by_lower[name.lower()])
        if not neurons:
            raise UserError(f"group {name!r} has no neurons")
        return str(NeuronSet.of(neurons))

    head, sep, tail = text.partition("<")  # a swap's source sentence is left alone
    return _NAMED_NEURONS.sub(indices, head, count=1) + sep + tail
