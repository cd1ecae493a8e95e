"""The explorer: type a source and controls, step the decoder by keyboard, watch neurons and gates, intervene.

State lives in reactive attributes on the app; decodes run in a thread worker
that posts typed messages back; widgets get arrays and draw them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.reactive import reactive, var
from textual.widgets import Footer, Input, Static
from textual.worker import get_current_worker

from ..analysis.decoding import decode_one
from ..analysis.roles import paper_intervention
from ..analysis.session import Session, save_session
from ..errors import UserError
from ..model.checkpoint import Checkpoint
from ..model.data import ControlSignal, make_example
from ..model.interventions import NeuronSet, parse_intervention
from ..model.stepper import Stepper
from ..paths import free_path, newest, results_dir, sessions_dir
from .screens import HelpScreen, MemoryScreen, PromptScreen, QuitScreen
from .viewmodel import DecodeView, build_view
from .widgets import ComparePanel, InterventionList, NeuronPlot, NeuronStrip, Timeline, TopK

MIN_WIDTH, MIN_HEIGHT = 100, 32


class NeuronView(Vertical, can_focus=True):
    """The focusable neuron area: while it has focus, arrows step time and select neurons."""


class TextBox(Input):
    """A text box that keeps every printable key; escape hands the keys back to stepping (shown in the footer)."""

    BINDINGS = [Binding("escape", "leave", "Keys", id="box.leave",
                        tooltip="leave the box: the keys then step, select neurons and intervene")]

    def action_leave(self) -> None:
        self.app.query_one("#strips").focus()


class DecodeDone(Message):
    def __init__(self, view: DecodeView, request: int):
        super().__init__()
        self.view, self.request = view, request


class FunctionsDone(Message):
    def __init__(self, roles: dict[str, dict[str, list[int]]], token: str, path: Path):
        super().__init__()
        self.roles, self.token, self.path = roles, token, path


class ProbeDone(Message):
    def __init__(self, hypothesis: str, result: dict):
        super().__init__()
        self.hypothesis, self.result = hypothesis, result


class MemoryDone(Message):
    def __init__(self, result: dict):
        super().__init__()
        self.result = result


class FunctionsProgress(Message):
    def __init__(self, text: str):
        super().__init__()
        self.text = text


class DecodeFailed(Message):
    def __init__(self, error: str, request: int):
        super().__init__()
        self.error, self.request = error, request


class ActionsProvider(Provider):
    """The command palette lists every key-bound action of the explorer."""

    def _commands(self):
        app: ExplorerApp = self.app  # type: ignore[assignment]
        for b in app.BINDINGS:
            if isinstance(b, Binding) and b.description:
                yield f"{b.description} ({b.key})", b.action, b.tooltip

    async def discover(self) -> Hits:
        for name, action, help_text in self._commands():
            yield DiscoveryHit(name, lambda a=action: self.app.run_action(a), help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, action, help_text in self._commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), lambda a=action: self.app.run_action(a), help=help_text)


@dataclass
class InterventionItem:
    spec: str
    enabled: bool = True


INTERVENTION_SYNTAX = ("zero:N@S · set:N=V@S · keep:N@S · copy:N@S<FROM · swap:N@S<sentence w@T · randin@S\n"
                       "N: all, 3, 0-9,12 · S: t, T, T-1, T+2, * · S/l0: layer 0 · zero.c: an LSTM's cell state")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def B(key: str, action: str, description: str, tooltip: str, show: bool = True) -> Binding:
    binding_id = description.lower().replace(" ", "-").replace("+", "plus").replace("-", "-")
    return Binding(key, action, description, show=show, id=f"explorer.{binding_id}", tooltip=tooltip)


class ExplorerApp(App):
    CSS_PATH = "explorer.tcss"
    TITLE = "tui-neuron"
    COMMANDS = App.COMMANDS | {ActionsProvider}
    BINDINGS = [
        B("left", "step_by(-1)", "Back", "step one timestep back (encoder steps included)"),
        B("right", "step_by(1)", "Forward", "step one timestep forward"),
        B("home", "step_to('first')", "First", "jump to the first encoder step", show=False),
        B("end", "step_to('last')", "Last", "jump to the last decoder step", show=False),
        B("t", "step_to('T')", "Go to T", "jump to the first control's target step T", show=False),
        B("up", "neuron_by(-1)", "Prev neuron", "select the previous neuron", show=False),
        B("down", "neuron_by(1)", "Next neuron", "select the next neuron", show=False),
        B("pageup", "neuron_by(-64)", "Row up", "select the neuron one strip row up", show=False),
        B("pagedown", "neuron_by(64)", "Row down", "select the neuron one strip row down", show=False),
        B("n", "pick_neurons", "Neurons", "select neurons by index, range (10-20), list or group name"),
        B("v", "cycle_view", "View", "cycle the strips and the top-5 between the original run, the changed run "
          "and their difference (changed − original, with the neurons that changed most)", show=False),
        B("l", "next_layer", "Layer", "show the next layer of a multi-layer model (h, gates; interventions act on it)",
          show=False),
        B("g", "save_group", "Group", "save the selected neurons as a named group (kept in the session)", show=False),
        B("i", "add_intervention", "Intervene", "add an intervention (prefilled for the selection and step)"),
        B("x", "toggle_intervention", "Toggle", "switch the intervention under the cursor on or off", show=False),
        B("d", "delete_intervention", "Delete", "remove the intervention under the cursor", show=False),
        B("left_square_bracket", "iv_cursor_by(-1)", "Iv cursor up", "move the intervention cursor up", show=False),
        B("right_square_bracket", "iv_cursor_by(1)", "Iv cursor down", "move the intervention cursor down", show=False),
        B("1", "select_role('storing')", "Storing", "select the storing neurons of the control token (from results)",
          show=False),
        B("2", "select_role('counting')", "Counting", "select the counting neurons (from results)", show=False),
        B("3", "select_role('triggering')", "Triggering", "select the triggering neurons of the control token",
          show=False),
        B("4", "select_role('outputting')", "Outputting", "select the outputting neurons of the control token",
          show=False),
        B("p", "paper_manipulation", "Paper op", "apply the paper's manipulation for the selected role at this step",
          show=False),
        B("f", "load_results", "Results", "reopen a results file: analyze functions (tags roles), probe, rank or "
          "crossmodel (selects the top neurons), curves (1-4 plot a role's curve) or storing"),
        B("F", "run_functions", "Analyse", "run the neuron-function analysis for the current control token (worker)",
          show=False),
        B("b", "run_probe", "Probe", "run a diagnostic probe, or 'rank HYP' for an elastic-net ranking, in a worker "
          "and select the top neurons (HYP: position, token, steps-remaining, is-control, pos DIR)", show=False),
        B("M", "run_memory", "Memory", "state-gradient curves of the encoder (σ1 and σ1/Σσ over delay) in a worker",
          show=False),
        B("e", "edit_source", "Edit", "edit the source sentence (enter runs it)"),
        B("m", "add_note", "Note", "add a note to the session", show=False),
        B("N", "show_notes", "Notes", "read the session's notes", show=False),
        B("E", "export", "Export", "write this step's strips, the selected neuron over t (original and changed) and "
          "the top-5 as CSV, and the screen as SVG, into the results folder", show=False),
        B("s", "save_session", "Save", "save the session as… (source, controls, groups, interventions, notes; JSON)"),
        B("question_mark", "help", "Help", "show every key"),
        B("q", "quit", "Quit", "leave the explorer"),
        Binding("ctrl+q", "quit", "Quit", show=False, id="explorer.quit-ctrl", tooltip="leave the explorer"),
    ]

    view: reactive[DecodeView | None] = reactive(None, init=False)
    step: reactive[int] = reactive(0, init=False)  # index into the clean run's shown steps
    neuron: reactive[int] = reactive(0, init=False)
    layer: reactive[int] = reactive(0, init=False)  # the layer shown (and that new interventions act on)
    selection: reactive[tuple[int, ...]] = reactive((), init=False)
    run_view: reactive[str] = reactive("original", init=False)  # original, changed or difference
    busy: reactive[bool] = reactive(False)
    iv_cursor: reactive[int] = reactive(0, init=False)
    interventions: var[list[InterventionItem]] = var(list, init=False)
    groups: var[dict[str, list[int]]] = var(dict, init=False)
    roles: var[dict[int, str]] = var(dict, init=False)  # neuron -> role letters (s, c, t, o) for this token

    def __init__(self, checkpoint: Checkpoint, session: Session | None = None, session_path: Path | None = None,
                 roles: dict[str, dict[str, list[int]]] | None = None):
        super().__init__()
        self.role_sets: dict[str, dict[str, list[int]]] = roles or {}
        self.loaded_results: list[str] = []
        self.exported: list[Path] = []  # the files the last `E` wrote
        self._restore_t: int | None = None  # a reopened session's step, applied after the first decode
        self.curves: dict[str, dict] = {}  # role -> dose-response curve, from a loaded `analyze curves` result
        self.selected_role: str | None = None
        self.ckpt = checkpoint
        self.stepper = Stepper(checkpoint.model, checkpoint.vocab)
        # where `s` saves: the session it was opened with, else a new file in the per-user sessions folder
        self.session_path = Path(session_path) if session_path else free_path(sessions_dir(), "session")
        self.notes = ""
        self._request = 0
        self._full_view: DecodeView | None = None  # every layer; `view` shows `layer` of it
        self.set_reactive(ExplorerApp.layer, checkpoint.config.layers - 1)
        self._initial = session or self._default_session()

    # ------------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        cfg = self.ckpt.config
        with Vertical(id="main"):
            with Horizontal(id="inputs"):
                yield TextBox(self._initial.source, placeholder="source sentence (enter runs it)", id="source")
                yield TextBox(" ".join(self._initial.controls), placeholder="controls: king@3 queen@5", id="controls")
                yield Static("", id="status")
            yield Timeline(id="timeline")
            with Horizontal(id="body"):
                with NeuronView(id="strips"):
                    yield NeuronStrip("h", -1.0, 1.0, id="strip-h")
                    for name in cfg.gate_names:
                        lo = -1.0 if name in ("n", "g") else 0.0
                        yield NeuronStrip(name, lo, 1.0, id=f"strip-{name}", classes="gate")
                    if cfg.cell == "lstm":
                        yield NeuronStrip("c", -1.0, 1.0, id="strip-c", classes="gate")
                with Vertical(id="side"):
                    yield TopK(id="topk")
                    yield NeuronPlot(id="plot")
            with Horizontal(id="bottom"):
                yield InterventionList(id="ivlist")
                yield ComparePanel(id="compare")
        yield Static(f"The explorer needs a terminal of at least {MIN_WIDTH}x{MIN_HEIGHT}; enlarge this one "
                     "(q quits).", id="too-small")
        yield Footer()

    def on_mount(self) -> None:
        self._update_subtitle()
        if not self.ckpt.vocab.has_positions:
            controls = self.query_one("#controls", Input)
            controls.value, controls.disabled = "", True
            controls.placeholder = "no position tokens: controls unavailable"
            self.notify("this model has no position tokens, so control signals are unavailable; it runs on the "
                        "source alone", title="no controls")
        self.interventions = [InterventionItem(d["spec"], d.get("enabled", True)) for d in self._initial.interventions]
        self.groups = dict(self._initial.groups)
        self.notes = self._initial.notes
        self._restore_view(self._initial)
        self._check_size()
        self.query_one("#source").focus()  # typing goes into the box, never into a hotkey
        self._refresh_ivlist()
        self._saved = self._snapshot()
        self.request_decode()

    def _status(self, text: str) -> None:
        """The status box: what is running, and the shown layer of a multi-layer model on a second line."""
        n = self.ckpt.config.layers
        self.query_one("#status", Static).update(text + (f"\nlayer {self.layer} (0..{n - 1})" if n > 1 else ""))
        self._status_text = text

    def _update_subtitle(self) -> None:
        cfg = self.ckpt.config
        layer = f" · layer {self.layer} of 0..{cfg.layers - 1}" if cfg.layers > 1 else ""
        positions = f"T≤{cfg.max_position}" if self.ckpt.vocab.has_positions else "no controls"
        self.sub_title = f"{self.ckpt.path.name if self.ckpt.path else 'model'} · {cfg.cell.upper()} {cfg.hidden}" \
                         f"{layer} · {positions}"

    def _default_session(self) -> Session:
        words = [w for w in ("king", "man", "time", "day", "way") if w in self.ckpt.vocab.stoi]
        word = words[0] if words else self.ckpt.vocab.words[0]
        controls = [f"{word}@3"] if self.ckpt.vocab.max_position >= 3 else []
        return Session(source="the old man sat by the fire and looked at his son .", controls=controls)

    def on_resize(self, event) -> None:
        self._check_size(event.size)

    def _check_size(self, size=None) -> None:
        """The event's size: self.size may still be the old one while the resize event is handled."""
        size = size or self.size
        small = size.width < MIN_WIDTH or size.height < MIN_HEIGHT
        self.screen_stack[0].set_class(small, "-too-small")

    # ------------------------------------------------------------------ decoding

    def _parse_controls(self) -> list[ControlSignal]:
        text = self.query_one("#controls", Input).value
        return [ControlSignal.parse(c) for c in text.replace(",", " ").split()]

    def request_decode(self) -> bool:
        """Validate the inputs on the UI thread (cheap), then decode in a worker; a new request cancels the old.

        False (and a notification) when the inputs cannot run; focus then stays where the user is typing."""
        source = self.query_one("#source", Input).value
        try:
            controls = self._parse_controls()
            make_example(self.ckpt.vocab, source, controls)
            specs = [iv.spec for iv in self.interventions if iv.enabled]
            for s in specs:
                parse_intervention(s).neurons.check(self.ckpt.config.hidden)
        except UserError as e:
            self.query_one("#controls").set_class(True, "bad-input")
            self.notify(str(e), severity="error", title="cannot run")
            return False
        self.query_one("#controls").set_class(False, "bad-input")
        self._warn_about_controls(controls)
        self._request += 1
        self.busy = True
        self.decode_worker(source, [str(c) for c in controls], specs, self._request)
        return True

    def _warn_about_controls(self, controls: list[ControlSignal]) -> None:
        positions = [c.position for c in controls]
        if len(set(positions)) < len(positions):
            self.notify("two controls ask for the same position T; at most one can land", severity="warning")
        elif len(controls) > self.ckpt.config.n_signals:
            self.notify(f"{len(controls)} controls on a model trained with {self.ckpt.config.n_signals} signal(s) "
                        "per example; expect misses", severity="warning")

    @work(thread=True, exclusive=True, group="decode")
    def decode_worker(self, source: str, controls: list[str], specs: list[str], request: int) -> None:
        worker = get_current_worker()
        try:
            ivs = [parse_intervention(s) for s in specs]
            result = decode_one(self.ckpt, source, controls, ivs, self.stepper)
            view = build_view(result, self.ckpt.config.hidden, self.ckpt.config.gate_names)
        except UserError as e:
            self.post_message(DecodeFailed(str(e), request))
            return
        if not worker.is_cancelled:
            self.post_message(DecodeDone(view, request))

    def on_decode_done(self, message: DecodeDone) -> None:
        if message.request != self._request:
            return  # a newer request is on its way
        old_t = self.current_t
        if self._restore_t is not None:  # the first decode of a reopened session
            old_t, self._restore_t = self._restore_t, None
        self._full_view = message.view
        self.view = message.view.at_layer(self.layer)
        idx = message.view.clean.index_of(old_t) if old_t is not None else None
        self.step = idx if idx is not None else len(message.view.clean.times) - 1
        self.busy = False
        self._update_roles()
        self._redraw()

    def _update_roles(self) -> None:
        """neuron -> role letters for the current control token."""
        tags: dict[int, str] = {}
        for role in self.role_sets:
            for j in self._role_neurons(role):
                tags[j] = "".join(sorted(set(tags.get(j, "") + role[0])))
        self.roles = tags

    def on_decode_failed(self, message: DecodeFailed) -> None:
        if message.request == self._request:
            self.busy = False
        self.notify(message.error, severity="error", title="cannot run")

    @on(Input.Submitted, "#source, #controls")
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if self.request_decode():
            self.query_one("#strips").focus()

    # ------------------------------------------------------------------ state -> widgets

    @property
    def current_t(self) -> int | None:
        if self.view is None:
            return None
        return int(self.view.clean.times[min(self.step, len(self.view.clean.times) - 1)])

    def watch_busy(self, busy: bool) -> None:
        self._status("⟳ decoding…" if busy else "ready")

    def watch_step(self) -> None:
        self._draw_step()

    def watch_neuron(self) -> None:
        self._redraw()

    def watch_layer(self) -> None:
        self._update_subtitle()
        self._status(getattr(self, "_status_text", "ready"))
        if self._full_view is not None:
            self.view = self._full_view.at_layer(self.layer)
            self._redraw()

    def action_next_layer(self) -> None:
        n = self.ckpt.config.layers
        if n == 1:
            self.notify("this model has one layer")
            return
        self.layer = (self.layer + 1) % n
        self.notify(f"layer {self.layer} (of 0..{n - 1}); new interventions act on it")

    def watch_selection(self) -> None:
        self._redraw()

    def watch_run_view(self) -> None:
        self._draw_step()

    def action_cycle_view(self) -> None:
        if self.view is None or self.view.changed is None:
            self.run_view = "original"
            self.notify("no changed run to show: add an intervention with i", severity="warning")
            return
        order = ("original", "changed", "difference")
        self.run_view = order[(order.index(self.run_view) + 1) % len(order)]
        self.notify(f"showing the {self.run_view} run" if self.run_view != "difference"
                    else "showing changed − original")

    def watch_iv_cursor(self) -> None:
        self._refresh_ivlist()

    def _redraw(self) -> None:
        self._draw_step()
        self._draw_neuron()

    def _draw_step(self) -> None:
        """What changes with the step: strips, timeline, top-k. Only slices cached arrays."""
        v = self.view
        if v is None:
            return
        run = v.clean
        i = min(self.step, len(run.times) - 1)
        t = int(run.times[i])
        marked = frozenset(self.selection)
        roles = self.roles
        mode = self.run_view if v.changed is not None else "original"
        k = v.changed.index_of(t) if v.changed is not None and mode != "original" else None
        if k is None:
            mode = "original"
        shown = v.changed if mode == "changed" and v.changed is not None else run
        j = k if mode == "changed" and k is not None else i
        arrays = {"h": shown.h, **shown.gates}
        for name, arr in arrays.items():
            strip = self.query_one(f"#strip-{name}", NeuronStrip)
            values = arr[j]
            if mode == "difference":
                other = v.changed.h if name == "h" else v.changed.gates[name]  # type: ignore[union-attr]
                values = other[k] - (run.h if name == "h" else run.gates[name])[i]
            strip.show(values, self.neuron, marked, roles, difference=mode == "difference")
        self.query_one(Timeline).show(run.times, run.inputs, run.outputs, i, v.positions, v.changed_outputs,
                                      run.h[:, self.neuron])
        control_tok = v.controls[0].rsplit("@", 1)[0] if v.controls else ""
        topk = self.query_one(TopK)
        if mode == "original":
            topk.show(run.topk[i], control_tok, run.control[i], t)
        else:
            changed = v.changed
            assert changed is not None and k is not None
            delta = changed.h[k] - run.h[i]
            top = np.argsort(-np.abs(delta), kind="stable")[:5]
            topk.show(changed.topk[k], control_tok, changed.control[k], t, label=mode,
                      original=run.control[i] if mode == "difference" else None,
                      changed_most=[(int(n), float(delta[n])) for n in top] if mode == "difference" else None)

    def _draw_neuron(self) -> None:
        """What changes with the neuron or the run: the plot over time and the comparison."""
        v = self.view
        if v is None:
            return
        run = v.clean
        j = self.neuron
        series = {f"h[{j}]": (run.times, run.h[:, j])}
        gate = "z" if "z" in run.gates else "f"
        series[f"{gate}[{j}]"] = (run.times, run.gates[gate][:, j])
        if v.changed is not None:
            series[f"h[{j}] changed"] = (v.changed.times, v.changed.h[:, j])
        role = ", ".join(r for r in ("storing", "counting", "triggering", "outputting") if r[0] in self.roles.get(j, ""))
        title = f"neuron {j}" + (f" ({role})" if role else "") + " over t (T marked)"
        self.query_one(NeuronPlot).show(series, v.positions, title)
        delta, label = None, ""
        if v.changed is not None:
            neurons = list(self.selection) or [j]
            label = f"n{neurons[0]}" if len(neurons) == 1 else f"{len(neurons)} neurons"
            common = min(len(run.times), len(v.changed.times))
            delta = np.abs(v.changed.h[:common][:, neurons] - run.h[:common][:, neurons]).max(axis=1)
        self.query_one(ComparePanel).show(run.output_tokens, run.landings,
                                          v.changed.output_tokens if v.changed else None,
                                          v.changed.landings if v.changed else None, delta, label,
                                          sum(not iv.enabled for iv in self.interventions),
                                          run.times[: len(delta)] if delta is not None else None)

    def _refresh_ivlist(self) -> None:
        self.query_one(InterventionList).show([(iv.spec, iv.enabled) for iv in self.interventions], self.iv_cursor)

    # ------------------------------------------------------------------ actions: time and neurons

    def action_step_by(self, delta: int) -> None:
        if self.view is not None:
            self.step = max(0, min(len(self.view.clean.times) - 1, self.step + delta))

    def action_step_to(self, where: str) -> None:
        if self.view is None:
            return
        if where == "first":
            self.step = 0
        elif where == "last":
            self.step = len(self.view.clean.times) - 1
        elif self.view.positions:
            idx = self.view.clean.index_of(self.view.positions[0])
            if idx is not None:
                self.step = idx

    def action_neuron_by(self, delta: int) -> None:
        self.neuron = (self.neuron + delta) % self.ckpt.config.hidden

    def action_pick_neurons(self) -> None:
        groups = ", ".join(self.groups) or "none yet"
        self.push_screen(PromptScreen(f"Neurons: index, range, list, or a group ({groups})",
                                      str(self.neuron), "e.g. 12 or 0-31 or 3,17,40"), self._picked)

    def _picked(self, text: str | None) -> None:
        if not text:
            return
        try:
            neurons = self.resolve_neurons(text)
        except UserError as e:
            self.notify(str(e), severity="error")
            return
        self.selection = tuple(neurons) if len(neurons) > 1 else ()
        self.neuron = neurons[0]

    def resolve_neurons(self, text: str) -> list[int]:
        name = text.strip()
        if name in self.groups:
            return list(self.groups[name])
        ns = NeuronSet.parse(name)
        ns.check(self.ckpt.config.hidden)
        picked = list(range(self.ckpt.config.hidden)) if ns.indices is None else list(ns.indices)
        if not picked:
            raise UserError("no neurons given")
        return picked

    def action_save_group(self) -> None:
        self.push_screen(PromptScreen("Name for the selected neurons (e.g. counting?)", "", "group name"),
                         self._group_named)

    def _group_named(self, name: str | None) -> None:
        if name is None:
            return
        name = name.strip()
        if not name:
            self.notify("no name given; the group was not saved", severity="warning")
            return
        try:
            NeuronSet.parse(name)
        except UserError:
            pass
        else:
            self.notify(f"{name!r} reads as a neuron selection (like all or 10-20); choose another name",
                        severity="error")
            return
        neurons = list(self.selection) or [self.neuron]
        self.groups = {**self.groups, name: neurons}
        self.notify(f"group {name!r}: {_count(len(neurons), 'neuron')}")

    # ------------------------------------------------------------------ actions: interventions

    def action_add_intervention(self) -> None:
        neurons = str(NeuronSet.of(self.selection)) if self.selection else str(self.neuron)
        t = self.current_t if self.current_t is not None else 0
        layer = f"/l{self.layer}" if self.ckpt.config.layers > 1 else ""
        self.push_screen(PromptScreen("Intervention (zero/set/keep/copy/swap/randin; ? lists the syntax)",
                                      f"zero:{neurons}@{t}{layer}", "zero:all@T-1"), self._intervention_entered)

    def _intervention_entered(self, text: str | None) -> None:
        if not text:
            return
        if text.strip() == "?":
            self.notify(INTERVENTION_SYNTAX, title="intervention syntax", timeout=20)
            return
        try:
            iv = parse_intervention(text)
            iv.neurons.check(self.ckpt.config.hidden)
        except UserError as e:
            self.notify(str(e), severity="error", title="intervention not added")
            return
        self.interventions = [*self.interventions, InterventionItem(iv.spec())]
        self.iv_cursor = len(self.interventions) - 1
        self._refresh_ivlist()
        self.request_decode()

    def action_toggle_intervention(self) -> None:
        if not self.interventions:
            return
        k = min(self.iv_cursor, len(self.interventions) - 1)
        items = list(self.interventions)
        items[k] = InterventionItem(items[k].spec, not items[k].enabled)
        self.interventions = items
        self._refresh_ivlist()
        self.request_decode()

    def action_delete_intervention(self) -> None:
        if not self.interventions:
            return
        k = min(self.iv_cursor, len(self.interventions) - 1)
        self.interventions = [iv for n, iv in enumerate(self.interventions) if n != k]
        self.iv_cursor = max(0, min(k, len(self.interventions) - 1))
        self._refresh_ivlist()
        self.request_decode()

    def action_iv_cursor_by(self, delta: int) -> None:
        if self.interventions:
            self.iv_cursor = max(0, min(len(self.interventions) - 1, self.iv_cursor + delta))

    # ------------------------------------------------------------------ actions: neuron functions

    def _role_neurons(self, role: str) -> list[int]:
        token = self.view.controls[0].rsplit("@", 1)[0] if self.view and self.view.controls else ""
        per_token = self.role_sets.get(role, {})
        # results written before per-token counting sets list one shared set under "*"
        return list(per_token.get(token) or per_token.get("*", []))

    def action_select_role(self, role: str) -> None:
        if role in self.curves:
            self.query_one(NeuronPlot).show_curve(role, self.curves[role])
            if not self.role_sets:
                return
        if not self.role_sets:
            self.notify("no neuron-function results: load one with f or run the analysis with F", severity="warning")
            return
        neurons = self._role_neurons(role)
        if not neurons:
            token = self.view.controls[0].rsplit("@", 1)[0] if self.view and self.view.controls else "this token"
            self.notify(f"no {role} neurons for {token!r} in the loaded results: press F to analyse {token!r} "
                        "(a worker; progress and time left in the status box)", severity="warning")
            return
        self.selected_role = role
        self.selection = tuple(neurons)
        self.neuron = neurons[0]
        self.groups = {**self.groups, role: neurons}
        self.notify(f"{_count(len(neurons), role + ' neuron')} selected (group {role!r})")

    def action_paper_manipulation(self) -> None:
        if self.selected_role is None or not self.selection:
            self.notify("select a role's neurons first (1 storing, 2 counting, 3 triggering, 4 outputting)",
                        severity="warning")
            return
        t = self.current_t if self.current_t is not None else 0
        self._intervention_entered(paper_intervention(self.selected_role, list(self.selection), t))

    def action_load_results(self) -> None:
        latest = newest(results_dir(), "*.json")
        self.push_screen(PromptScreen("Results file: functions, probe, rank, crossmodel, curves or storing",
                                      str(latest or ""), f"a .json file, e.g. in {results_dir()}"),
                         self._results_path)

    def _results_path(self, text: str | None) -> None:
        """Reopen a results file: neuron functions (roles), a probe (top neurons) or a ranking (top 10%)."""
        if not text:
            return
        from ..analysis.results_files import load_results

        try:
            loaded = load_results(text)
        except UserError as e:
            self.notify(f"cannot load {text}: {e}", severity="error")
            return
        if str(loaded.path) not in self.loaded_results:
            self.loaded_results.append(str(loaded.path))
        if loaded.kind == "functions":
            self.set_roles(loaded.parsed.roles)
            self.notify(f"roles loaded from {text}")
        elif loaded.kind == "curves":
            self.curves = loaded.data["curves"]
            self.notify(f"dose-response curves loaded ({', '.join(self.curves)}): 1-4 shows a role's curve")
        elif loaded.kind == "storing":
            self.notify("\n".join(loaded.data["conclusion"]), title="the storing question", timeout=20)
        else:
            self._select_group(*loaded.top_neurons(self.ckpt.config.hidden))

    def _select_group(self, name: str, neurons: list[int]) -> None:
        neurons = [int(j) for j in neurons if 0 <= int(j) < self.ckpt.config.hidden]
        if not neurons:
            self.notify(f"{name}: no neurons", severity="warning")
            return
        self.groups = {**self.groups, name: neurons}
        self.selection = tuple(neurons)
        self.neuron = neurons[0]
        self.notify(f"group {name!r}: {_count(len(neurons), 'neuron')} selected")

    def action_run_probe(self) -> None:
        self.push_screen(PromptScreen("Probe hypothesis (position, token, steps-remaining, is-control, or pos TAGGED_DIR)",
                                      "position", "hypothesis [tagged corpus]"), self._probe_entered)

    def _probe_entered(self, text: str | None) -> None:
        if not text or not text.split():
            return
        parts = text.split()
        ranking = parts[0] == "rank"
        if ranking:
            parts = parts[1:]
            if not parts:
                self.notify("rank needs a hypothesis, e.g. rank position", severity="warning")
                return
        self._status("⟳ ranking…" if ranking else "⟳ probing…")
        self.probe_worker(parts[0], parts[1:], ranking)

    @work(thread=True, exclusive=True, group="probe")
    def probe_worker(self, hypothesis: str, tagged: list[str], ranking: bool = False) -> None:
        from ..analysis.neurox import RankConfig, rank
        from ..analysis.probes import probe
        from ..analysis.probing import labelled

        try:
            X, y, g, w, _ = labelled(self.ckpt, hypothesis, [Path(t) for t in tagged] or None, 500)
            res = rank(X, y, g, RankConfig(percents=(10,))) if ranking else probe(X, y, g, w)
        except (UserError, OSError, ValueError) as e:
            self.post_message(DecodeFailed(f"probe failed: {e}", -1))
            return
        self.post_message(ProbeDone(hypothesis, res))

    def on_probe_done(self, message: ProbeDone) -> None:
        self._status("ready")
        if "ranking" in message.result:
            k = max(1, self.ckpt.config.hidden // 10)
            self._select_group(f"rank:{message.hypothesis}", message.result["ranking"][:k])
            from ..analysis.neurox import stability_line

            self.notify(f"ranking {message.hypothesis}: elastic-net accuracy {message.result['accuracy']:.3f}; "
                        f"{stability_line(message.result)}")
            return
        r = message.result["plain"]
        self._select_group(f"probe:{message.hypothesis}", r["top_neurons"])
        self.notify(f"probe {message.hypothesis}: accuracy {r['accuracy']:.3f} (majority {r['majority_baseline']:.3f}); "
                    f"most responsible neuron {message.result['most_responsible_neuron']}")

    def set_roles(self, roles: dict[str, dict[str, list[int]]]) -> None:
        self.role_sets = roles
        self._update_roles()
        self._redraw()

    def action_run_functions(self) -> None:
        if self.view is None or not self.view.controls:
            return
        token = self.view.controls[0].rsplit("@", 1)[0]
        self._status("⟳ analysing…")
        self.functions_worker(token)

    @work(thread=True, exclusive=True, group="functions")
    def functions_worker(self, token: str) -> None:
        import json

        from ..analysis.functions import FunctionsConfig, analyze_functions
        from ..analysis.recording import build_examples, frequent_targets, heldout_lines, record
        from ..model.checkpoint import atomic_write_text

        worker = get_current_worker()
        try:
            lines = heldout_lines(self.ckpt)
            others = [w for w in frequent_targets(self.ckpt, lines, 12) if w != token][:9]
            exs = build_examples(self.ckpt, lines, [token, *others], range(1, self.ckpt.config.max_position + 1), 6)
            self.post_message(FunctionsProgress(f"recording {len(exs)} examples"))
            rec = record(self.ckpt, exs)
            if worker.is_cancelled:
                return

            started: dict[str, float] = {}

            def progress(stage: str, done: int, total: int) -> None:
                t0 = started.setdefault(stage, time.monotonic())
                left = ""
                if 0 < done < total:
                    secs = (time.monotonic() - t0) / done * (total - done)
                    left = f" · {int(secs // 60)}:{int(secs % 60):02d} left"
                self.post_message(FunctionsProgress(f"{stage} {done}/{total}{left}"))

            results = analyze_functions(self.ckpt, rec, FunctionsConfig(), progress)
            stem = Path(self.ckpt.path or "model").stem
            path = free_path(results_dir(), f"functions-{stem}-{token}")
            atomic_write_text(path, json.dumps(results, indent=1))
        except (UserError, OSError, ValueError) as e:
            self.post_message(DecodeFailed(f"analysis failed: {e}", -1))
            return
        if not worker.is_cancelled:
            self.post_message(FunctionsDone(results["roles"], token, path))

    def on_functions_progress(self, message: FunctionsProgress) -> None:
        self._status(f"⟳ {message.text}")

    def on_functions_done(self, message: FunctionsDone) -> None:
        self.set_roles(message.roles)
        self._status("ready")
        self.notify(f"roles for {message.token!r} saved to {message.path}")

    def action_run_memory(self) -> None:
        self._status("⟳ gradients…")
        self.memory_worker()

    @work(thread=True, exclusive=True, group="memory")
    def memory_worker(self) -> None:
        from ..analysis.probing import memory_for

        try:
            res = memory_for(self.ckpt, "encoder", "h", 20, 24)
        except (UserError, OSError, ValueError) as e:
            self.post_message(DecodeFailed(f"state gradients failed: {e}", -1))
            return
        self.post_message(MemoryDone(res))

    def on_memory_done(self, message: MemoryDone) -> None:
        self._status("ready")
        self.push_screen(MemoryScreen(message.result))

    # ------------------------------------------------------------------ actions: session and help

    def action_edit_source(self) -> None:
        self.query_one("#source", Input).focus()

    def _restore_view(self, session: Session) -> None:
        """Where the session left off: its results files, layer, neuron and selection now; its step after the
        first decode (out-of-range values are dropped with a word, never an error)."""
        H, L = self.ckpt.config.hidden, self.ckpt.config.layers
        for path in session.results:
            self._results_path(path)
        if session.layer is not None and 0 <= session.layer < L:
            self.layer = session.layer
        if session.neuron is not None and 0 <= session.neuron < H:
            self.neuron = session.neuron
        kept = tuple(j for j in session.selection if 0 <= j < H)
        if len(kept) < len(session.selection):
            self.notify(f"{len(session.selection) - len(kept)} selected neuron(s) do not exist in this model; "
                        "dropped", severity="warning")
        if kept:
            self.selection = kept
        self._restore_t = session.step

    def action_add_note(self) -> None:
        self.push_screen(PromptScreen("Note for this session", "", "what you saw"), self._noted)

    def action_show_notes(self) -> None:
        from .screens import NotesScreen

        self.push_screen(NotesScreen(self.notes))

    def action_export(self) -> None:
        """CSV of what the screen shows at this step, and an SVG of the screen, in the results folder."""
        from .export import export_view

        if self.view is None:
            self.notify("nothing to export yet: run a source first", severity="warning")
            return
        stem = f"{Path(self.ckpt.path or 'model').stem}-t{self.current_t}"
        try:
            paths = export_view(self.view, self.step, self.neuron, results_dir(), stem)
            svg = free_path(results_dir(), stem + "-screen", ".svg")
            self.save_screenshot(filename=svg.name, path=str(svg.parent))
        except OSError as e:
            self.notify(f"export failed: {e}", severity="error")
            return
        self.exported = [*paths, svg]
        self.notify(f"exported to {svg.parent}: " + ", ".join(p.name for p in self.exported), timeout=10)

    def _noted(self, text: str | None) -> None:
        if text:
            self.notes = (self.notes + "\n" + text).strip()

    def current_session(self) -> Session:
        return Session(
            source=self.query_one("#source", Input).value,
            controls=self.query_one("#controls", Input).value.replace(",", " ").split(),
            groups=dict(self.groups),
            interventions=[{"spec": iv.spec, "enabled": iv.enabled} for iv in self.interventions],
            notes=self.notes,
            checkpoint=str(self.ckpt.path or ""),
            results=list(self.loaded_results),
            selection=list(self.selection),
            neuron=self.neuron,
            step=self.current_t,
            layer=self.layer,
        )

    def action_save_session(self) -> None:
        """s: save as (the prompt holds the current session file; another existing file is not overwritten)."""
        self.push_screen(PromptScreen("Save the session as", str(self.session_path), "a .json file"), self._save_as)

    def _save_as(self, text: str | None) -> None:
        if not text or not text.strip():
            return
        path = Path(text.strip()).expanduser()
        if not path.is_absolute() and path != self.session_path:  # a bare name goes to the sessions folder
            path = sessions_dir() / path
        if not path.suffix:
            path = path.with_suffix(".json")
        if path != self.session_path and path.exists():
            self.notify(f"{path} exists; choose another name", severity="error")
            return
        self.session_path = path
        self.save_session_now()

    def save_session_now(self) -> bool:
        try:
            save_session(self.current_session(), self.session_path)
        except (OSError, UserError) as e:
            self.notify(f"could not save {self.session_path}: {e}", severity="error")
            return False
        self._saved = self._snapshot()
        self.notify(f"session saved to {self.session_path}")
        return True

    def _snapshot(self) -> dict:
        """What counts as a change to save: not where one stands (step, neuron, selection, layer, results)."""
        from dataclasses import asdict

        data = asdict(self.current_session())
        for key in Session.VIEW_FIELDS:
            data.pop(key, None)
        return data

    @property
    def unsaved(self) -> bool:
        return self._snapshot() != getattr(self, "_saved", None)

    async def action_quit(self) -> None:
        """q: leave at once when everything is saved; otherwise ask (save / discard / cancel)."""
        if not self.unsaved:
            self.exit()
            return

        def answered(choice: str | None) -> None:
            if choice == "discard" or (choice == "save" and self.save_session_now()):
                self.exit()

        if not isinstance(self.screen, QuitScreen):
            self.push_screen(QuitScreen(self.session_path), answered)

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen([b for b in self.BINDINGS if isinstance(b, Binding)]))

    def on_key(self, event) -> None:
        """Escape in a text box hands the keys back to stepping."""
        if event.key == "escape" and isinstance(self.focused, Input) and self.screen is self.screen_stack[0]:
            self.query_one("#strips").focus()
            event.stop()
