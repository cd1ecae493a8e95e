"""The line plot of the selected neuron over time (plotext), mounted after the first frame: its library is the
slowest thing the explorer imports, and the first frame does not wait for it."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from textual_plotext import PlotextPlot


def integer_ticks(lo: float, hi: float, most: int = 8) -> list[int]:
    """At most `most` whole-number ticks over [lo, hi] (t is a step number: a tick at 2.5 means nothing)."""
    lo_i, hi_i = int(np.ceil(lo)), int(np.floor(hi))
    if hi_i < lo_i:
        return [lo_i]
    stride = max(1, int(np.ceil((hi_i - lo_i + 1) / most)))
    return list(range(lo_i, hi_i + 1, stride))


class NeuronPlot(PlotextPlot):
    """The selected neuron's value (and a gate) across all steps, T marked; redrawn only when the neuron or run changes."""

    curve_role: str | None = None  # the role whose dose-response curve is shown, if one is

    def show(self, series: dict[str, tuple[np.ndarray, np.ndarray]], positions: Sequence[int], title: str) -> None:
        self.curve_role = None
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        for name, (xs, ys) in series.items():
            plt.plot(xs.tolist(), ys.tolist(), label=name, marker="braille")
        for p in positions:
            plt.vline(p, "magenta")
        xs_all = np.concatenate([xs for xs, _ in series.values()]) if series else np.zeros(1)
        ticks = integer_ticks(float(xs_all.min()), float(xs_all.max()))
        plt.xticks([float(t) for t in ticks], [str(t) for t in ticks])
        plt.ylim(-1.05, 1.05)
        plt.title(title)
        self.refresh()

    def show_curve(self, role: str, curve: dict) -> None:
        """A dose-response curve from `analyze curves`: the role's set against random sets, % success over k."""
        self.curve_role = role
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        pts = curve["points"]
        x = [p["neurons"] for p in pts]
        plt.plot(x, [100 * p["set"]["rate"] for p in pts], label=f"{role} (IG order)", marker="braille")
        plt.plot(x, [100 * p["random"]["mean"] for p in pts], label="random mean", marker="braille")
        plt.plot(x, [100 * p["random"]["min"] for p in pts], label="random min-max", marker="dot")
        plt.plot(x, [100 * p["random"]["max"] for p in pts], marker="dot")
        plt.ylim(0, 100)
        plt.title(f"{curve['manipulation']}: % success over neurons manipulated")
        self.refresh()
