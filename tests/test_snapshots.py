"""Snapshot tests (pytest-textual-snapshot) of the explorer at 120x40 on the shipped checkpoint.

Regenerate after an intended change of the screen or of the shipped checkpoint:
    .venv/bin/pytest tests/test_snapshots.py --snapshot-update
"""

from tui_neuron.analysis.session import Session
from tui_neuron.app.explorer import ExplorerApp

SOURCE = "the king and the queen went to the castle ."


async def _ready(pilot):
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    await pilot.press("escape", "t")  # leave the source box (it has the keys at launch), then go to T
    await pilot.pause()


def _app(shipped, tmp_path, interventions=()):
    session = Session(SOURCE, ["king@4"], interventions=[{"spec": s, "enabled": True} for s in interventions])
    return ExplorerApp(shipped, session=session, session_path=tmp_path / "s.json")


def test_main_screen(snap_compare, shipped, tmp_path):
    """The main screen at step T: the source and controls boxes, the timeline with T marked (+4T) and the
    decoded tokens, the h/r/z/n strips of 256 neurons with neuron 0 highlighted, the top-5 next tokens with
    the control token's probability and rank, the plot of neuron 0 over time, and the empty intervention list."""
    assert snap_compare(_app(shipped, tmp_path), terminal_size=(120, 40), run_before=_ready)


def test_main_screen_with_intervention(snap_compare, shipped, tmp_path):
    """With zero:all@T-1 applied: the intervention list shows it ticked, the timeline has a 'changed' row,
    and the comparison panel shows both outputs, where king landed in each, and the |Δh| sparkline."""
    assert snap_compare(_app(shipped, tmp_path, ["zero:all@T-1"]), terminal_size=(120, 40), run_before=_ready)


def test_help_screen(snap_compare, shipped, tmp_path):
    """The help screen lists every key with its action and what it does, plus the intervention syntax."""

    async def run_before(pilot):
        await _ready(pilot)
        await pilot.press("question_mark")
        await pilot.pause()

    assert snap_compare(_app(shipped, tmp_path), terminal_size=(120, 40), run_before=run_before)


# ----------------------------------------------------------------------------- the changed run


def test_difference_view(snap_compare, shipped, tmp_path):
    """With zero:0-99@T-1 and `v` pressed twice: the strips show changed − original (labelled Δh, Δr, …) on a
    symmetric scale, and the top-5 panel lists the neurons that changed most with their signed Δh, the changed
    run's next tokens and the control's Δp and Δrank."""

    async def run_before(pilot):
        await _ready(pilot)
        await pilot.press("v", "v")
        await pilot.pause()

    assert snap_compare(_app(shipped, tmp_path, ["zero:0-99@T-1"]), terminal_size=(120, 40), run_before=run_before)
