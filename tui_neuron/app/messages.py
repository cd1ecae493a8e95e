"""Messages the panes and workers post up to the app; the app changes its reactive state and binds it down.

Fields are declared as dataclasses (Message runs its own set-up in __post_init__)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from textual.message import Message

from ..model.interventions import Intervention
from .viewmodel import DecodeView


class StateRequest(Message):
    """A pane asks the app to change shared state (step, neuron, selection, groups, …): attributes flow down.

    A value may be a function of the current value (`step=lambda s: s + 1`): the app applies it to its own
    state, so keys pressed faster than the state flows back down each count."""

    def __init__(self, **changes: Any):
        super().__init__()
        self.changes = changes


@dataclass
class AddIntervention(Message):
    """Add an intervention, parsed where it was typed (checked against the model by the app, which owns the
    stack)."""

    intervention: Intervention


@dataclass
class Status(Message):
    """What is running, for the status box (`text` empty: ready)."""

    text: str = ""


@dataclass
class JobFailed(Message):
    """A worker's job failed with a user-fixable error; `job` names it (decode, probe, functions, memory)."""

    job: str
    error: str
    request: int | None = None


@dataclass
class DecodeDone(Message):
    """A decode finished; `request` lets the app drop an answer to an older request."""

    view: DecodeView
    request: int


@dataclass
class JobDone(Message):
    """A worker's job finished: `job` names it (functions, probe, rank, memory, match, compare), `result` is its
    results document (or view), written to `path` when it was saved; `label` says what it was about."""

    job: str
    result: Any
    path: Path | None = None
    label: str = ""
    mode: str = ""  # compare: what to show once B has run


@dataclass
class OpenResults(Message):
    """Open this results file (a session reopening its results); the app hands it to the analyses pane."""

    path: str


@dataclass
class ShowMatch(Message):
    """Show a pattern-search result (a reopened results file); the app hands it to the match pane."""

    result: dict


@dataclass
class ShowPatch(Message):
    """Show a patching result (a reopened results file); the app hands it to the patching pane."""

    result: dict


@dataclass
class LoadCompare(Message):
    """Compare with this source B (a session reopening its compare view); the app hands it to the compare pane."""

    text: str
    mode: str = "A−B"


@dataclass
class ResultsOpened(Message):
    """A results file was loaded (or written by F); the session remembers it."""

    path: Path


@dataclass
class NoteAdded(Message):
    """A note was written with m; the session keeps it."""

    text: str


@dataclass
class OpenSource(Message):
    """Make this the current source (a match opened from the search); None controls keep the current ones;
    `t`: the step to show once it has run."""

    source: str
    controls: list[str] | None = None
    t: int | None = None


def count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")
