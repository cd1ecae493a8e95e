
"""Snapshot tests (pytest-textual-snapshot) of the explorer at 120x40 on the shipped checkpoint.

Regenerate after an intended change of the screen or of the shipped checkpoint:
    .venv/bin/pytest tests/test_snapshots.py --snapshot-update
"""

from tui_neuron.analysis.session import Session, Stacked
from tui_neuron.app.explorer import ExplorerApp
from tui_neuron.model.syntax import parse_intervention

SOURCE = "the king and the queen went to the castle ."


async def _ready(pilot):
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    await pilot.press("escape", "t")  # leave the source box (it has the keys at launch), then go to T
    await pilot.pause()


def _app(shipped, tmp_path, interventions=()):
    session = Session(SOURCE, ["king@4"], interventions=[Stacked(parse_intervention(s)) for s in interventions])
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


def test_changed_view(snap_compare, shipped, tmp_path):
    """With zero:0-99@T-1 and `v` pressed once: the strips and the top-5 show the changed run at T (its next
    tokens and the control's probability and rank there)."""

    async def run_before(pilot):
        await _ready(pilot)
        await pilot.press("v")
        await pilot.pause()

    assert snap_compare(_app(shipped, tmp_path, ["zero:0-99@T-1"]), terminal_size=(120, 40), run_before=run_before)


# ----------------------------------------------------------------------------- two sources side by side

B_SOURCE = "the queen and the king went to the castle . queen@6"


async def _with_b(pilot, mode_presses: int = 0):
    await _ready(pilot)
    await pilot.press("c")
    await pilot.pause()
    pilot.app.screen.query_one("#prompt-input").value = B_SOURCE
    await pilot.press("enter")
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    await pilot.press(*["w"] * mode_presses)
    await pilot.pause()


def test_compare_a_minus_b(snap_compare, shipped, tmp_path):
    """B = the same sentence with queen@6, aligned with A (king@4) by t − T: at A's T the strips show A − B, the
    top-5 panel lists the neurons with the largest |A − B| above A's next tokens, and the timeline has B's
    outputs on a row of its own (queen under A's king at T)."""

    async def run_before(pilot):
        await _with_b(pilot)

    assert snap_compare(_app(shipped, tmp_path), terminal_size=(120, 40), run_before=run_before)


def test_compare_b(snap_compare, shipped, tmp_path):
    """`w` twice after setting B: the strips and the top-5 show B at its own T (6), aligned with A's T (4)."""

    async def run_before(pilot):
        await _with_b(pilot, mode_presses=2)

    assert snap_compare(_app(shipped, tmp_path), terminal_size=(120, 40), run_before=run_before)


# ----------------------------------------------------------------------------- pattern search


MATCH_TEXT = """the king and the queen went to the castle .
i will not go , said the old man to his son .
what is the matter with you , my lord ?
the queen is here and the king is there .
come , sit by the fire and tell me a tale .
he looked at her and said nothing for a long time .
"""


def test_match_results(snap_compare, shipped, tmp_path):
    """A search for neuron 140 above 0.5 over three encoder steps of a small text the test writes (the shipped
    checkpoint's held-out text is not in a fresh clone): the histogram of neuron 140 with the threshold's bin
    marked, and the ranked places with the matched span in brackets."""
    from tui_neuron.analysis.jobs import MatchJob, preset, run_match
    from tui_neuron.app.panes.match import MatchPane

    corpus = tmp_path / "search.txt"
    corpus.write_text(MATCH_TEXT)
    result = run_match(shipped, preset(MatchJob, "quick", neurons=(140,), threshold=0.5, window=3,
                                       corpus=(str(corpus),)))
    assert result["n_matches"] > 0

    async def run_before(pilot):
        await _ready(pilot)
        pilot.app.screen_stack[0].query_one(MatchPane).show_results(result)
        await pilot.pause()

    assert snap_compare(_app(shipped, tmp_path), terminal_size=(120, 40), run_before=run_before)


# ----------------------------------------------------------------------------- help


def test_help_screen(snap_compare, shipped, tmp_path):
    """The help screen lists every key with its action and what it does, plus the intervention syntax."""

    async def run_before(pilot):
        await _ready(pilot)
        await pilot.press("question_mark")
        await pilot.pause()

    assert snap_compare(_app(shipped, tmp_path), terminal_size=(120, 40), run_before=run_before)
