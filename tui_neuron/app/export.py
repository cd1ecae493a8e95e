"""What the explorer shows, as CSV files a researcher can plot elsewhere (the `E` key)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from ..checkpoint.format import atomic_write_text
from ..paths import free_path
from .viewmodel import DecodeView


def _csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def export_view(view: DecodeView, step: int, neuron: int, folder: Path, stem: str) -> list[Path]:
    """Three CSVs: every neuron at this step (h and gates, original and changed), the neuron over t (both runs),
    and the top-k at this step (both runs). Written under free names; returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    clean, changed = view.clean, view.changed
    i, t = view.index(step), view.t_at(step)
    k = changed.index_of(t) if changed is not None else None
    strips = []
    for n in range(clean.h.shape[1]):
        row: dict = {"neuron": n, "h": float(clean.h[i, n])}
        row.update({g: float(v[i, n]) for g, v in clean.gates.items()})
        if changed is not None and k is not None:
            row["h_changed"] = float(changed.h[k, n])
            row.update({f"{g}_changed": float(v[k, n]) for g, v in changed.gates.items()})
        strips.append(row)
    over_t = []
    for j, tt in enumerate(clean.times):
        row = {"t": int(tt), "input": clean.inputs[j], "output": clean.outputs[j], f"h{neuron}": float(clean.h[j, neuron])}
        if changed is not None:
            kk = changed.index_of(int(tt))
            row[f"h{neuron}_changed"] = float(changed.h[kk, neuron]) if kk is not None else ""
        over_t.append(row)
    topk = [{"run": "original", "rank": r + 1, "token": tok, "p": p} for r, (tok, p) in enumerate(clean.topk[i])]
    if changed is not None and k is not None:
        topk += [{"run": "changed", "rank": r + 1, "token": tok, "p": p} for r, (tok, p) in enumerate(changed.topk[k])]
    paths = []
    for name, rows in ((f"{stem}-strips", strips), (f"{stem}-n{neuron}-over-t", over_t), (f"{stem}-top", topk)):
        if rows:
            path = free_path(folder, name, ".csv")
            atomic_write_text(path, _csv(rows))
            paths.append(path)
    return paths
