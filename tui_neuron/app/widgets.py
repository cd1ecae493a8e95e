"""Widgets receive arrays and draw them; they compute nothing about the model."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.strip import Strip
from textual.widget import Widget
from textual.widgets import Static

GLYPHS = " ▁▂▃▄▅▆▇█"
ROLES = {"s": "storing", "c": "counting", "t": "triggering", "o": "outputting"}  # a role's first letter -> its name


class Styled:
    """Named styles from the stylesheet (explorer.tcss component classes): `self.style("hint")` is the rule
    `Widget > .prefix--hint`. The value colour ramp (_color) is a colour map of data, not a theme style."""

    STYLE_PREFIX = ""

    def style(self, name: str) -> Style:
        return self.get_component_rich_style(f"{self.STYLE_PREFIX}--{name}", partial=True)  # type: ignore[attr-defined]


def readable_on(background: str) -> str:
    """Black or white, whichever reads on `background` (`rgb(r,g,b)`): black text on a saturated blue cell was
    unreadable (WCAG relative luminance, threshold where both contrasts are equal)."""
    r, g, b = (int(x) / 255 for x in background[4:-1].split(","))
    lum = sum(w * (c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4)
              for w, c in zip((0.2126, 0.7152, 0.0722), (r, g, b)))
    # as true colours: a named colour is the terminal's palette entry, and the browser's (textual-serve's xterm)
    # draws "black" as a dark grey that was hard to read on saturated red
    return "rgb(0,0,0)" if lum > 0.179 else "rgb(255,255,255)"


def _color(v: float, lo: float, hi: float) -> str:
    """Diverging blue-white-red around 0 for signed ranges, white-to-orange for [0, 1]."""
    if lo < 0:
        x = max(-1.0, min(1.0, v / max(abs(lo), hi)))
        if x >= 0:
            g = int(255 * (1 - x))
            return f"rgb(255,{g},{g})"
        g = int(255 * (1 + x))
        return f"rgb({g},{g},255)"
    x = max(0.0, min(1.0, (v - lo) / (hi - lo)))
    return f"rgb(255,{int(255 - 120 * x)},{int(255 * (1 - x))})"


class NeuronStrip(Styled, Widget):
    """One vector (h, a gate) at the current step, 64 neurons a row; height glyphs survive a plain terminal.

    Drawn line by line from pre-built styles (the Line API), so stepping redraws in a few milliseconds.
    """

    PER_ROW = 64
    LEVELS = 16
    STYLE_PREFIX = "neuron-strip"
    COMPONENT_CLASSES = {f"neuron-strip--{n}" for n in ("cell", "selected", "marked", "label", "readout",
                                                         *ROLES.values())}

    DEFAULT_CSS = "NeuronStrip { height: auto; }"

    def __init__(self, label: str, lo: float, hi: float, **kw):
        super().__init__(**kw)
        self.label, self.lo, self.hi = label, lo, hi
        self.values: np.ndarray | None = None
        self.difference = False  # values are changed − original (drawn on −1…1, labelled Δ)
        self.selected = 0
        self.marked: frozenset[int] = frozenset()
        self._levels: np.ndarray | None = None
        self.roles: dict[int, str] = {}
        self._palettes: dict[bool, dict[str, list[Style]]] = {}

    def notify_style_update(self) -> None:
        self._palettes = {}  # the stylesheet changed: rebuild the styles from it
        super().notify_style_update()

    def palette(self, difference: bool = False) -> dict[str, list[Style]]:
        """Per value level: the plain, marked and each role's style, built once from the stylesheet; a difference
        is drawn on a diverging −1…1 ramp whatever the strip's own range."""
        if difference not in self._palettes:
            cell = self.style("cell")
            lo, hi = (-1.0, 1.0) if difference else (self.lo, self.hi)
            ramp = [cell + Style(color=_color(lo + (hi - lo) * k / (self.LEVELS - 1), lo, hi))
                    for k in range(self.LEVELS)]
            self._palettes[difference] = {"plain": ramp, "marked": [st + self.style("marked") for st in ramp],
                                          **{r: [st + self.style(name) for st in ramp] for r, name in ROLES.items()}}
        return self._palettes[difference]

    def show(self, values: np.ndarray | None, selected: int, marked: frozenset[int] = frozenset(),
             roles: dict[int, str] | None = None, difference: bool = False) -> None:
        """`difference`: values are changed − original, drawn on a symmetric −1…1 scale whatever the strip."""
        self.values, self.selected, self.marked = values, selected, marked
        self.roles = roles or {}
        self.difference = difference
        if values is not None:
            lo, hi = (-1.0, 1.0) if difference else (self.lo, self.hi)
            x = (np.clip(values, lo, hi) - lo) / (hi - lo)
            self._levels = np.rint(x * (self.LEVELS - 1)).astype(int)
        self.refresh()

    @property
    def n_rows(self) -> int:
        n = len(self.values) if self.values is not None else 256
        return (n + self.PER_ROW - 1) // self.PER_ROW + 1

    def get_content_height(self, container, viewport, width: int) -> int:
        return self.n_rows

    def render_line(self, y: int) -> Strip:
        if self.values is None:
            return Strip([Segment(f"{self.label:>3} (no run yet)" if y == 0 else "", self.style("label"))])
        n = len(self.values)
        row_start = y * self.PER_ROW
        if row_start >= n:
            sel = self.selected
            if y == self.n_rows - 1 and 0 <= sel < n:
                return Strip([Segment(f"    n{sel} = {float(self.values[sel]):+.3f}", self.style("readout"))])
            return Strip.blank(0)
        label = ("Δ" + self.label if self.difference else self.label) if y == 0 else ""
        segs = [Segment(f"{label:>3}{row_start:>4} ", self.style("label"))]
        palette, selected = self.palette(self.difference), self.style("selected")
        levels = self._levels
        assert levels is not None  # set with values
        glyph_scale = (len(GLYPHS) - 2) / (self.LEVELS - 1)
        for j in range(row_start, min(row_start + self.PER_ROW, n)):
            k = int(levels[j])
            glyph = GLYPHS[1 + int(round(k * glyph_scale))]
            if j == self.selected:
                style = selected
            elif j in self.marked:
                style = palette["marked"][k]
            elif j in self.roles:
                style = palette[self.roles[j][0]][k]
            else:
                style = palette["plain"][k]
            segs.append(Segment(glyph, style))
        return Strip(segs)


class Timeline(Styled, Static):
    """Steps as columns: t, the input token, the output token; current step reversed, T marked."""

    COL = 8
    STYLE_PREFIX = "timeline"
    COMPONENT_CLASSES = {f"timeline--{n}" for n in ("label", "current", "step", "control", "encoding", "changed",
                                                     "same")}

    def show(self, times: np.ndarray, inputs: Sequence[str], outputs: Sequence[str], current: int,
             positions: Sequence[int], changed_outputs: dict[int, str] | None = None,
             activations: np.ndarray | None = None, b_outputs: dict[int, str] | None = None) -> None:
        """`activations`: the selected neuron's value at each step, shown as the input token's colour;
        `b_outputs`: source B's output at the step aligned with each t (compare view)."""
        self._data = (times, inputs, outputs, current, positions, changed_outputs, activations, b_outputs)
        self.update(self._render_text(), layout=False)  # its height is fixed in explorer.tcss: no re-layout

    def on_resize(self) -> None:
        if getattr(self, "_data", None):
            self.update(self._render_text(), layout=False)

    def _render_text(self) -> Text:
        times, inputs, outputs, current, positions, changed, acts, b_outputs = self._data
        width = max(self.size.width - 9, self.COL)
        n_cols = max(1, width // self.COL)
        start = max(0, min(current - n_cols // 2, len(times) - n_cols))
        cols = range(start, min(len(times), start + n_cols))
        label, current_style, control_style = self.style("label"), self.style("current"), self.style("control")
        # each row's label is dim, as a span: Text(label, style=…) would make the style the whole row's base, and
        # the input tokens' colours came out dimmed (dark red on red in the browser)
        names = {"t": "t       ", "in": "input h ", "out": "output  "}
        if changed is not None:
            names["chg"] = "changed "
        if b_outputs is not None:
            names["b"] = "B output"
        rows = {key: Text.assemble((name, label)) for key, name in names.items()}
        for i in cols:
            t = int(times[i])
            base = current_style if i == current else Style()
            mark = "T" if t in positions else ""
            rows["t"].append(f"{t:>+3d}{mark:<1}".ljust(self.COL)[: self.COL],
                             style=base + (control_style if mark else self.style("step")))
            in_style = base + (self.style("encoding") if t <= 0 else Style())
            if acts is not None and i < len(acts):
                background = _color(float(acts[i]), -1.0, 1.0)
                in_style = base + Style(color=readable_on(background), bgcolor=background)
            rows["in"].append(inputs[i][: self.COL - 1].ljust(self.COL - 1), style=in_style)
            rows["in"].append(" ")
            out = outputs[i]
            rows["out"].append(out[: self.COL - 1].ljust(self.COL), style=base + (control_style if mark else Style()))
            if changed is not None:
                c = changed.get(t, "")
                rows["chg"].append(c[: self.COL - 1].ljust(self.COL),
                                   style=base + self.style("changed" if c != out else "same"))
            if b_outputs is not None:
                other = b_outputs.get(t, "")
                rows["b"].append(other[: self.COL - 1].ljust(self.COL),
                                 style=base + self.style("changed" if other != out else "same"))
        text = Text()
        for r in rows.values():
            text.append_text(r)
            text.append("\n")
        return text


class TopK(Styled, Static):
    """Next-token probabilities at the current step, with the control token's probability and rank."""

    STYLE_PREFIX = "topk"
    COMPONENT_CLASSES = {f"topk--{n}" for n in ("title", "delta", "hint", "rank", "control", "bar", "stat")}

    def show(self, rows: Sequence[tuple[str, float]], control: str, control_stat: tuple[float, int] | None,
             t: int, label: str = "original", original: tuple[float, int] | None = None,
             changed_most: Sequence[tuple[int, float]] | None = None, delta_label: str = "changed − original",
             note: str = "") -> None:
        """The top-k of the run named by `label`; with `original`, the control's change in p and rank, and with
        `changed_most`, the neurons whose h changed most at this step (signed)."""
        if changed_most:
            head = Text(f"{delta_label} at t={t}: top |Δh| (D: all)\n", style=self.style("title"))
            head.append("  ".join(f"n{n} {d:+.2f}" for n, d in changed_most[:4]) + "\n", style=self.style("delta"))
        else:
            head = Text()
        if note or not rows:
            self.update(head + Text(note or f"t={t}: encoding step; no output distribution", style=self.style("hint")),
                        layout=False)  # its height is fixed in explorer.tcss: no re-layout
            return
        shown = {"original": "", "changed": " (changed run)", "difference": " (changed run)"}.get(label, f" ({label})")
        text = head + Text(f"next token at t={t}{shown}\n",
                           style=self.style("title"))
        for i, (tok, p) in enumerate(rows):
            text.append(f"{i + 1} ", style=self.style("rank"))
            text.append(f"{tok[:14]:<14}", style=self.style("control") if tok == control else Style())
            text.append(f" {p:.3f} ")
            text.append("█" * int(round(p * 24)) + "\n", style=self.style("bar"))
        if control_stat is not None:
            p, rank = control_stat
            text.append(f"control {control!r}: p={p:.4f}, rank {ordinal(rank)}", style=self.style("stat"))
            if original is not None:
                p0, rank0 = original
                text.append(f" (Δp {p - p0:+.4f}, Δrank {rank - rank0:+d})", style=self.style("stat"))
        self.update(text, layout=False)


class AttentionRow(Styled, Static):
    """Which source tokens an attention decoder reads at the current step: each token with its weight, the most
    attended in bold; in the difference view, each weight's change. Hidden (tcss) on models without attention."""

    STYLE_PREFIX = "attention"
    COMPONENT_CLASSES = {f"attention--{n}" for n in ("title", "top", "hint", "up", "down")}
    BARS = " ▁▂▃▄▅▆▇█"

    def show(self, tokens: Sequence[str], weights: Sequence[float], t: int, label: str = "",
             original: Sequence[float] | None = None) -> None:
        """`weights` over `tokens` at step t; with `original`, the change from it (the difference view)."""
        if not weights:
            self.update(Text(f"t={t}: encoding step; no attention yet", style=self.style("hint")),
                        layout=False)
            return
        title = f"attention at t={t}" + (f" ({label})" if label else "")
        text = Text(title + "\n", style=self.style("title"))
        top = max(range(len(weights)), key=lambda j: weights[j])
        for j, (tok, w) in enumerate(zip(tokens, weights)):
            if original is not None:
                d = w - original[j]
                text.append(f"{tok[:12]} {d:+.2f}", style=self.style("up" if d > 0.005 else "down" if d < -0.005
                                                                         else "hint"))
            else:
                bar = self.BARS[min(len(self.BARS) - 1, int(round(w * (len(self.BARS) - 1))))]
                text.append(f"{tok[:12]} {w:.2f}{bar}", style=self.style("top") if j == top else Style())
            text.append("  ")
        self.update(text, layout=False)


def ordinal(rank: int) -> str:
    """A rank as the explorer and `decode --json` count it, 1 for the most likely token: 1st, 2nd, 3rd, 11th."""
    suffix = "th" if 10 <= rank % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(rank % 10, "th")
    return f"{rank}{suffix}"


class InterventionList(Styled, Static):
    """The stacked interventions, with the cursor and each one's on/off state.

    One line per entry, elided to the panel's width; the list scrolls to keep the cursor in view, and the
    entry under the cursor is spelled out in full on the last line.
    """

    items: tuple[tuple[str, bool], ...] = ()
    cursor: int = 0
    STYLE_PREFIX = "interventions"
    COMPONENT_CLASSES = {f"interventions--{n}" for n in ("title", "hint", "cursor", "off", "spec")}

    def show(self, items: Sequence[tuple[str, bool]], cursor: int) -> None:
        self.items, self.cursor = tuple(items), cursor
        self.update(self.render_list())

    def on_resize(self) -> None:
        self.update(self.render_list())

    def visible_range(self) -> tuple[int, int]:
        """The entries shown: a window around the cursor that fits under the header and above the full spec."""
        rows = max(1, (self.content_size.height or 6) - 2)
        n = len(self.items)
        if n <= rows:
            return 0, n
        rows = max(1, rows - 2)  # room for the "↑ n more" and "↓ n more" lines
        start = max(0, min(self.cursor - rows // 2, n - rows))
        return start, min(n, start + rows)

    def render_list(self) -> Text:
        width = max(12, self.content_size.width or 48)
        text = Text("interventions ", style=self.style("title"))
        text.append("i add · x on/off · d del · [ ]\n", style=self.style("hint"))
        if not self.items:
            text.append("none: press i to add one, e.g. zero:all@T-1", style=self.style("hint"))
            return text
        start, end = self.visible_range()
        if start > 0:
            text.append(f"↑ {start} more\n", style=self.style("hint"))
        for k in range(start, end):
            spec, on = self.items[k]
            # the cursor is a mark as well as a colour, so it shows without colour (NO_COLOR, a screen reader)
            line = f"{'›' if k == self.cursor else ' '}{'[x]' if on else '[ ]'} {k + 1}. {spec}"
            if len(line) > width:
                line = line[: width - 1] + "…"
            text.append(line + "\n", style=(self.style("cursor") if k == self.cursor else Style())
                        + (Style() if on else self.style("off")))
        if end < len(self.items):
            text.append(f"↓ {len(self.items) - end} more\n", style=self.style("hint"))
        k = min(self.cursor, len(self.items) - 1)
        text.append(f"{k + 1}: {self.items[k][0]}", style=self.style("spec"))
        return text


class ComparePanel(Styled, Static):
    """Original vs changed output, where each control landed, and |Δh| over time for the selected neurons."""

    STYLE_PREFIX = "compare"
    COMPONENT_CLASSES = {f"compare--{n}" for n in ("title", "changed", "hint", "landed", "missed", "spark", "axis")}

    def show(self, original: Sequence[str], landings: Sequence[dict], changed: Sequence[str] | None,
             changed_landings: Sequence[dict] | None, delta: np.ndarray | None, neurons_label: str,
             n_disabled: int = 0, times: np.ndarray | None = None,
             b: tuple[Sequence[str], Sequence[dict]] | None = None) -> None:
        """`b`: source B's output and landings while comparing, shown the way A's are."""
        text = Text()
        text.append("original ", style=self.style("title"))
        text.append(" ".join(original) + "\n")
        text.append(self.landing_text(landings))
        if b is not None:
            text.append("\nB        ", style=self.style("title"))
            text.append(" ".join(b[0]) + "\n")
            text.append(self.landing_text(b[1]))
        if changed is not None:
            text.append("\nchanged  ", style=self.style("changed"))
            text.append(" ".join(changed) + "\n")
            text.append(self.landing_text(changed_landings or []))
            if delta is not None and len(delta):
                text.append(self.sparkline_with_axis(delta, neurons_label, times))
        elif n_disabled:
            text.append(f"\nall {n_disabled} intervention{'s are' if n_disabled > 1 else ' is'} off: x switches "
                        "the one under the cursor on", style=self.style("hint"))
        else:
            text.append("\nno active intervention: add one with i", style=self.style("hint"))
        self.update(text)

    def sparkline_with_axis(self, delta: np.ndarray, neurons_label: str, times: np.ndarray | None = None) -> Text:
        """|Δh| per step as a labelled sparkline over a t axis (first step, t = 0 and the last step marked)."""
        peak = float(delta.max())
        scale = peak or 1.0
        spark = "".join(GLYPHS[int(round(v / scale * 8))] for v in delta)
        label = f"|Δh| changed − original ({neurons_label}, top {peak:.3f}) "
        text = Text("\n" + label, style=self.style("axis"))
        text.append(spark, style=self.style("spark"))
        if times is not None and len(times) == len(delta):
            axis = [" "] * len(delta)
            marks = [(0, int(times[0])), (len(delta) - 1, int(times[-1]))]
            zero = np.nonzero(np.asarray(times) == 0)[0]
            if len(zero):
                marks.insert(1, (int(zero[0]), 0))
            for i, t in marks:
                mark = str(t)
                start = max(0, min(i, len(axis) - len(mark)))
                if all(c == " " for c in axis[start : start + len(mark)]):
                    axis[start : start + len(mark)] = list(mark)
            text.append("\n" + "t".rjust(len(label) - 1) + " " + "".join(axis), style=self.style("axis"))
        return text


    def landing_text(self, landings: Sequence[dict]) -> Text:
        text = Text()
        for d in landings:
            where = ", ".join(map(str, d["found_at"]))
            ok = d["landed"]
            place = f"at {where}" if where else "not in the output"
            text.append(f"  {d['control']}: {'landed ✓' if ok else 'missed ✗'} ({place})",
                        style=self.style("landed" if ok else "missed"))
        return text
