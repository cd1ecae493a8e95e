"""The explorer: type a source and controls, step the decoder by keyboard, watch neurons and gates, intervene.

The app composes the feature panes (`panes/`), holds the shared state as reactive attributes and binds it
down to them; panes and workers post messages up (`messages.py`). Decodes run in a thread worker.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual import on
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.reactive import var
from textual.widgets import Footer, Static

from ..analysis.roles import role_groups
from ..analysis.session import Session, Stacked
from ..checkpoint.format import Checkpoint
from ..errors import UserError
from ..model.examples import make_example, unknown_warning
from ..model.run_context import steps_outside
from .bindings import ActionsProvider, B, routed
from .decoder import DecodeRunner
from .messages import (
    AddIntervention,
    DecodeDone,
    JobFailed,
    LoadCompare,
    NoteAdded,
    OpenResults,
    OpenSource,
    ResultsOpened,
    ShowMatch,
    ShowPatch,
    StateRequest,
    Status,
)
from .panes import (
    AnalysesPane,
    ComparePane,
    InterventionsPane,
    MatchPane,
    NeuronPane,
    PatchPane,
    SessionPane,
    SourcePane,
    TextBox,
    TimelinePane,
)
from .panes.session import session_of
from .screens import HelpScreen
from .viewmodel import DecodeView

MIN_WIDTH, MIN_HEIGHT = 100, 32
SHARED_STATE = ("step", "neuron", "layer", "selection", "selection_name", "run_view", "iv_cursor", "interventions",
                "groups", "role_sets", "curve", "compare", "compare_mode")
PANE_IDS = {TimelinePane: "timeline-pane", NeuronPane: "neurons-pane", InterventionsPane: "interventions-pane",
            AnalysesPane: "analyses-pane", MatchPane: "match-pane", ComparePane: "compare-pane",
            PatchPane: "patch-pane",
            SessionPane: "session-pane", SourcePane: "source-pane"}


def subtitle(ckpt: Checkpoint, layer: int) -> str:
    """The model in one line: file, cell, size, the shown layer of a deeper model, and its largest T."""
    cfg = ckpt.config
    shown = f" · layer {layer} of 0..{cfg.layers - 1}" if cfg.layers > 1 else ""
    positions = f"T≤{cfg.max_position}" if ckpt.vocab.has_positions else "no controls"
    return f"{ckpt.path.name if ckpt.path else 'model'} · {cfg.cell.upper()} {cfg.hidden}{shown} · {positions}"


def default_session(ckpt: Checkpoint) -> Session:
    """A first screen that shows something: a sentence with a common word placed at T = 3."""
    words = [w for w in ("king", "man", "time", "day", "way") if w in ckpt.vocab.stoi]
    word = words[0] if words else ckpt.vocab.words[0]
    controls = [f"{word}@3"] if ckpt.vocab.max_position >= 3 else []
    return Session(source="the old man sat by the fire and looked at his son .", controls=controls)


class ExplorerApp(App):
    CSS_PATH = "explorer.tcss"
    TITLE = "tui-neuron"
    COMMANDS = App.COMMANDS | {ActionsProvider}
    BINDINGS = [
        *(b for pane, pane_id in PANE_IDS.items() for b in routed(pane_id, pane.BINDINGS)),  # type: ignore[attr-defined]
        B("focus", "tab", "focus_next", "Focus", "move between the source box, the controls box and the neuron view",
          show=False),
        B("commands", "ctrl+p", "command_palette", "Commands", "the command palette reaches every action", show=False),
        B("help", "question_mark", "help", "Help", "show every key"),
        B("quit", "q", "quit", "Quit", "leave the explorer (asks to save unsaved changes)"),
        Binding("ctrl+q", "quit", "Quit", show=False, id="explorer.quit-ctrl", tooltip="leave the explorer"),
    ]

    # shared state as `var`: the app draws nothing itself (a `reactive` here repainted the screen at every key)
    view: var[DecodeView | None] = var(None, init=False)
    step: var[int] = var(0, init=False)  # index into the clean run's shown steps
    neuron: var[int] = var(0, init=False)
    layer: var[int] = var(0, init=False)  # the layer shown (and that new interventions act on)
    selection: var[tuple[int, ...]] = var((), init=False)
    selection_name: var[str] = var("", init=False)  # the group or role the selection is, if it is one
    run_view: var[str] = var("original", init=False)  # original, changed or difference
    compare: var[DecodeView | None] = var(None, init=False)  # source B's decode, when comparing
    compare_mode: var[str] = var("A", init=False)  # A, B or A−B in the strips and the top-5
    busy: var[bool] = var(False)
    iv_cursor: var[int] = var(0, init=False)
    interventions: var[list[Stacked]] = var(list, init=False)
    groups: var[dict[str, list[int]]] = var(dict, init=False)
    role_sets: var[dict[str, dict[str, list[int]]]] = var(dict, init=False)  # role -> token -> neurons (results)
    names: var[dict[str, list[int]]] = var(dict, init=False)  # what a role or group name means for this token
    roles: var[dict[int, str]] = var(dict, init=False)  # neuron -> role letters (s, c, t, o) for this token
    curve: var[tuple[str, dict] | None] = var(None, init=False)  # a role's dose-response curve shown
    notes: var[str] = var("", init=False)

    @classmethod
    def all_bindings(cls) -> list[Binding]:
        """Every key of the explorer, for the help screen and the README's table."""
        return [b for b in [*cls.BINDINGS, *TextBox.BINDINGS] if isinstance(b, Binding)]

    def __init__(self, checkpoint: Checkpoint, session: Session | None = None, session_path: Path | None = None,
                 roles: dict[str, dict[str, list[int]]] | None = None, results: list[Path] | tuple = ()):
        super().__init__()
        self.ckpt = checkpoint
        self.loaded_results: list[str] = []
        self._pending_t: int | None = None  # the step t to show after the next decode (a session's, a place's)
        self._initial = session or default_session(checkpoint)
        self._extra_results = [str(r) for r in results]
        self._roles_given = roles
        self._session_path = session_path
        self._full_view: DecodeView | None = None  # every layer; `view` shows `layer` of it
        self._input_warning: str | None = None  # the source is mostly unknown words
        self._startup = False
        self._stale: str | None = None  # why the run on screen is not the stack's (a run that failed), if it is not
        self.set_reactive(ExplorerApp.layer, checkpoint.config.layers - 1)
        self.decoder = DecodeRunner(checkpoint, id="decoder")
        first = self._initial
        self.decoder.prefetch(first.source, first.controls, first.active_interventions(), dict(first.groups))

    # ------------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        cfg, A = self.ckpt.config, ExplorerApp
        # kept as attributes: reachable under a modal screen and after exit
        self.source_pane = SourcePane(self._initial.source, self._initial.controls, cfg.layers, self.layer,
                                      id="source-pane")
        self.analyses = AnalysesPane(self.ckpt, id="analyses-pane")
        stem = Path(self.ckpt.path or "model").stem
        self.compare_pane = ComparePane(self.ckpt, id="compare-pane")
        self.session_pane = SessionPane(self.current_session, self._session_path, stem, id="session-pane")
        with Vertical(id="main"):
            yield self.source_pane
            yield TimelinePane(cfg.layers, id="timeline-pane").data_bind(A.view, A.step, A.neuron, A.run_view,
                                                                         A.compare, A.compare_mode)
            yield NeuronPane(cfg.hidden, cfg.cell, cfg.gate_names, id="neurons-pane").data_bind(
                A.view, A.step, A.neuron, A.selection, A.run_view, A.roles, A.groups, A.curve, A.compare,
                A.compare_mode)
            yield InterventionsPane(cfg.layers, id="interventions-pane").data_bind(
                A.interventions, A.iv_cursor, A.view, A.step, A.neuron, A.selection, A.selection_name, A.names,
                A.compare, model_layer=A.layer)
        yield self.decoder
        yield self.analyses.data_bind(A.view, A.step, A.selection, A.selection_name, A.groups, A.role_sets)
        yield MatchPane(self.ckpt, id="match-pane").data_bind(A.selection, A.neuron, A.view)
        yield self.compare_pane.data_bind(A.view, A.step, A.neuron, A.selection, A.compare, A.compare_mode,
                                          model_layer=A.layer)
        yield PatchPane(self.ckpt, id="patch-pane").data_bind(A.view, A.compare, model_layer=A.layer)
        yield self.session_pane.data_bind(A.view, A.step, A.neuron, A.notes)
        yield Static(f"The explorer needs a terminal of at least {MIN_WIDTH}x{MIN_HEIGHT}; enlarge this one "
                     "(q quits).", id="too-small")
        yield Footer()


    def on_mount(self) -> None:
        self.sub_title = subtitle(self.ckpt, self.layer)
        # an LSTM shows six strips (h, c and four gates): the interventions panel gives up two rows for them
        self.screen.set_class(self.ckpt.config.cell == "lstm", "-six-strips")
        if not self.ckpt.vocab.has_positions:
            self.source_pane.disable_controls()
            self.notify("this model has no position tokens, so control signals are unavailable; it runs on the "
                        "source alone", title="no controls")
        self.interventions = list(self._initial.interventions)
        self.groups = dict(self._initial.groups)
        self.notes = self._initial.notes
        if self._roles_given:
            self.role_sets = self._roles_given
            self.update_names()
        for key, value in self.session_pane.restore(self._initial, self._extra_results, self.ckpt.config).items():
            setattr(self, key, value)
        self.loaded_results = list(dict.fromkeys([*self._initial.results, *self._extra_results]))
        self._pending_t = self._initial.step
        self._check_size()
        self.query_one("#source").focus()  # typing goes into the box, never into a hotkey
        self.session_pane.mark_saved()
        self._startup = True  # saved once more when the first decode has been shown, where the session left off
        self.request_decode()

    def on_resize(self, event) -> None:
        self._check_size(event.size)

    def _check_size(self, size=None) -> None:
        """The event's size: self.size may still be the old one while the resize event is handled."""
        size = size or self.size
        small = size.width < MIN_WIDTH or size.height < MIN_HEIGHT
        self.screen_stack[0].set_class(small, "-too-small")

    # ------------------------------------------------------------------ messages up, state down

    @on(StateRequest)
    def _state_requested(self, message: StateRequest) -> None:
        changes: dict[str, Any] = message.changes
        if "selection" in changes and "selection_name" not in changes:
            changes = {**changes, "selection_name": ""}  # indices chosen by hand: no longer the named set
        for key, value in changes.items():
            if key not in SHARED_STATE:
                raise ValueError(f"no shared state {key!r}")
            setattr(self, key, value(getattr(self, key)) if callable(value) else value)
        if {"role_sets", "groups"} & changes.keys():
            self.update_names()
        if "interventions" in changes:
            self.request_decode()

    def update_names(self) -> None:
        """What each role and group name means now (roles are per control token), and the role tags."""
        token = self.view.control_token if self.view else ""
        roles = role_groups(self.role_sets, token)
        self.names = {**roles, **self.groups}
        tags: dict[int, str] = {}
        for role, neurons in roles.items():
            for j in neurons:
                tags[j] = "".join(sorted(set(tags.get(j, "") + role[0])))
        self.roles = tags

    @on(AddIntervention)
    def _add_intervention(self, message: AddIntervention) -> None:
        self.add_intervention(message.intervention)

    def add_intervention(self, iv) -> bool:
        """Check an intervention against the model (a role or group name must mean something now; it stays a
        name on the stack and in the session) and add it; False if refused."""
        try:
            self._check(iv)
        except UserError as e:
            self.notify(str(e), severity="error", title="intervention not added")
            return False
        self.interventions = [*self.interventions, Stacked(iv)]
        self.iv_cursor = len(self.interventions) - 1
        self.request_decode()
        return True

    def _check(self, iv, example=None) -> None:
        """Everything checkable before running: the model's hook points, neurons and layers, the names, and the
        steps against the current source's `example` (built here when not given; what fails only at run time marks
        the changed run stale)."""
        cfg = self.ckpt.config
        iv.resolved(self.names).check(cfg.cell, cfg.hidden, cfg.layers, cfg.architecture)
        if example is None:
            try:
                example = make_example(self.ckpt.vocab, self.source_pane.source, self.source_pane.controls())
            except UserError:
                return  # the source itself is refused when it runs
        position = example.controls[0][1] if example.controls else 0
        problem = steps_outside([iv], len(example.encoder_ids(self.ckpt.vocab)), position, cfg.max_len + 2)
        if problem:
            raise UserError(f"{iv.spec()}: {problem}")

    @on(Status)
    def _status_changed(self, message: Status) -> None:
        self.source_pane.show_status(message.text or "ready")

    @on(JobFailed)
    def _job_failed(self, message: JobFailed) -> None:
        if message.job != "decode":
            self.source_pane.show_status("ready")
        elif message.request == self.decoder.latest:
            self._stale = message.error  # the screen still shows the last run that did run: say so until fixed
            self.busy = False
        self.notify(message.error, severity="error", title=f"{message.job} failed" if message.job != "decode"
                    else "cannot run")

    @on(ResultsOpened)
    def _results_opened(self, message: ResultsOpened) -> None:
        if str(message.path) not in self.loaded_results:
            self.loaded_results.append(str(message.path))

    @on(OpenResults)
    def _open_results(self, message: OpenResults) -> None:
        self.analyses.open_results(message.path)

    @on(ShowMatch)
    def _show_match(self, message: ShowMatch) -> None:
        self.screen_stack[0].query_one(MatchPane).show_results(message.result)

    @on(ShowPatch)
    def _show_patch(self, message: ShowPatch) -> None:
        self.screen_stack[0].query_one(PatchPane).show_results(message.result)

    @on(LoadCompare)
    def _load_compare(self, message: LoadCompare) -> None:
        self.compare_pane.load_b(message.text, message.mode)

    @on(NoteAdded)
    def _note_added(self, message: NoteAdded) -> None:
        self.notes = (self.notes + "\n" + message.text).strip()

    def watch_busy(self, busy: bool) -> None:
        ready = "ready" + (" · mostly unknown words (<unk>)" if self._input_warning else "")
        if self._stale:
            ready = f"⚠ stale — shown is the last run that ran; {self._stale[:120]}"
        self.source_pane.show_status("⟳ decoding…" if busy else ready)

    def watch_layer(self) -> None:
        self.sub_title = subtitle(self.ckpt, self.layer)
        self.source_pane.show_status(None, self.layer)
        if self._full_view is not None:
            self.view = self._full_view.at_layer(self.layer)
        if self.compare is not None:  # B is shown on the same layer as A (a view keeps every layer's runs)
            self.compare = self.compare.at_layer(self.layer)

    @property
    def current_t(self) -> int | None:
        return None if self.view is None else self.view.t_at(self.step)

    # ------------------------------------------------------------------ decoding

    def request_decode(self) -> bool:
        """Validate the inputs on the UI thread (cheap), then decode in a worker; a new request cancels the old.

        False (and a notification) when the inputs cannot run; focus then stays where the user is typing."""
        pane = self.source_pane
        try:
            controls = pane.controls()
            example = make_example(self.ckpt.vocab, pane.source, controls)
            active = [s.intervention for s in self.interventions if s.enabled]
            for iv in active:
                self._check(iv, example)
        except UserError as e:
            pane.mark_bad(True)
            self._stale = str(e)
            self.watch_busy(self.busy)
            self.notify(str(e), severity="error", title="cannot run")
            return False
        pane.mark_bad(False)
        pane.warn_about(controls, self.ckpt.config.n_signals)
        self._input_warning = unknown_warning(self.ckpt.vocab, pane.source)
        if self._input_warning:
            self.notify(self._input_warning, severity="warning", title="unknown words")
        self.busy = True
        ready = self.decoder.start(pane.source, [str(c) for c in controls], active, self.names)
        if ready is not None:  # the first decode, made before the screen was built
            self.show_decode(ready)
        return True

    def on_decode_done(self, message: DecodeDone) -> None:
        if message.request == self.decoder.latest:  # else a newer request is on its way
            self.show_decode(message.view)

    def show_decode(self, view: DecodeView) -> None:
        """Show a finished decode at the step shown before (or the one asked for: a reopened session's, a
        search place's), else at its last step."""
        old_t = self.current_t
        if self._pending_t is not None:
            old_t, self._pending_t = self._pending_t, None
        self._full_view, self._stale = view, None
        idx = view.clean.index_of(old_t) if old_t is not None else None
        token_changed = self.view is None or self.view.control_token != view.control_token
        self.view = view.at_layer(self.layer)
        if token_changed:
            self.update_names()
        self.step = idx if idx is not None else view.last_index
        self.busy = False
        if self._startup:  # what was opened is what is saved: the first frame's step is not a change
            self._startup = False
            self.session_pane.mark_saved()

    @on(OpenSource)
    def _open_source(self, message: OpenSource) -> None:
        """A place from a search becomes the current source (its controls too, for a decoder place)."""
        self.source_pane.load(message.source, message.controls)
        self._pending_t = message.t
        self.request_decode()
        self.notify(f"opened: {message.source[:60]}")

    @on(SourcePane.Submitted)
    def _submitted(self) -> None:
        if self.request_decode():
            self.query_one("#strips").focus()

    # ------------------------------------------------------------------ routing, session, help, quit

    async def action_pane(self, pane_id: str, action: str) -> None:
        """Run a pane's action (the app-level route of the pane's own binding)."""
        await self.screen_stack[0].query_one(f"#{pane_id}").run_action(action)

    def current_session(self) -> Session:
        return session_of(self)

    async def action_quit(self) -> None:
        """q: leave at once when everything is saved; otherwise the session pane asks (save / discard / cancel)."""
        self.session_pane.leave()

    def deliver_screenshot(self, filename: str | None = None, path: str | None = None,
                           time_format: str | None = None) -> str | None:
        """The palette's Screenshot saves into the results folder, as `E` exports (never the current directory)."""
        from ..paths import results_dir

        folder = Path(path) if path else results_dir()
        folder.mkdir(parents=True, exist_ok=True)
        return super().deliver_screenshot(filename, str(folder), time_format)

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.all_bindings()))
