"""Explorer sessions: source, controls, neuron groups, interventions, notes, and where the researcher was
(loaded results files, the selection, the neuron, the step, the layer, the source compared with), as JSON."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Literal

from msgspec import Meta, Struct

from ..checkpoint.format import atomic_write_text
from ..checkpoint.validate import read_json_file, validated
from ..errors import UserError
from ..model.interventions import Intervention
from ..model.syntax import parse_intervention


@dataclass(frozen=True)
class Stacked:
    """An intervention on the explorer's stack, switched on or off."""

    intervention: Intervention
    enabled: bool = True

    def to_json(self) -> dict:
        return {"spec": self.intervention.spec(), "enabled": self.enabled}


@dataclass
class Session:
    source: str = ""
    controls: list[str] = field(default_factory=list)
    groups: dict[str, list[int]] = field(default_factory=dict)
    interventions: list[Stacked] = field(default_factory=list)  # saved as {"spec": str, "enabled": bool}
    notes: str = ""
    checkpoint: str = ""
    version: int = 1
    results: list[str] = field(default_factory=list)  # results files loaded with f, reloaded on open
    selection: list[int] = field(default_factory=list)
    neuron: int | None = None
    step: int | None = None  # the timestep t shown
    layer: int | None = None
    compare: str = ""  # source B with its controls, when comparing
    compare_mode: str = "A"  # A, B or A−B
    run_view: str = "original"  # original, changed or difference


    def active_interventions(self) -> list[Intervention]:
        return [s.intervention for s in self.interventions if s.enabled]

    def to_json(self) -> dict:
        """The file's content: interventions in their text syntax (role and group names kept as typed)."""
        data = asdict(self)
        data["interventions"] = [s.to_json() for s in self.interventions]
        return data


MAX_NAME = 200


def session_file(folder: Path, name: str) -> Path:
    """Where a session named `name` is saved: a single file name inside `folder` (.json added when it has no
    suffix). A separator, `..`, a NUL, a control character or more than 200 characters is refused with one line."""
    name = name.strip()
    if not name:
        raise UserError("give the session a name, e.g. king-storing")
    if len(name) > MAX_NAME:
        raise UserError(f"a session name has at most {MAX_NAME} characters (this one has {len(name)})")
    if any(not c.isprintable() for c in name):
        raise UserError("a session name cannot hold control characters (a NUL, a newline, …)")
    if "/" in name or "\\" in name or name in (".", "..") or name.startswith("."):
        raise UserError(f"{name!r} is not a plain file name: sessions are saved in {folder}, so give a name "
                        "without / or \\ that does not start with a dot")
    path = folder / name
    return path if path.suffix else path.with_suffix(".json")


def save_session(session: Session, path: str | Path) -> None:
    atomic_write_text(path, json.dumps(session.to_json(), indent=2) + "\n")


Neuron = Annotated[int, Meta(ge=0, lt=1 << 20)]


class _InterventionEntry(Struct, kw_only=True, forbid_unknown_fields=True):
    spec: Annotated[str, Meta(min_length=1, max_length=10_000)]
    enabled: bool = True


class _SessionSchema(Struct, kw_only=True):
    source: Annotated[str, Meta(max_length=100_000)] = ""
    controls: Annotated[list[str], Meta(max_length=1000)] = []
    groups: Annotated[dict[str, list[Neuron]], Meta(max_length=10_000)] = {}
    interventions: Annotated[list[_InterventionEntry], Meta(max_length=10_000)] = []
    notes: Annotated[str, Meta(max_length=1_000_000)] = ""
    checkpoint: Annotated[str, Meta(max_length=4096)] = ""
    version: Annotated[int, Meta(ge=1, le=1)] = 1
    results: Annotated[list[Annotated[str, Meta(min_length=1, max_length=4096)]], Meta(max_length=100)] = []
    selection: Annotated[list[Neuron], Meta(max_length=1 << 16)] = []
    neuron: Neuron | None = None
    step: Annotated[int, Meta(ge=-100_000, le=100_000)] | None = None
    layer: Annotated[int, Meta(ge=0, lt=1000)] | None = None
    compare: Annotated[str, Meta(max_length=100_000)] = ""
    compare_mode: Literal["A", "B", "A−B"] = "A"
    run_view: Literal["original", "changed", "difference"] = "original"


def load_session(path: str | Path) -> Session:
    """Read and validate a session file (strict types: "enabled": "no" is refused, not taken as true)."""
    path = Path(path)
    data = read_json_file(path, "session file")
    if not isinstance(data, dict):
        raise UserError(f"session file {path} must hold a JSON object")
    parsed = validated(_SessionSchema, data, f"session file {path}")
    try:
        stack = [Stacked(parse_intervention(e.spec), e.enabled) for e in parsed.interventions]
    except UserError as e:
        raise UserError(f"session file {path}: {e}") from None
    return Session(parsed.source, list(parsed.controls), {k: list(v) for k, v in parsed.groups.items()}, stack,
                   parsed.notes, parsed.checkpoint, parsed.version, list(parsed.results), list(parsed.selection),
                   parsed.neuron, parsed.step, parsed.layer, parsed.compare, parsed.compare_mode, parsed.run_view)
