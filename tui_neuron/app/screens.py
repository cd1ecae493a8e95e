"""Modal screens: the help screen (built from the app's bindings) and a one-line prompt."""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static

from ..model.syntax import help_text


def key_name(key: str) -> str:
    return key.replace("question_mark", "?").replace("left_square_bracket", "[").replace("right_square_bracket", "]")


def key_rows(bindings: list[Binding]) -> list[tuple[str, str, str]]:
    """(key, action, what it does) for every binding and the extra keys: the help screen and the README table."""
    return [(key_name(b.key), b.description, b.tooltip or "") for b in bindings]


def markdown_key_table(bindings: list[Binding]) -> str:
    lines = ["| key | action | what it does |", "|---|---|---|"]
    for key, action, what in key_rows(bindings):
        shown = " / ".join(f"`{k}`" for k in key.split(" / "))
        lines.append(f"| {shown} | {action} | {what} |")
    return "\n".join(lines)


class HelpScreen(ModalScreen[None]):
    """Every key of the explorer with what it does; generated from the bindings so nothing is missed."""

    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close help", id="help-close")]
    COMPONENT_CLASSES = {"help--key", "help--action"}

    def __init__(self, bindings: list[Binding]):
        super().__init__()
        self._key_list = bindings

    def compose(self) -> ComposeResult:
        self.table = table = Table(title="tui-neuron keys", expand=True, show_lines=False)
        table.add_column("key", style=self.get_component_rich_style("help--key", partial=True), no_wrap=True)
        table.add_column("action", style=self.get_component_rich_style("help--action", partial=True))
        table.add_column("what it does")
        for key, action, what in key_rows(self._key_list):
            table.add_row(key, action, what)
        with VerticalScroll(id="help-box"):
            yield Label("escape closes this help · the arrow keys and page keys scroll it", id="help-hint")
            yield Static(table, id="help-table")
            yield Label("Interventions:\n" + help_text(), id="help-syntax")


class QuitScreen(ModalScreen[str | None]):
    """Quitting with unsaved changes: s saves and quits, d discards and quits, escape stays."""

    BINDINGS = [Binding("s", "choose('save')", "Save and quit", id="quit-save"),
                Binding("d", "choose('discard')", "Discard and quit", id="quit-discard"),
                Binding("escape,c", "choose(None)", "Cancel", id="quit-cancel")]

    def __init__(self, session_path):
        super().__init__()
        self._path = session_path

    def compose(self) -> ComposeResult:
        with Vertical(id="prompt-box"):
            yield Label("This session has unsaved changes.", id="prompt-title")
            yield Label(f"s  save to {self._path} and quit\nd  discard and quit\nescape  stay", id="quit-choices")

    def action_choose(self, choice: str | None) -> None:
        self.dismiss(choice)


class PromptScreen(ModalScreen[str | None]):
    """Ask for one line (a neuron set, an intervention, a group name); escape cancels."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="prompt-cancel")]

    def __init__(self, title: str, value: str = "", placeholder: str = ""):
        super().__init__()
        self._title, self._value, self._placeholder = title, value, placeholder

    def compose(self) -> ComposeResult:
        with Vertical(id="prompt-box"):
            yield Label(self._title, id="prompt-title")
            yield Input(self._value, placeholder=self._placeholder, id="prompt-input")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)


class ReadingScreen(ModalScreen[None]):
    """A screen that shows one thing to read (a result, the notes) until it is closed."""

    def __init__(self, content: Any):
        super().__init__()
        self.content = content


class MemoryScreen(ReadingScreen):
    """State-gradient curves over delay τ: σ1 and σ1/Σσ (Verwimp et al.), drawn with plotext."""

    BINDINGS = [Binding("escape,q", "dismiss", "Close", id="memory-close")]

    @property
    def result(self) -> dict:
        return self.content

    def compose(self) -> ComposeResult:
        from textual_plotext import PlotextPlot

        with Vertical(id="memory-box"):
            yield PlotextPlot(id="memory-sigma1")
            yield PlotextPlot(id="memory-share")
            curve = self.result["curves"]["all"]
            fit = curve["fit"]
            yield Label(f"{self.result['part']} state {self.result['state']}, {self.result['sequences']} windows; "
                        f"fit σ1 = {fit['a']:.2f}·e^(-{fit['b']:.3f}τ); escape closes", id="memory-hint")

    def on_mount(self) -> None:
        from textual_plotext import PlotextPlot

        curve = self.result["curves"]["all"]
        taus = list(range(len(curve["sigma1"])))
        for wid, key, title in (("#memory-sigma1", "sigma1", "σ1 of the normalised state gradient over τ"),
                                ("#memory-share", "sigma1_share", "σ1 / Σσ over τ")):
            plot = self.query_one(wid, PlotextPlot)
            plot.plt.plot(taus, curve[key], marker="braille")
            plot.plt.title(title)
            plot.refresh()


class NotesScreen(ReadingScreen):
    """The session's notes, to read back what was written with `m`."""

    BINDINGS = [Binding("escape,q,N", "dismiss", "Close", id="notes-close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="notes-box"):
            yield Label("notes of this session (m adds one; escape closes)", id="notes-title")
            yield Static(self.content or "no notes yet: press m to add one", id="notes-text")


class MatchScreen(ModalScreen[dict | None]):
    """A pattern search's answer: each neuron's value histogram and the ranked places; enter opens a place."""

    BINDINGS = [Binding("escape,q", "dismiss_none", "Close", id="match-close")]

    def __init__(self, result: dict):
        super().__init__()
        self.result = result

    def compose(self) -> ComposeResult:
        from textual.widgets import OptionList

        from ..analysis.places import histogram_text, marked_tokens

        r = self.result
        side = "below" if r["below"] else "above"
        with Vertical(id="match-box"):
            yield Label(f"{r['n_matches']} places where neuron(s) {','.join(map(str, r['neurons']))} are {side} "
                        f"{r['threshold']} for {r['window']} steps, over {r['n_sequences']} {r['part']} sequences "
                        "(enter opens a place as the source at its span; tab moves between the histograms and the "
                        "list; escape closes)", id="match-title")
            with Horizontal(id="match-body"):
                hist = [f"n{n} (mean {h['mean']:+.3f}):\n" + "\n".join(histogram_text(h, r["threshold"], 20))
                        for n, h in r["histograms"].items()]
                with VerticalScroll(id="match-histograms", can_focus=True):
                    yield Static("\n".join(hist) or "no states")
                with Vertical(id="match-right"):
                    yield Label("rank  share on  margin  place ([brackets]: the span)", id="match-columns")
                    options = [f"{m['rank']:>4}  {m['share']:>8.2f}  {m['margin']:+.3f}  {marked_tokens(m)}"
                               for m in r["matches"]]
                    # Text, not markup: a matched span is shown in [brackets], which markup would swallow
                    yield OptionList(*(Text(o) for o in options or ["no place matches: try another threshold or a "
                                                                     "shorter window"]), id="match-list")

    def on_mount(self) -> None:
        self.query_one("#match-list").focus()

    def on_option_list_option_selected(self, event) -> None:
        event.stop()
        if self.result["matches"]:
            self.dismiss(self.result["matches"][event.option_index])

    def action_dismiss_none(self) -> None:
        self.dismiss(None)


class RankedNeuronsScreen(ModalScreen[int | None]):
    """Neurons ranked by how much they differ at this step (signed); enter selects one."""

    BINDINGS = [Binding("escape,q", "dismiss_none", "Close", id="ranked-close")]

    def __init__(self, title: str, rows: list[tuple[int, float]]):
        super().__init__()
        self.title_text, self.rows = title, rows

    def compose(self) -> ComposeResult:
        from textual.widgets import OptionList

        with Vertical(id="ranked-box"):
            yield Label(f"{self.title_text}: largest |difference| first (enter selects the neuron)", id="ranked-title")
            yield OptionList(*(f"n{n:<5} {d:+.4f}" for n, d in self.rows), id="ranked-list")

    def on_mount(self) -> None:
        self.query_one("#ranked-list").focus()

    def on_option_list_option_selected(self, event) -> None:
        event.stop()
        self.dismiss(self.rows[event.option_index][0])

    def action_dismiss_none(self) -> None:
        self.dismiss(None)
