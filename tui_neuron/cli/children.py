"""The processes a command started, found and ended: `serve` starts one explorer per visitor, and stopping it by
any signal must end them all (a visitor's explorer ignores SIGTERM and SIGHUP, so survivors get SIGKILL)."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (children, their children …), from /proc; empty where there is no /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # the command name may hold spaces and parentheses: the fields after its last ')' are fixed
        fields = stat.rsplit(")", 1)[-1].split()
        parents[int(entry.name)] = int(fields[1])
    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        kids = [p for p, pp in parents.items() if pp == parent]
        found += kids
        frontier += kids
    return found


def end_descendants(pid: int | None = None, grace: float = 2.0) -> int:
    """SIGTERM to every descendant of `pid` (default: this process), SIGKILL to those still there after `grace`
    seconds; how many there were."""
    kids = descendants(os.getpid() if pid is None else pid)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for kid in kids:
            try:
                os.kill(kid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + grace
        while kids and time.monotonic() < deadline:
            kids = [k for k in kids if _alive(k)]
            time.sleep(0.05)
        if not kids:
            break
    return len(kids)


def _alive(pid: int) -> bool:
    try:
        os.waitpid(pid, os.WNOHANG)  # reap a child of ours, so it does not linger as a zombie
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "Z" not in _state(pid)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
    except (OSError, IndexError):
        return "Z"


def quiet_closed_loop_warnings() -> None:
    """After the server's event loop has closed, its subprocess transports' finalisers report 'Event loop is
    closed' as an ignored exception (a traceback on Ctrl-C); those, and only those, are dropped."""
    previous = sys.unraisablehook

    def hook(info) -> None:  # type: ignore[no-untyped-def]
        if isinstance(info.exc_value, RuntimeError) and "Event loop is closed" in str(info.exc_value):
            return
        previous(info)

    sys.unraisablehook = hook
