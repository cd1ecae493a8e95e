"""Where tui-neuron keeps what it writes without being given a path: never the current directory.

Results and sessions go to a per-user data folder (platformdirs; `TUI_NEURON_HOME` overrides it), recordings
to a per-user cache (`TUI_NEURON_CACHE` overrides it). New files get a free name, so nothing is overwritten.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs


def data_dir() -> Path:
    env = os.environ.get("TUI_NEURON_HOME")
    return Path(env) if env else Path(platformdirs.user_data_dir("tui-neuron", appauthor=False))


def results_dir() -> Path:
    return data_dir() / "results"


def sessions_dir() -> Path:
    return data_dir() / "sessions"


def cache_dir() -> Path:
    env = os.environ.get("TUI_NEURON_CACHE")
    return Path(env) if env else Path(platformdirs.user_cache_dir("tui-neuron", appauthor=False)) / "recordings"


def free_path(folder: Path, stem: str, suffix: str = ".json") -> Path:
    """folder/stem.json, or stem-2.json, stem-3.json, … : the first name not taken."""
    path = folder / f"{stem}{suffix}"
    n = 2
    while path.exists():
        path = folder / f"{stem}-{n}{suffix}"
        n += 1
    return path


def newest(folder: Path, pattern: str) -> Path | None:
    """The most recently written file matching pattern in folder, if any."""
    found = [p for p in folder.glob(pattern) if p.is_file()] if folder.is_dir() else []
    return max(found, key=lambda p: p.stat().st_mtime) if found else None
