"""Key fuzz: 1,000 random key sequences (typing included) against the explorer on the shipped checkpoint.

After every sequence the explorer must still run with no exception, and its state must hold together: the
step inside the run, the neuron and the selection inside the model, the changed run the stack's (or the status
saying it is stale), the intervention list the same in the
app, its widget and the session it would save, the cursor on an entry, the compare mode a known one.
"""

import random

from tui_neuron.app.explorer import ExplorerApp
from tui_neuron.app.panes.compare import COMPARE_MODES
from tui_neuron.app.widgets import InterventionList

SEQUENCES = 1000
KEYS = (
    list("abcdefghijklmnoprstuvwxyz0123456789@-,.:*<>=?[]")  # no q: quitting is tested elsewhere
    + ["D", "W", "P", "space", "left", "right", "up", "down", "home", "end", "pageup", "pagedown", "enter", "escape",
       "tab", "shift+tab", "backspace", "delete", "ctrl+a", "ctrl+e", "ctrl+k", "ctrl+u", "ctrl+w", "ctrl+s",
       "ctrl+z", "question_mark", "left_square_bracket", "right_square_bracket"]
)


def check_invariants(app, hidden: int, where: str) -> None:
    assert app.is_running and app._exception is None, f"{where}: the explorer stopped or raised"
    if app.view is not None:
        assert 0 <= app.step <= app.view.last_index, f"{where}: step {app.step} outside the run"
    assert 0 <= app.neuron < hidden, f"{where}: neuron {app.neuron}"
    assert all(0 <= n < hidden for n in app.selection), f"{where}: selection {app.selection}"
    specs = [iv.spec for iv in app.interventions]
    assert [s.intervention.spec() for s in app.current_session().interventions] == specs, f"{where}: session differs"
    shown = app.screen_stack[0].query_one(InterventionList).items
    assert [spec for spec, _ in shown] == specs, f"{where}: the list shows {shown}, the app holds {specs}"
    assert not specs or 0 <= app.iv_cursor < len(specs), f"{where}: cursor {app.iv_cursor} of {len(specs)}"
    assert app.compare_mode in COMPARE_MODES and app.run_view in ("original", "changed", "difference")


def check_not_silently_stale(app, where: str) -> None:
    """Once every run has finished: the changed run on screen is the stack's, or the status says it is stale."""
    if app.view is None or app.busy:
        return
    active = [s.intervention.spec() for s in app.interventions if s.enabled]
    if active != list(app.view.interventions):
        status = str(app.source_pane.query_one("#status").render())
        assert "stale" in status, f"{where}: the run shows {app.view.interventions}, the stack holds {active}, " \
                                  f"and the status says {status!r}"


async def test_1000_random_key_sequences_keep_the_state_valid(shipped, tmp_path):
    rng = random.Random(1234)
    hidden = shipped.config.hidden
    app = ExplorerApp(shipped, session_path=tmp_path / "fuzz-session.json")
    sequences = 0
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await app.workers.wait_for_complete()
        for sequences in range(1, SEQUENCES + 1):
            keys = [rng.choice(KEYS) for _ in range(rng.randint(1, 4))]
            await pilot.press(*keys)
            check_invariants(app, hidden, f"sequence {sequences} {keys}")
            if sequences % 50 == 0:
                await app.workers.wait_for_complete()
                await pilot.pause()
                check_invariants(app, hidden, f"after the workers of sequence {sequences}")
                check_not_silently_stale(app, f"after the workers of sequence {sequences}")
                # back to a known state now and then, so the fuzz reaches the main screen's keys too
                while len(app.screen_stack) > 1:
                    await pilot.press("escape")
                app.query_one("#strips").focus()
        await app.workers.wait_for_complete()
        await pilot.pause()
        check_invariants(app, hidden, "at the end")
        check_not_silently_stale(app, "at the end")
    assert sequences == SEQUENCES
    assert app.return_code in (None, 0)
