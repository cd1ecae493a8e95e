"""The decode runner: one source, its controls and interventions, decoded in a thread worker."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from textual import work
from textual.widget import Widget
from textual.worker import get_current_worker

from ..analysis.decoding import decode_one
from ..checkpoint.format import Checkpoint
from ..errors import UserError
from ..model.interventions import Intervention
from ..model.stepper import Stepper
from .messages import DecodeDone, JobFailed
from .viewmodel import DecodeView, build_view

Names = Mapping[str, Sequence[int]]  # what each role or group name means for this source's control token


def _key(source: str, controls: list[str], interventions: list[Intervention], names: Names) -> tuple:
    return source, tuple(controls), tuple(interventions), tuple((k, tuple(v)) for k, v in sorted(names.items()))


class DecodeRunner(Widget):
    """Runs decodes off the UI thread; each request gets a number, and only the latest one's result counts."""

    def __init__(self, checkpoint: Checkpoint, **kw):
        super().__init__(**kw)
        self.ckpt = checkpoint
        self.stepper = Stepper(checkpoint.model, checkpoint.vocab)
        self.latest = 0
        self._first: tuple[tuple, DecodeView] | None = None

    def prefetch(self, source: str, controls: list[str], interventions: list[Intervention], names: Names) -> None:
        """Decode the first request now, before the screen is built (a few milliseconds), so the first frame
        shows it; `start` hands it over when the same request comes. One that cannot run is left to `start`."""
        try:
            key = _key(source, controls, interventions, names)
            self._first = (key, self._decode(source, controls, interventions, names))
        except UserError:
            self._first = None

    def _decode(self, source: str, controls: list[str], interventions: list[Intervention], names: Names) -> DecodeView:
        result = decode_one(self.ckpt, source, controls, interventions, self.stepper, names)
        return build_view(result, self.ckpt.config.hidden, self.ckpt.config.gate_names)

    def start(self, source: str, controls: list[str], interventions: list[Intervention], names: Names
              ) -> DecodeView | None:
        """Decode in a worker (a new request cancels the one before); posts DecodeDone or JobFailed. The first
        request, decoded before the screen was built, is returned at once instead."""
        self.latest += 1
        first, self._first = self._first, None
        if first is not None and first[0] == _key(source, controls, interventions, names):
            return first[1]
        self.decode_worker(source, controls, interventions, names, self.latest)
        return None

    @work(thread=True, exclusive=True, group="decode")
    def decode_worker(self, source: str, controls: list[str], interventions: list[Intervention], names: Names,
                      request: int) -> None:
        worker = get_current_worker()
        try:
            view = self._decode(source, controls, interventions, names)
        except UserError as e:
            self.post_message(JobFailed("decode", str(e), request))
            return
        if not worker.is_cancelled:
            self.post_message(DecodeDone(view, request))
