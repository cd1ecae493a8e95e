"""Causal tracing in the explorer: with source B set (`c`), `P` patches B's values into A, one (step, block of
16 neurons) at a time, in a worker with progress and time left — the same `run_patching` job as
`tui-neuron analyze patch` — saves the result in the results folder and shows the heatmap; enter on a cell adds
that patch as a `swap` intervention, so the changed run shows at once. `f` reopens a saved sweep.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import ClassVar

from textual import on, work
from textual.reactive import var
from textual.widget import Widget

from ...checkpoint.format import Checkpoint
from ...errors import UserError
from ...model.interventions import CopyFromRun, NeuronSet, StepRef
from ..bindings import B
from ..messages import AddIntervention, JobDone, JobFailed, ResultsOpened, Status
from ..progress import status_progress
from ..viewmodel import DecodeView
from .redraw import Redraws

BLOCK = 16  # neurons per block: 16 rows for a 256-unit model, every step a column


def source_text(view: DecodeView) -> str:
    """A view's source as the swap syntax writes it: `SOURCE WORD@T …`."""
    return " ".join(view.source + view.controls)


class PatchPane(Redraws, Widget):
    """Runs patching sweeps of A ← B; the heatmap opens on a screen."""

    view: var[DecodeView | None] = var(None, init=False)
    compare: var[DecodeView | None] = var(None, init=False)
    model_layer: var[int] = var(0, init=False)

    REDRAW: ClassVar[dict[str, tuple[str, ...]]] = {}  # draws nothing: results open on a screen

    BINDINGS = [
        B("patch", "P", "patch", "Patch", "causal tracing: patch B's h into A one (step, 16 neurons) at a time and "
          "show how much of B's answer each brings back (needs B: c); enter on a cell adds it as a swap", show=False),
    ]

    def __init__(self, ckpt: Checkpoint, **kw):
        super().__init__(**kw)
        self.ckpt = ckpt
        self.donor = ""  # the source the shown sweep patched from

    def action_patch(self) -> None:
        if self.view is None or self.compare is None:
            self.notify("set a source B to patch from with c first (A is patched with B's values)",
                        severity="warning")
            return
        from ...analysis.patch_pairs import Pair

        pair = Pair(clean=source_text(self.compare), corrupt=source_text(self.view))
        self.post_message(Status("⟳ patching A ← B…"))
        self.patch_worker(pair, self.model_layer)

    @work(thread=True, exclusive=True, group="patch")
    def patch_worker(self, pair, layer: int) -> None:
        from ...analysis.patching import PatchConfig, run_patching
        from ...checkpoint.format import atomic_write_text
        from ...paths import free_path, results_dir

        cfg = PatchConfig(block=min(BLOCK, self.ckpt.config.hidden), layers=(layer,))
        try:
            res = run_patching(self.ckpt, [pair], cfg, status_progress(self))
            if not res["n_pairs"]:
                raise UserError(f"nothing to patch: {res['dropped'][0]['reason']}")
            path = free_path(results_dir(), f"patch-{Path(self.ckpt.path or 'model').stem}")
            atomic_write_text(path, json.dumps(res, indent=1))
        except (UserError, OSError) as e:
            self.post_message(JobFailed("patching", str(e)))
            return
        self.post_message(JobDone("patch", res, path, label=pair.clean))

    @on(JobDone)
    def _done(self, message: JobDone) -> None:
        if message.job != "patch":
            return
        message.stop()
        self.post_message(Status(""))
        if message.path is not None:
            self.post_message(ResultsOpened(message.path))
            self.notify(f"patching saved to {message.path}")
        self.show_results(message.result)

    def show_results(self, result: dict) -> None:
        """The heatmap; a cell chosen with enter becomes a swap from the sweep's clean input."""
        from ..patch_screen import PatchScreen

        self.donor = result["pairs"][0]["clean"] if result["pairs"] else ""
        name = f"h/l{self.model_layer}" if f"h/l{self.model_layer}" in result["maps"] else None
        layer = int(result["maps"][name or next(iter(result["maps"]))]["layer"])
        hook = result["maps"][name or next(iter(result["maps"]))]["hook"]

        def chosen(cell: tuple[int, tuple[int, ...]] | None) -> None:
            if cell is None:
                return
            t, neurons = cell
            top = self.ckpt.config.layers - 1
            self.post_message(AddIntervention(CopyFromRun(NeuronSet.of(neurons), StepRef(t), hook, self.donor,
                                                          layer=None if layer == top else layer)))
        self.app.push_screen(PatchScreen(result, name), chosen)
