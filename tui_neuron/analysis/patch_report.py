"""Reading a patching results document: its heatmaps (steps × neuron blocks) and its strongest cells.

The text heatmap uses shade glyphs, so it reads without colour (a pipe, NO_COLOR, a log file); the colour one
is drawn by plotext where the terminal has colour.
"""

from __future__ import annotations

import numpy as np

SHADES = " ░▒▓█"


def grid(res: dict, name: str, method: str = "exact") -> np.ndarray:
    """[steps, blocks] mean values of one map (NaN where a cell holds no pair)."""
    values = res["maps"][name][method]["mean"]
    return np.array([[np.nan if v is None else v for v in row] for row in values], dtype=float)


def effect(values: np.ndarray, direction: str) -> np.ndarray:
    """How much a cell moves the metric: restored share when denoising, destroyed share when noising."""
    return values if direction == "denoise" else 1.0 - values


def heatmap_text(res: dict, name: str, method: str = "exact", width: int = 64) -> str:
    """Rows = steps, columns = blocks (folded to `width` columns by their largest |effect|), one glyph per cell
    from blank (no effect) to █ (the full effect); '-' marks a cell that moves the metric the other way."""
    values = effect(grid(res, name, method), res["params"]["direction"])
    n_blocks = values.shape[1]
    fold = max(1, -(-n_blocks // width))
    labels = res["steps"]
    pad = max(len(s) for s in labels)
    head = f"{'':>{pad}}  neurons 0..{res['blocks'][-1]['neurons'][-1]}" + (f" ({fold} blocks per column)" if fold > 1 else "")
    lines = [f"{name} — {method}, {res['params']['direction']} (blank 0 … █ 1)", head]
    for i, label in enumerate(labels):
        row = values[i]
        cells = []
        for lo in range(0, n_blocks, fold):
            part = row[lo : lo + fold]
            part = part[~np.isnan(part)]
            if not part.size:
                cells.append("·")
                continue
            v = part[np.argmax(np.abs(part))]
            cells.append("-" if v < -0.1 else SHADES[int(np.clip(round(v * (len(SHADES) - 1)), 0, len(SHADES) - 1))])
        best = np.nanmax(row) if np.isfinite(row).any() else float("nan")
        lines.append(f"{label:>{pad}} |{''.join(cells)}| max {best:+.2f}")
    return "\n".join(lines)


def top_cells(res: dict, name: str, method: str = "exact", k: int = 10) -> list[list[str]]:
    """The k cells that move the metric most: step, block, value with its CI, n, and the attribution estimate."""
    m = res["maps"][name]
    values = effect(grid(res, name, method), res["params"]["direction"])
    flat = [(float(values[i, b]), i, b) for i in range(values.shape[0]) for b in range(values.shape[1])
            if np.isfinite(values[i, b])]
    rows = []
    for _, i, b in sorted(flat, reverse=True)[:k]:
        stats = m[method]
        lo, hi = stats["lo"][i][b], stats["hi"][i][b]
        ci = f" [{lo:+.2f}, {hi:+.2f}]" if lo is not None else ""
        row = [res["steps"][i], res["blocks"][b]["label"], f"{stats['mean'][i][b]:+.3f}{ci}", str(stats["n"][i][b])]
        if method == "exact" and "attribution" in m:
            a = m["attribution"]["mean"][i][b]
            row.append("" if a is None else f"{a:+.3f}")
        rows.append(row)
    return rows


def absolute_step(res: dict, label: str) -> int | None:
    """The step t a label stands for in a one-pair sweep (`t=-2`, `T`, `T-1`); None when the results hold many
    pairs, whose steps differ (a patch can then not be replayed as one swap)."""
    if res["n_pairs"] != 1:
        return None
    if label.startswith("t="):
        return int(label[2:])
    step = int(res["pairs"][0]["metric_step"])
    return step if label == "T" else step + int(label[1:])


def cell_line(res: dict, name: str, row: int, block: int) -> str:
    """One cell in words: its step, neurons, exact value with n and CI, and the attribution estimate."""
    m = res["maps"][name]
    parts = [f"{res['steps'][row]}", f"neurons {res['blocks'][block]['label']}"]
    if "exact" in m and m["exact"]["mean"][row][block] is not None:
        e = m["exact"]
        ci = f" [{e['lo'][row][block]:+.2f}, {e['hi'][row][block]:+.2f}]" if e["lo"][row][block] is not None else ""
        parts.append(f"exact {e['mean'][row][block]:+.3f}{ci} (n={e['n'][row][block]})")
    if "attribution" in m and m["attribution"]["mean"][row][block] is not None:
        parts.append(f"attribution {m['attribution']['mean'][row][block]:+.3f}")
    return " · ".join(parts)
