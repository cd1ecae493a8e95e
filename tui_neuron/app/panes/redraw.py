"""Panes redraw from their bound state: REDRAW names, per attribute, the draw methods that read it."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar


class Redraws:
    """Mixin for a pane: `REDRAW = {"step": ("draw_step",), ...}` calls those draws, in order, when the
    attribute changes (one declaration instead of a `watch_*` method per attribute)."""

    REDRAW: ClassVar[dict[str, tuple[str, ...]]] = {}

    def on_mount(self) -> None:
        for attribute, draws in self.REDRAW.items():
            self.watch(self, attribute, self._drawer(draws), init=False)  # type: ignore[attr-defined]

    def _drawer(self, draws: tuple[str, ...]) -> Callable[[], None]:
        methods = [getattr(self, name) for name in draws]

        def redraw() -> None:
            for method in methods:
                method()
        return redraw
