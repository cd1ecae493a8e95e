"""The intervention text syntax, in one table: the parser, its error examples, the explorer's prompt and help,
and the docs' table are all made from `GRAMMAR` and `TERMS` (a test keeps the docs current).

Text is parsed once, where a user typed it (a CLI flag, the explorer's prompt, a session file); from there on
Intervention objects travel.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import UserError
from .interventions import (
    HOOKS,
    Attend,
    CopyFromRun,
    CopyFromStep,
    Intervention,
    KeepOnly,
    NeuronSet,
    RandomInput,
    Scale,
    SetValue,
    StepRef,
)


@dataclass(frozen=True)
class Parts:
    """What the parser read from one intervention's text."""

    neurons: NeuronSet
    step: StepRef
    hook: str
    layer: int | None
    value: float
    source: str


@dataclass(frozen=True)
class Op:
    """One kind of intervention: its name, its form, what it does, an example, and the class it builds."""

    name: str
    form: str
    meaning: str
    example: str
    make: Callable[[Parts], Intervention]
    value: str = ""  # the name of its =NUMBER, if it takes one
    source: str = ""  # the name of its <SOURCE, if it takes one


GRAMMAR: tuple[Op, ...] = (
    Op("zero", "zero:NEURONS@STEP", "set the neurons to 0", "zero:all@T-1",
       lambda p: SetValue(p.neurons, p.step, p.hook, 0.0, layer=p.layer)),
    Op("set", "set:NEURONS=VALUE@STEP", "set the neurons to VALUE", "set:3,17=0.5@2",
       lambda p: SetValue(p.neurons, p.step, p.hook, p.value, layer=p.layer), value="VALUE"),
    Op("scale", "scale:NEURONS=FACTOR@STEP", "multiply the neurons by FACTOR", "scale:storing=2@T-1",
       lambda p: Scale(p.neurons, p.step, p.hook, p.value, layer=p.layer), value="FACTOR"),
    Op("keep", "keep:NEURONS@STEP", "keep only these neurons, zero every other one", "keep:0-49@T",
       lambda p: KeepOnly(p.neurons, p.step, p.hook, layer=p.layer)),
    Op("copy", "copy:NEURONS@STEP<FROM", "the neurons take their values at step FROM of the clean run",
       "copy:3,17@T-3<T-1", lambda p: CopyFromStep(p.neurons, p.step, p.hook, StepRef.parse(p.source), layer=p.layer),
       source="FROM"),
    Op("swap", "swap:NEURONS@STEP<SOURCE", "the neurons take their values at STEP of another SOURCE's clean run "
       "(a sentence ending in its WORD@T controls; a step relative to T reads SOURCE at its own T)",
       "swap:all@T-1<the queen is here queen@2",
       lambda p: CopyFromRun(p.neurons, p.step, p.hook, p.source.strip(), layer=p.layer), source="SOURCE"),
    Op("attend", "attend:POSITIONS@STEP", "an attention decoder attends only to these source positions (0 is the "
       "first source token), with equal weights", "attend:2@3",
       lambda p: Attend(p.neurons, p.step, "attention", layer=p.layer)),
    Op("randin", "randin@STEP[:seed=N]", "replace the decoder's input token by a random word (STEP * = every step "
       "after <bos>)", "randin@*", lambda p: RandomInput(NeuronSet(None), p.step, seed=int(p.value))),
)

TERMS: tuple[tuple[str, str], ...] = (
    ("NEURONS", "all, indices and ranges (0,5,10-20), or a group or role name (storing, OUTPUTTING) that stays a "
     "name in sessions and is looked up when the run starts"),
    ("STEP", "t (t<0 encoding, 0 the end of encoding, t≥1 decoding step t), T, T-k or T+k (relative to each "
     "example's first control position), or * (every decoding step)"),
    ("/lK", "after STEP: act on layer K of a multi-layer model (default: the top layer)"),
    (".HOOK", "after the operation: act on another hook point than h: .c (an LSTM's cell state) or a gate (.r .z .n "
     "of a GRU; .i .f .g .o of an LSTM), changed inside the step before h is formed from it; on a model with "
     "attention, .attention (its weights; NEURONS are source positions, 0 the first token; nothing renormalises "
     "them) or .context (the context vector it reads)"),
)

OPS = {op.name: op for op in GRAMMAR}
_FORM = re.compile(r"^(?P<op>[a-z]+)(\.(?P<hook>[a-z]+))?:(?P<neurons>[^@=<]+)(=(?P<value>[^@]+))?@(?P<step>[^<]+)"
                   r"(<(?P<src>.+))?$")
_RANDIN = re.compile(r"randin@(?P<step>[^:]+)(:seed=(?P<seed>\d{1,9}))?")


def examples_line() -> str:
    return ", ".join(op.example for op in GRAMMAR)


def prompt_title() -> str:
    """The explorer's intervention prompt names every operation."""
    return f"Intervention ({'/'.join(OPS)}; ? lists the syntax; a group or role name stands for its neurons)"


def help_text() -> str:
    """The syntax as plain lines: the explorer's `?` answer and the CLI's --intervene help."""
    width = max(len(op.form) for op in GRAMMAR)
    lines = [f"{op.form:<{width}}  {op.meaning}" for op in GRAMMAR]
    lines += [f"{name}: {text}" for name, text in TERMS]
    return "\n".join(lines + [f"e.g. {examples_line()}"])


def markdown_table() -> str:
    """The docs' table (docs/cli.md keeps it current; a test checks)."""
    rows = ["| operation | form | what it does | example |", "|---|---|---|---|"]
    rows += [f"| `{op.name}` | `{op.form}` | {op.meaning} | `{op.example}` |" for op in GRAMMAR]
    rows += ["", "| term | meaning |", "|---|---|"] + [f"| `{name}` | {text} |" for name, text in TERMS]
    return "\n".join(rows)


def parse_intervention(text: str) -> Intervention:
    """One intervention from its text; a UserError says what is wrong and shows the forms."""
    s = text.strip()
    m = _RANDIN.fullmatch(s)
    if m:
        return OPS["randin"].make(Parts(NeuronSet(None), StepRef.parse(m["step"]), "input", None, int(m["seed"] or 0), ""))
    m = _FORM.match(s)
    if not m or m["op"] not in OPS or m["op"] == "randin":
        raise UserError(f"intervention {text!r} is not understood; use e.g. {examples_line()}")
    op = OPS[m["op"]]
    step_text, layer = _split_layer(m["step"], text)
    hook = m["hook"] or "h"
    if hook not in HOOKS:
        raise UserError(f"intervention {text!r}: .{hook} is not a hook point; use .c (an LSTM's cell state), a "
                        "gate: .r .z .n (GRU), .i .f .g .o (LSTM), or .attention / .context; none means h")
    if bool(op.value) != (m["value"] is not None):
        raise UserError(f"intervention {text!r}: {op.name} needs a value, as {op.form} (e.g. {op.example})"
                        if op.value else f"intervention {text!r}: {op.name} takes no =VALUE ({op.form})")
    if bool(op.source) != (m["src"] is not None) or (op.source and not m["src"].strip()):
        raise UserError(f"intervention {text!r}: {op.name} is written {op.form}")
    value = _number(m["value"], text) if op.value else 0.0
    return op.make(Parts(NeuronSet.parse(m["neurons"]), StepRef.parse(step_text), hook, layer, value, m["src"] or ""))


def _number(value: str, text: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise UserError(f"intervention {text!r}: {value!r} is not a number") from None
    if number != number or abs(number) == float("inf"):
        raise UserError(f"intervention {text!r}: the value must be a finite number")
    return number


def _split_layer(step_text: str, text: str) -> tuple[str, int | None]:
    """`T-1/l0` -> (`T-1`, 0); a step without `/lK` acts on the top layer."""
    head, sep, tail = step_text.strip().partition("/")
    if not sep:
        return head, None
    m = re.fullmatch(r"[lL](\d{1,3})", tail.strip())
    if not m:
        raise UserError(f"intervention {text!r}: {tail!r} is not a layer; write /l0, /l1, … after the step")
    return head, int(m.group(1))
