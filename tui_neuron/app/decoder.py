"""The decode runner: one source, its controls and interventions, decoded in a thread worker."""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor

from textual import work
from textual.widget import Widget
from textual.worker import get_current_worker

from ..analysis.decoding import decode_one
from ..errors import UserError
from ..model.checkpoint import Checkpoint
from ..model.interventions import parse_intervention
from ..model.stepper import Stepper
from .messages import DecodeDone, JobFailed
from .viewmodel import DecodeView, build_view


class DecodeRunner(Widget):
    """Runs decodes off the UI thread; each request gets a number, and only the latest one's result counts."""

    def __init__(self, checkpoint: Checkpoint, **kw):
        super().__init__(**kw)
        self.ckpt = checkpoint
        self.stepper = Stepper(checkpoint.model, checkpoint.vocab)
        self.latest = 0
        self._prefetch: tuple[tuple, Future[DecodeView]] | None = None

    def prefetch(self, source: str, controls: list[str], specs: list[str]) -> None:
        """Start the first decode while the screen is still being built (the launch waits for it otherwise);
        the worker takes its answer when the request is the same."""
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="first-decode")
        key = (source, tuple(controls), tuple(specs))
        self._prefetch = (key, pool.submit(self._decode, source, controls, specs))
        pool.shutdown(wait=False)

    def _decode(self, source: str, controls: list[str], specs: list[str]) -> DecodeView:
        ivs = [parse_intervention(s) for s in specs]
        result = decode_one(self.ckpt, source, controls, ivs, self.stepper)
        return build_view(result, self.ckpt.config.hidden, self.ckpt.config.gate_names)

    def start(self, source: str, controls: list[str], specs: list[str]) -> int:
        """Decode in a worker (a new request cancels the one before); posts DecodeDone or JobFailed."""
        self.latest += 1
        self.decode_worker(source, controls, specs, self.latest)
        return self.latest

    @work(thread=True, exclusive=True, group="decode")
    def decode_worker(self, source: str, controls: list[str], specs: list[str], request: int) -> None:
        worker = get_current_worker()
        prefetched, self._prefetch = self._prefetch, None
        try:
            if prefetched is not None and prefetched[0] == (source, tuple(controls), tuple(specs)):
                view = prefetched[1].result()
            else:
                view = self._decode(source, controls, specs)
        except UserError as e:
            self.post_message(JobFailed("decode", str(e), request))
            return
        if not worker.is_cancelled:
            self.post_message(DecodeDone(view, request))
