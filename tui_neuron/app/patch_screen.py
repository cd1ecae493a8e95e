"""The patching heatmap: steps across (as on the timeline), neuron blocks down, one cell per patched run.

Moving over a cell says its value (exact, with n and CI, and the attribution estimate); enter on a cell of a
one-pair sweep hands back its step and neurons, which the patching pane adds as a `swap` intervention.
"""

from __future__ import annotations

import math

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Label

from ..analysis.patch_report import absolute_step, cell_line, effect, grid


def shade(value: float) -> str:
    """A background for an effect in [0, 1] (red), or below 0 (blue); readable text on both."""
    if not math.isfinite(value):
        return ""
    level = min(1.0, abs(value))
    if level < 0.05:
        return ""
    base = (180, 40, 40) if value > 0 else (40, 70, 190)
    r, g, b = (int(255 - (255 - c) * level) for c in base)
    return f"black on rgb({r},{g},{b})" if level < 0.6 else f"white on rgb({base[0]},{base[1]},{base[2]})"


class PatchScreen(ModalScreen[tuple[int, tuple[int, ...]] | None]):
    """One map of a patching result (the first: h of the shown layer when the explorer ran it)."""

    BINDINGS = [Binding("escape,q", "dismiss_none", "Close", id="patch-close")]

    def __init__(self, result: dict, name: str | None = None):
        super().__init__()
        self.result = result
        self.map_name = name or next(iter(result["maps"]))
        self.method = "exact" if "exact" in result["maps"][self.map_name] else "attribution"

    def compose(self) -> ComposeResult:
        r = self.result
        pair = r["pairs"][0] if r["pairs"] else {}
        title = (f"patching {self.map_name}, {r['params']['direction']} ({r['params']['metric']}; 0 = corrupted, "
                 f"1 = clean), {r['n_pairs']} pair(s)")
        if r["n_pairs"] == 1:
            title += f": {pair['corrupt']} ← {pair['clean']}"
        with Vertical(id="patch-box"):
            yield Label(title, id="patch-title")
            yield DataTable(id="patch-table", cursor_type="cell", zebra_stripes=False)
            yield Label("", id="patch-cell")
            yield Label("enter adds the cell's patch as a swap intervention · escape closes" if r["n_pairs"] == 1
                        else "a sweep over many pairs: its cells cannot be replayed as one swap · escape closes",
                        id="patch-help")

    def on_mount(self) -> None:
        table = self.query_one("#patch-table", DataTable)
        table.add_column("neurons", key="neurons")
        for label in self.result["steps"]:
            table.add_column(label, key=label)
        values = grid(self.result, self.map_name, self.method)
        shown = effect(values, self.result["params"]["direction"])
        for b, block in enumerate(self.result["blocks"]):
            cells = [Text(block["label"])]
            for i in range(len(self.result["steps"])):
                v = values[i, b]
                cells.append(Text("  ·  " if not math.isfinite(v) else f"{v:+.2f}", style=shade(shown[i, b])))
            table.add_row(*cells, key=str(b))
        table.focus()
        table.move_cursor(row=0, column=1)

    def _cell(self) -> tuple[int, int] | None:
        table = self.query_one("#patch-table", DataTable)
        row, col = table.cursor_coordinate
        return None if col == 0 else (col - 1, row)

    def on_data_table_cell_highlighted(self, event: DataTable.CellHighlighted) -> None:
        where = self._cell()
        line = "" if where is None else cell_line(self.result, self.map_name, *where)
        self.query_one("#patch-cell", Label).update(line)

    def on_data_table_cell_selected(self, event: DataTable.CellSelected) -> None:
        event.stop()
        where = self._cell()
        if where is None:
            return
        t = absolute_step(self.result, self.result["steps"][where[0]])
        if t is None:
            self.notify("this sweep holds many pairs: a cell cannot be replayed as one swap", severity="warning")
            return
        self.dismiss((t, tuple(self.result["blocks"][where[1]]["neurons"])))

    def action_dismiss_none(self) -> None:
        self.dismiss(None)
