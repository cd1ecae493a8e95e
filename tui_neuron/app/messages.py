"""Messages the panes and workers post up to the app; the app changes its reactive state and binds it down."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual.message import Message

from .viewmodel import DecodeView


class StateRequest(Message):
    """A pane asks the app to change shared state (step, neuron, selection, groups, …): attributes flow down.

    A value may be a function of the current value (`step=lambda s: s + 1`): the app applies it to its own
    state, so keys pressed faster than the state flows back down each count."""

    def __init__(self, **changes: Any):
        super().__init__()
        self.changes = changes


class AddIntervention(Message):
    """Add an intervention given in the text syntax (checked by the app, which owns the list)."""

    def __init__(self, text: str):
        super().__init__()
        self.text = text


class Status(Message):
    """What is running, for the status box (`text` empty: ready)."""

    def __init__(self, text: str = ""):
        super().__init__()
        self.text = text


class JobFailed(Message):
    """A worker's job failed with a user-fixable error; `job` names it (decode, probe, functions, memory)."""

    def __init__(self, job: str, error: str, request: int | None = None):
        super().__init__()
        self.job, self.error, self.request = job, error, request


class DecodeDone(Message):
    def __init__(self, view: DecodeView, request: int):
        super().__init__()
        self.view, self.request = view, request


class ResultsOpened(Message):
    """A results file was loaded (or written by F); the session remembers it."""

    def __init__(self, path: Path):
        super().__init__()
        self.path = path


class NoteAdded(Message):
    def __init__(self, text: str):
        super().__init__()
        self.text = text


def count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")
