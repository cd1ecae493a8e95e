"""Progress lines for the status box: a stage, how far it is, and the time left."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from textual.widget import Widget

from ..errors import UserError
from .messages import JobDone, JobFailed, Status


class Eta:
    """`stage done/total · m:ss left` for a job's progress callback."""

    def __init__(self) -> None:
        self.started: dict[str, float] = {}

    def __call__(self, stage: str, done: int, total: int) -> str:
        t0 = self.started.setdefault(stage, time.monotonic())
        left = ""
        if 0 < done < total:
            secs = (time.monotonic() - t0) / done * (total - done)
            left = f" · {int(secs // 60)}:{int(secs % 60):02d} left"
        return f"{stage} {done}/{total}{left}"


def status_progress(pane: Widget) -> Callable[[str, int, int], None]:
    """A job's progress callback for a worker: `⟳ stage done/total · m:ss left` posted to the status box."""
    eta = Eta()

    def report(stage: str, done: int, total: int) -> None:
        pane.post_message(Status(f"⟳ {eta(stage, done, total)}"))
    return report


def answer(pane: Widget, job: str, compute: Callable[[], Any], failed: str = "", label: str = "") -> None:
    """A worker's answer, typed: JobDone with the result, or JobFailed (named `failed`, default the job) with a
    user-fixable error."""
    try:
        result = compute()
    except (UserError, OSError) as e:
        pane.post_message(JobFailed(failed or job, str(e)))
        return
    pane.post_message(JobDone(job, result, label=label))
