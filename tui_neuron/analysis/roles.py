"""The paper's four neuron roles and the manipulation that tests each (Lee et al., Table 1).

One definition serves the verification table, the dose-response curves and the explorer's `p` key.
Steps follow the stepper's clock: t = -1 reads the control token, t = 0 ends encoding, decoding step t
emits output t, and T is the control's position. A manipulation enters only examples whose steps exist
(`min_T`), and its success is the control token landing at T + `shift`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from ..model.interventions import CopyFromStep, Intervention, KeepOnly, NeuronSet, SetValue, StepRef


class Role(str, Enum):
    STORING = "storing"
    COUNTING = "counting"
    TRIGGERING = "triggering"
    OUTPUTTING = "outputting"


ROLES: tuple[str, ...] = tuple(r.value for r in Role)

Build = Callable[[NeuronSet, int, "int | None"], list[Intervention]]


def _at(t: int) -> StepRef:
    return StepRef(int(t))


@dataclass(frozen=True)
class Manipulation:
    name: str  # the row of Table 1
    role: Role
    build: Build  # (neurons, T, layer) -> the interventions for an example at position T
    shift: int  # the control token is expected at T + shift
    min_T: int  # examples with a smaller T lack the steps this writes or reads
    definition: str  # which steps it writes, in words, for the results and the README
    neurons: str = ""  # which of a token's sets it uses (default: its role's; counting_shared: the shared stage-1 set)

    @property
    def set_key(self) -> str:
        return self.neurons or self.role.value

    def interventions(self, neurons: NeuronSet, T: int, layer: int | None = None) -> list[Intervention]:
        return self.build(neurons, T, layer)


def _zero(offset: int) -> Build:
    return lambda ns, T, layer: [SetValue(ns, _at(T + offset), layer=layer)]


def _previous_values(ns: NeuronSet, T: int, layer: int | None) -> list[Intervention]:
    return [CopyFromStep(ns, _at(t), source=_at(t - 1), layer=layer) for t in range(0, T - 1)]


def _copy(dst: int, src: int) -> Build:
    return lambda ns, T, layer: [CopyFromStep(ns, _at(T + dst), source=_at(T + src), layer=layer)]


def _held_back(k: int) -> Build:
    """Counting held back by k at every step: h[t] <- clean h[t-k] for t = k .. T-1+k (the counter runs k steps
    late throughout, so the token should land at T+k)."""
    return lambda ns, T, layer: [CopyFromStep(ns, _at(t), source=_at(t - k), layer=layer) for t in range(k, T + k)]


def _counting(k: int, neurons: str = "") -> list[Manipulation]:
    """Both readings of the paper's counting test ("replace the values of counting neurons at t with those of
    the previous stage (t - k)"): once at T-1, and at every step; with the token's own set, or the shared one."""
    which = " (shared set)" if neurons else ""
    set_words = "the shared stage-1 counting set" if neurons else "the set"
    return [
        Manipulation(f"counting: h[T-1] <- h[T-1-{k}] (token {k} later){which}", Role.COUNTING, _copy(-1, -1 - k), k,
                     k + 2, f"h[T-1] of {set_words} takes the clean h[T-1-{k}], read no earlier than t = 1 "
                     f"(T >= {k + 2}); success: the token lands {k} later, at T+{k}", neurons),
        Manipulation(f"counting: every h[t] <- h[t-{k}] (token {k} later){which}", Role.COUNTING, _held_back(k), k,
                     k + 2, f"for every t in {k}..T-1+{k}, h[t] of {set_words} takes the clean h[t-{k}] (held back "
                     f"by {k} throughout; T >= {k + 2}, as the single-step row); success: the token lands at T+{k}",
                     neurons),
    ]


MANIPULATIONS: tuple[Manipulation, ...] = (
    Manipulation("storing: zero at T-1", Role.STORING, _zero(-1), 0, 1,
                 "h[T-1] of the set is zeroed (at T = 1 that is t = 0, the encoder's last state); success: "
                 "the token still lands at T"),
    Manipulation("storing: previous-step values before T-1", Role.STORING, _previous_values, 0, 2,
                 "for every t in 0..T-2, h[t] of the set takes the clean h[t-1]; T >= 2"),
    *(m for k in (1, 2, 3) for m in _counting(k)),
    *(m for k in (1, 2, 3) for m in _counting(k, "counting_shared")),
    *(Manipulation(f"triggering: h[T-1-{k}] <- h[T-1] (token {k} earlier)", Role.TRIGGERING, _copy(-1 - k, -1), -k,
                   k + 1, f"h[T-1-{k}] of the set takes the clean h[T-1], written no earlier than t = 0 "
                   f"(T >= {k + 1}; at T = {k + 1} it writes into t = 0); success: the token lands at T-{k}")
      for k in (1, 2, 3, 4)),
    Manipulation("outputting: zero at T", Role.OUTPUTTING, _zero(0), 0, 1,
                 "h[T] of the set is zeroed before the output layer reads it; success: the token still lands"),
    Manipulation("outputting: keep only at T", Role.OUTPUTTING,
                 lambda ns, T, layer: [KeepOnly(ns, _at(T), layer=layer)], 0, 1,
                 "every neuron of h[T] outside the set is zeroed; success: the token still lands"),
)

# the one manipulation per role that the curves and the explorer's `p` use
_BY_NAME = {m.name: m for m in MANIPULATIONS}
PRIMARY: dict[Role, Manipulation] = {
    Role.STORING: _BY_NAME["storing: zero at T-1"],
    Role.COUNTING: _BY_NAME["counting: h[T-1] <- h[T-1-1] (token 1 later)"],
    Role.TRIGGERING: _BY_NAME["triggering: h[T-1-1] <- h[T-1] (token 1 earlier)"],
    Role.OUTPUTTING: _BY_NAME["outputting: zero at T"],
}


def paper_intervention(role: str, step: StepRef) -> Intervention:
    """The paper's manipulation for a role's neurons (named, so the stack says which role), as the explorer
    applies it at a chosen step (taken as the step the role acts on: T-1 for storing, counting and triggering,
    T for outputting)."""
    r, neurons = Role(role), NeuronSet(None, role)
    if r in (Role.STORING, Role.OUTPUTTING):
        return SetValue(neurons, step)
    if r is Role.COUNTING:  # counting values from one step earlier: the token comes later
        return CopyFromStep(neurons, step, source=StepRef(step.offset - 1, step.relative_to_t))
    return CopyFromStep(neurons, step, source=StepRef(-1, relative_to_t=True))  # triggering values of T-1


def role_groups(roles: dict[str, dict[str, list[int]]], token: str) -> dict[str, list[int]]:
    """Each role's neurons for a control token, from a functions result (`roles[role][token]`).

    Files written before counting became per token list one shared set under "*"; it serves any token."""
    groups: dict[str, list[int]] = {}
    for role, per_token in roles.items():
        neurons = per_token.get(token) or per_token.get("*", [])
        if neurons:
            groups[role] = [int(j) for j in neurons]
    return groups


def covered_tokens(roles: dict[str, dict[str, list[int]]]) -> list[str]:
    """The control tokens a functions result has roles for, in its order ("*" is a shared set, not a token)."""
    return list(dict.fromkeys(t for per_token in roles.values() for t, n in per_token.items() if n and t != "*"))


def coverage_line(roles: dict[str, dict[str, list[int]]], shown: int = 12) -> str:
    """`covers 50 tokens: ',', 'the', … (and 38 more)`: what a user can press 1-4 on."""
    tokens = covered_tokens(roles)
    head = ", ".join(repr(t) for t in tokens[:shown])
    more = f" and {len(tokens) - shown} more" if len(tokens) > shown else ""
    return f"covers {len(tokens)} token{'s' if len(tokens) != 1 else ''}: {head}{more}"
