"""Pilot tests of the compare view (A beside B, aligned by t − T), the swap from B and the difference list."""

import json

import numpy as np
from conftest import run_main
from test_app import SIZE, set_inputs, settle, with_intervention

from tui_neuron.app.explorer import ExplorerApp
from tui_neuron.app.screens import PromptScreen, RankedNeuronsScreen
from tui_neuron.app.widgets import NeuronStrip, Timeline, TopK

A_SOURCE, A_CONTROL = "the queen and the king went to the castle .", "queen@3"
B_TEXT = "the king is here and the queen is there . king@5"


async def set_b(app, pilot, text: str) -> None:
    await pilot.press("escape", "c")
    await pilot.pause()
    assert isinstance(app.screen, PromptScreen)
    app.screen.query_one("#prompt-input").value = text
    await pilot.press("enter")
    await settle(app, pilot)


def strip_h(app) -> np.ndarray:
    return app.query_one("#strip-h", NeuronStrip).values


async def test_compare_view_aligns_b_by_t_minus_T_and_swaps_from_b(shipped, tmp_path):
    app = ExplorerApp(shipped, session_path=tmp_path / "s.json")
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await set_inputs(app, pilot, A_SOURCE, A_CONTROL)
        await set_b(app, pilot, B_TEXT)
        a, b = app.view, app.compare
        assert b is not None and b.positions == [5] and app.compare_mode == "A−B"
        await pilot.press("t")  # A's T = 3 lines up with B's T = 5
        i, k = a.index(app.step), b.clean.index_of(5)
        assert a.t_at(app.step) == 3 and a.aligned(b, 3) == (5, k)
        assert np.allclose(strip_h(app), a.clean.h[i] - b.clean.h[k])
        assert "A − B" in str(app.query_one(TopK).render())
        assert "B output" in str(app.query_one(Timeline).render())
        await pilot.press("w")
        assert app.compare_mode == "A" and np.allclose(strip_h(app), a.clean.h[i])
        await pilot.press("w")
        assert app.compare_mode == "B" and np.allclose(strip_h(app), b.clean.h[k])
        assert "B, aligned with A's t=3" in str(app.query_one(TopK).render())
        # one key: B's values of the selected neuron into A at this step (at B's own T)
        app.neuron = 7
        await pilot.press("W")
        await settle(app, pilot)
        assert [s.intervention.spec() for s in app.interventions] == [f"swap:7@T<{B_TEXT}"]
        changed = app.view.changed
        assert changed is not None
        assert np.isclose(changed.h[changed.index_of(3), 7], b.clean.h[k, 7], atol=1e-6)
        # the differences list: selecting a row selects that neuron
        await pilot.press("w")  # back to A − B
        await pilot.press("D")
        await pilot.pause()
        assert isinstance(app.screen, RankedNeuronsScreen)
        rows = app.screen.rows
        delta = a.clean.h[a.index(app.step)] - b.clean.h[k]
        assert rows[0][0] == int(np.argmax(np.abs(delta)))
        await pilot.press("down", "enter")
        await pilot.pause()
        assert app.neuron == rows[1][0]
        await set_b(app, pilot, "")  # empty: comparing stops
        assert app.compare is None and app.compare_mode == "A"


async def test_difference_list_of_the_changed_run_selects_a_neuron(shipped, tmp_path):
    app = ExplorerApp(shipped, session_path=tmp_path / "s.json")
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await with_intervention(app, pilot, "zero:0-31@T-1", A_SOURCE, A_CONTROL)
        await pilot.press("escape", "t", "D")
        await pilot.pause()
        assert isinstance(app.screen, RankedNeuronsScreen) and "changed − original" in app.screen.title_text
        first = app.screen.rows[0][0]
        await pilot.press("enter")
        await pilot.pause()
        assert app.neuron == first


async def test_a_b_that_cannot_run_is_one_notification(shipped, tmp_path):
    app = ExplorerApp(shipped, session_path=tmp_path / "s.json")
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await set_b(app, pilot, "zzyzx qqq king@99")
        assert app.compare is None and app.is_running
        assert any("control" in n.message or "position" in n.message for n in app._notifications)


async def test_a_session_brings_back_the_compared_source(shipped, tmp_path, capsys):
    """B and the compare mode are part of where one was: saved with s, back on reopen."""
    from tui_neuron.analysis.session import load_session, save_session

    path = tmp_path / "with-b.json"
    app = ExplorerApp(shipped, session_path=tmp_path / "s.json")
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await set_inputs(app, pilot, A_SOURCE, A_CONTROL)
        await set_b(app, pilot, B_TEXT)
        await pilot.press("w", "w")  # A − B -> A -> B
        save_session(app.current_session(), path)
    saved = load_session(path)
    assert saved.compare == B_TEXT and saved.compare_mode == "B"
    again = ExplorerApp(shipped, session=saved, session_path=path)
    async with again.run_test(size=SIZE) as pilot:
        await settle(again, pilot)
        await settle(again, pilot)
        assert again.compare is not None and again.compare.positions == [5] and again.compare_mode == "B"
        again.step = again.view.clean.index_of(3)  # A's T: in mode B the strips show B at its own T = 5
        await settle(again, pilot)
        b_shown = strip_h(again).copy()

    # headless, the same session decodes B too: the numbers the compare view showed, at B's own T
    code, out, _ = run_main("decode", shipped.path, "--session", path, "--json", capsys=capsys)
    assert code == 0
    b = json.loads(out)["compare"]
    code, alone, _ = run_main("decode", shipped.path, *B_TEXT.rsplit(" ", 1)[:1], "-c", "king@5", "--json",
                              capsys=capsys)
    assert code == 0 and b["controls"] == ["king@5"] and b["output"] == json.loads(alone)["output"]
    step_T = next(s for s in b["steps"] if s["t"] == 5)
    assert np.allclose(np.array(step_T["h"]), b_shown, atol=1e-5)


async def test_compare_follows_the_shown_layer(tmp_path):
    """On a two-layer model, A − B is taken on the layer shown (l switches both A and B)."""
    from test_stepper import random_model

    from tui_neuron.analysis.session import Session
    from tui_neuron.checkpoint.format import Checkpoint

    model, vocab, _ = random_model("gru", seed=3, layers=2)
    ckpt = Checkpoint(model, vocab)
    app = ExplorerApp(ckpt, session=Session("w7 w8 w9 w10", ["w11@2"]), session_path=tmp_path / "s.json")
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await set_b(app, pilot, "w9 w12 w13 w14 w15 w12@3")
        await pilot.press("t")
        for layer in (1, 0):
            if app.layer != layer:
                await pilot.press("l")
                await pilot.pause()
            a, b = app.view, app.compare.at_layer(layer)
            i, k = a.index(app.step), b.clean.index_of(3)
            assert a.layer == layer and np.allclose(strip_h(app), a.clean.h[i] - b.clean.h[k])


async def test_b_landing_is_shown_where_a_landing_is(shipped, tmp_path):
    """B's landing used to appear only in a message that fades; it stays beside A's while comparing."""
    from tui_neuron.app.widgets import ComparePanel

    app = ExplorerApp(shipped, session_path=tmp_path / "s.json")
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await set_inputs(app, pilot, A_SOURCE, A_CONTROL)
        await set_b(app, pilot, B_TEXT)
        panel = str(app.query_one(ComparePanel).render())
        b_landing = app.compare.clean.landings[0]
        assert "\nB " in panel and f"{b_landing['control']}: {'landed' if b_landing['landed'] else 'missed'}" in panel
        assert " ".join(app.compare.clean.output_tokens) in panel
        await set_b(app, pilot, "")
        assert "\nB " not in str(app.query_one(ComparePanel).render())
