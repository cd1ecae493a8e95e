"""The decode runner: one source, its controls and interventions, decoded in a thread worker."""

from __future__ import annotations

from textual import work
from textual.widget import Widget
from textual.worker import get_current_worker

from ..analysis.decoding import decode_one
from ..errors import UserError
from ..model.checkpoint import Checkpoint
from ..model.interventions import parse_intervention
from ..model.stepper import Stepper
from .messages import DecodeDone, JobFailed
from .viewmodel import build_view


class DecodeRunner(Widget):
    """Runs decodes off the UI thread; each request gets a number, and only the latest one's result counts."""

    def __init__(self, checkpoint: Checkpoint, **kw):
        super().__init__(**kw)
        self.ckpt = checkpoint
        self.stepper = Stepper(checkpoint.model, checkpoint.vocab)
        self.latest = 0

    def start(self, source: str, controls: list[str], specs: list[str]) -> int:
        """Decode in a worker (a new request cancels the one before); posts DecodeDone or JobFailed."""
        self.latest += 1
        self.decode_worker(source, controls, specs, self.latest)
        return self.latest

    @work(thread=True, exclusive=True, group="decode")
    def decode_worker(self, source: str, controls: list[str], specs: list[str], request: int) -> None:
        worker = get_current_worker()
        try:
            ivs = [parse_intervention(s) for s in specs]
            result = decode_one(self.ckpt, source, controls, ivs, self.stepper)
            view = build_view(result, self.ckpt.config.hidden, self.ckpt.config.gate_names)
        except UserError as e:
            self.post_message(JobFailed("decode", str(e), request))
            return
        if not worker.is_cancelled:
            self.post_message(DecodeDone(view, request))
