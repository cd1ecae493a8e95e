"""Explorer sessions: source, controls, neuron groups, interventions and notes, as a JSON file."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..errors import UserError
from ..model.checkpoint import atomic_write_text
from ..model.interventions import parse_intervention


@dataclass
class Session:
    source: str = ""
    controls: list[str] = field(default_factory=list)
    groups: dict[str, list[int]] = field(default_factory=dict)
    interventions: list[dict] = field(default_factory=list)  # {"spec": str, "enabled": bool}
    notes: str = ""
    checkpoint: str = ""
    version: int = 1

    def active_interventions(self) -> list[str]:
        return [d["spec"] for d in self.interventions if d.get("enabled", True)]


def save_session(session: Session, path: str | Path) -> None:
    atomic_write_text(path, json.dumps(asdict(session), indent=2) + "\n")


def load_session(path: str | Path) -> Session:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"session file {path} does not exist")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"session file {path} is not valid JSON ({e})") from None
    if not isinstance(data, dict):
        raise UserError(f"session file {path} must hold a JSON object")
    known = {k: data[k] for k in Session.__dataclass_fields__ if k in data}
    try:
        session = Session(**known)
        session.controls = [str(c) for c in session.controls]
        session.groups = {str(k): [int(i) for i in v] for k, v in dict(session.groups).items()}
        session.interventions = [
            {"spec": str(d["spec"]), "enabled": bool(d.get("enabled", True))} for d in session.interventions
        ]
    except (TypeError, ValueError, KeyError, AttributeError) as e:
        raise UserError(f"session file {path} has a malformed field ({e})") from None
    for d in session.interventions:
        parse_intervention(d["spec"])  # a bad spec fails here with a clear message
    return session
