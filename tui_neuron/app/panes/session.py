"""The session pane: save as, notes, and export of what the screen shows; every file goes to a per-user folder."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

from textual.reactive import var
from textual.widget import Widget

from ...analysis.session import Session, save_session, session_file
from ...errors import UserError
from ...paths import free_path, results_dir, sessions_dir
from ..bindings import B
from ..messages import LoadCompare, NoteAdded, OpenResults
from ..screens import NotesScreen, PromptScreen, QuitScreen
from ..viewmodel import DecodeView
from .redraw import Redraws


class SessionPane(Redraws, Widget):
    """Where the explorer's work is kept: the session file, its notes, and exported views."""

    view: var[DecodeView | None] = var(None, init=False)
    step: var[int] = var(0, init=False)
    neuron: var[int] = var(0, init=False)
    notes: var[str] = var("", init=False)

    REDRAW: ClassVar[dict[str, tuple[str, ...]]] = {}  # draws nothing: it saves and exports what the others show

    def __init__(self, session: Callable[[], Session], session_path: Path | None, stem: str, **kw):
        super().__init__(**kw)
        self.session = session  # the app's current session, read when saving
        # where `s` saves: the session it was opened with, else a new file in the per-user sessions folder
        self.session_path = Path(session_path) if session_path else free_path(sessions_dir(), "session")
        self.stem = stem
        self.exported: list[Path] = []  # the files the last `E` wrote
        self._saved: dict | None = None

    def restore(self, session: Session, extra_results: list[str], config) -> dict:
        """Where the session left off: its results files (opened through the app) and the state to set now —
        layer, neuron, selection, view — out-of-range values dropped with a word, never an error. The app sets the
        state at once, so what was opened is what counts as saved."""
        H, L = config.hidden, config.layers
        for path in [*session.results, *extra_results]:
            self.post_message(OpenResults(path))
        changes: dict = {}
        if session.layer is not None and 0 <= session.layer < L:
            changes["layer"] = session.layer
        if session.neuron is not None and 0 <= session.neuron < H:
            changes["neuron"] = session.neuron
        kept = tuple(j for j in session.selection if 0 <= j < H)
        if len(kept) < len(session.selection):
            self.notify(f"{len(session.selection) - len(kept)} selected neuron(s) do not exist in this model; "
                        "dropped", severity="warning")
        if kept:
            changes["selection"] = kept
        if session.run_view != "original":
            changes["run_view"] = session.run_view
        if session.compare:
            self.post_message(LoadCompare(session.compare, session.compare_mode))
        return changes

    def mark_saved(self) -> None:
        self._saved = self._snapshot()

    def _snapshot(self) -> dict:
        """What counts as a change to save: everything a session file holds, where one stands included (the step,
        the neuron, the selection, the layer, the view, the results loaded, source B)."""
        return self.session().to_json()

    @property
    def unsaved(self) -> bool:
        return self._snapshot() != self._saved

    def leave(self) -> None:
        """Quit at once when everything is saved; otherwise ask: save and quit, discard and quit, or stay."""
        if not self.unsaved:
            self.app.exit()
            return

        def answered(choice: str | None) -> None:
            if choice == "discard" or (choice == "save" and self.save_now()):
                self.app.exit()

        if not isinstance(self.app.screen, QuitScreen):
            self.app.push_screen(QuitScreen(self.session_path), answered)

    def action_save_session(self, problem: str = "", text: str | None = None) -> None:
        """s: save as — a name in the sessions folder (the prompt holds the current one; another existing file is
        not overwritten). A refused name reopens the prompt saying why."""
        here = self.session_path.parent == sessions_dir()
        value = text if text is not None else (self.session_path.name if here else str(self.session_path))
        title = "Save the session as (a name in the sessions folder)" + (f" — {problem}" if problem else "")
        self.app.push_screen(PromptScreen(title, value, "a name, e.g. king-storing"), self.save_as)

    def save_as(self, text: str | None) -> None:
        if text is None or not text.strip():
            return
        text = text.strip()
        try:
            if text in (str(self.session_path), self.session_path.name):
                path = self.session_path
            else:
                path = session_file(sessions_dir(), text)
                if path.exists():
                    raise UserError(f"{path.name} exists; choose another name")
        except (UserError, OSError, ValueError) as e:
            self.action_save_session(str(e), text)
            return
        self.session_path = path
        self.save_now()

    def save_now(self) -> bool:
        try:
            save_session(self.session(), self.session_path)
        except (OSError, UserError) as e:
            self.notify(f"could not save {self.session_path}: {e}", severity="error")
            return False
        self.mark_saved()
        self.notify(f"session saved to {self.session_path}")
        return True

    def action_add_note(self) -> None:
        self.app.push_screen(PromptScreen("Note for this session", "", "what you saw"), self._noted)

    def _noted(self, text: str | None) -> None:
        if text:
            self.post_message(NoteAdded(text))

    def action_show_notes(self) -> None:
        self.app.push_screen(NotesScreen(self.notes))

    def action_export(self) -> None:
        """CSV of what the screen shows at this step, and an SVG of the screen, in the results folder."""
        from ..export import export_view

        if self.view is None:
            self.notify("nothing to export yet: run a source first", severity="warning")
            return
        t = self.view.t_at(self.step)
        stem = f"{self.stem}-t{t}"
        try:
            paths = export_view(self.view, self.step, self.neuron, results_dir(), stem)
            svg = free_path(results_dir(), stem + "-screen", ".svg")
            self.app.save_screenshot(filename=svg.name, path=str(svg.parent))
        except OSError as e:
            self.notify(f"export failed: {e}", severity="error")
            return
        self.exported = [*paths, svg]
        self.notify(f"exported to {svg.parent}: " + ", ".join(p.name for p in self.exported), timeout=10)

    BINDINGS = [
        B("note", "m", "add_note", "Note", "add a note to the session", show=False),
        B("notes", "N", "show_notes", "Notes", "read the session's notes", show=False),
        B("export", "E", "export", "Export", "write this step's strips, the selected neuron over t (original and changed) and "
          "the top-5 as CSV, and the screen as SVG, into the results folder", show=False),
        B("save", "s", "save_session", "Save", "save the session as… (source, controls, groups, interventions, notes; JSON)"),
    ]


def session_of(app) -> Session:
    """What the explorer would save now: the source, controls, groups, interventions and notes, and where one
    stands (results loaded, the selection, the neuron, the step as t, the layer)."""
    return Session(
        source=app.source_pane.source,
        controls=app.source_pane.controls_text.replace(",", " ").split(),
        groups=dict(app.groups),
        interventions=list(app.interventions),
        notes=app.notes,
        checkpoint=str(app.ckpt.path or ""),
        results=list(app.loaded_results),
        selection=list(app.selection),
        neuron=app.neuron,
        step=app.current_t,
        layer=app.layer,
        compare=app.compare_pane.b_text,  # set when B is asked for, so a B still decoding is no change
        compare_mode=app.compare_mode if app.compare is not None else app.compare_pane.pending_mode,
        run_view=app.run_view,
    )
