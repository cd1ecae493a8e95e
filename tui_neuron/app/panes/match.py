"""Pattern search in the explorer: where in the held-out text do the selected neurons do this?

`S` asks for a threshold (and `below`, `window N`, `decoder`), runs the same `run_match` job as
`tui-neuron analyze match` (quick preset) in a worker, and shows the histograms and the ranked places;
enter on a place opens it as the current source.
"""

from __future__ import annotations

from typing import ClassVar

from textual import on, work
from textual.reactive import var
from textual.widget import Widget

from ...checkpoint.format import Checkpoint
from ...errors import UserError
from ..bindings import B
from ..messages import JobDone, OpenSource, Status
from ..progress import answer, status_progress
from ..screens import MatchScreen, PromptScreen
from ..viewmodel import DecodeView
from .redraw import Redraws


def parse_match_request(text: str) -> dict:
    """`0.5 below window 4 decoder` -> MatchJob fields; one line for anything else."""
    words = text.replace("=", " ").split()
    if not words:
        raise UserError("give a threshold, e.g. 0.5 (or 0.2 below window 4 decoder)")
    fields: dict = {}
    i = 0
    while i < len(words):
        w = words[i].lower()
        if w == "below":
            fields["below"] = True
        elif w in ("decoder", "encoder"):
            fields["part"] = w
        elif w == "window" and i + 1 < len(words) and words[i + 1].isdigit() and len(words[i + 1]) < 4:
            fields["window"] = max(1, int(words[i + 1]))
            i += 1
        else:
            try:
                fields["threshold"] = float(w)
            except ValueError:
                raise UserError(f"{words[i]!r} is not a threshold, below, window N or decoder") from None
            if fields["threshold"] != fields["threshold"] or abs(fields["threshold"]) > 1e6:
                raise UserError("give a finite threshold, e.g. 0.5")
        i += 1
    return fields


class MatchPane(Redraws, Widget):
    """Runs pattern searches; holds no view of its own (the results open on a screen)."""

    selection: var[tuple[int, ...]] = var((), init=False)
    neuron: var[int] = var(0, init=False)
    view: var[DecodeView | None] = var(None, init=False)  # its controls stay when an encoder place opens

    REDRAW: ClassVar[dict[str, tuple[str, ...]]] = {}  # draws nothing: results open on a screen

    BINDINGS = [
        B("search", "S", "search", "Search", "pattern search: where in the held-out text the selected neurons are above (or "
          "below) a threshold for a window of steps; histograms, ranked places, enter opens one", show=False),
    ]

    def __init__(self, ckpt: Checkpoint, **kw):
        super().__init__(**kw)
        self.ckpt = ckpt

    @property
    def neurons(self) -> tuple[int, ...]:
        return self.selection or (self.neuron,)

    def action_search(self) -> None:
        shown = ",".join(map(str, self.neurons[:8])) + ("…" if len(self.neurons) > 8 else "")
        self.app.push_screen(PromptScreen(f"Match neurons {shown}: THRESHOLD [below] [window N] [decoder]",
                                          "0.5 window 3", "threshold [below] [window N] [decoder]"), self._entered)

    def _entered(self, text: str | None) -> None:
        if text is None:
            return
        try:
            fields = parse_match_request(text)
        except UserError as e:
            self.notify(str(e), severity="error")
            return
        self.post_message(Status("⟳ matching…"))
        self.match_worker(self.neurons, fields)

    @work(thread=True, exclusive=True, group="match")
    def match_worker(self, neurons: tuple[int, ...], fields: dict) -> None:
        from ...analysis.jobs import MatchJob, preset, run_match

        answer(self, "match", lambda: run_match(self.ckpt, preset(MatchJob, "quick", neurons=neurons, **fields),
                                                status_progress(self)))

    @on(JobDone)
    def _found(self, message: JobDone) -> None:
        if message.job == "match":
            message.stop()
            self.post_message(Status(""))
            self.show_results(message.result)

    def place_t(self, match: dict) -> int | None:
        """The step where the place's span starts once opened: a decoder place says it; an encoder place is its
        first word's step, read with the current controls after the sentence (two tokens each)."""
        if match.get("t_start") is not None:
            return int(match["t_start"])
        controls = len(self.view.controls) if self.view is not None else 0
        return int(match["start"]) - len(match["tokens"]) - 2 * controls + 1

    def show_results(self, result: dict) -> None:
        """Show a match result; the place chosen with enter becomes the current source."""
        def chosen(match: dict | None) -> None:
            if match is not None:
                self.post_message(OpenSource(match["source"], list(match["controls"]) or None, self.place_t(match)))
        self.app.push_screen(MatchScreen(result), chosen)
