"""Pilot tests: type, step, select, intervene, save; assert on what the widgets hold."""

import json

import pytest
from textual.events import Key

from tui_neuron.analysis.session import Session, Stacked, load_session, save_session
from tui_neuron.app.explorer import ExplorerApp
from tui_neuron.app.panes import InterventionsPane
from tui_neuron.app.screens import HelpScreen, PromptScreen
from tui_neuron.app.widgets import ComparePanel, InterventionList, NeuronStrip, Timeline, TopK
from tui_neuron.model.syntax import parse_intervention

SIZE = (120, 40)


async def settle(app, pilot):
    await pilot.pause()
    await app.workers.wait_for_complete()
    await pilot.pause()


def text_of(widget) -> str:
    return str(widget.render())


async def set_inputs(app, pilot, source: str, controls: str):
    app.query_one("#source").value = source
    app.query_one("#controls").value = controls
    app.query_one("#controls").focus()
    await pilot.press("enter")
    await settle(app, pilot)


async def with_intervention(app, pilot, spec: str, source: str = "the king is here", controls: str = "king@3"):
    """Run a source with its controls, then add `spec` and wait for the changed run."""
    await set_inputs(app, pilot, source, controls)
    app.add_intervention(parse_intervention(spec))
    await settle(app, pilot)


@pytest.fixture
def make_app(shipped, tmp_path):
    def make(**kw):
        return ExplorerApp(shipped, session_path=tmp_path / "session.json", **kw)
    return make


async def test_type_run_and_step(make_app, shipped):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await set_inputs(app, pilot, "the king and the queen went to the castle .", "king@4")
        view = app.view
        assert view.source[:2] == ["the", "king"] and view.positions == [4]
        assert view.clean.times[0] == -(len(view.source) + 2 - 1)  # source + TOKEN <pos_T>, t=0 the last
        last = len(view.clean.times) - 1
        await pilot.press("home")
        assert app.step == 0 and app.current_t == view.clean.times[0]
        assert "encoding step" in text_of(app.query_one(TopK))
        await pilot.press("right", "right")
        assert app.step == 2
        await pilot.press("left")
        assert app.step == 1
        await pilot.press("t")
        assert app.current_t == 4
        topk = text_of(app.query_one(TopK))
        assert "next token at t=4" in topk and "control 'king'" in topk
        # the strip shows exactly the cached h of this step
        strip = app.query_one("#strip-h", NeuronStrip)
        assert (strip.values == view.clean.h[app.step]).all()
        landed = view.clean.landings[0]
        assert landed["landed"] == (view.clean.output_tokens[3] == "king")
        await pilot.press("end")
        assert app.step == last


async def test_bad_control_is_flagged_and_app_survives(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("escape")  # the source box has the keys at launch
        before = app.view
        await set_inputs(app, pilot, "the king is here", "qqqzzz@3")
        assert app.query_one("#controls").has_class("bad-input")
        assert app.view is before  # nothing ran
        await set_inputs(app, pilot, "the king is here", "king@99")
        assert app.query_one("#controls").has_class("bad-input")
        await set_inputs(app, pilot, "the king is here", "king@2")
        assert not app.query_one("#controls").has_class("bad-input")
        assert app.view.positions == [2]


async def test_select_neurons_and_groups(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("escape")  # the source box has the keys at launch
        await pilot.press("down", "down", "down")
        assert app.neuron == 3
        assert app.query_one("#strip-h", NeuronStrip).selected == 3
        await pilot.press("up")
        assert app.neuron == 2
        await pilot.press("n")
        assert isinstance(app.screen, PromptScreen)
        app.screen.query_one("#prompt-input").value = "10-12,40"
        await pilot.press("enter")
        assert app.selection == (10, 11, 12, 40) and app.neuron == 10
        await pilot.press("g")
        await pilot.press(*"counting?")
        await pilot.press("enter")
        assert app.groups == {"counting?": [10, 11, 12, 40]}
        await pilot.press("down")
        await pilot.press("n")
        app.screen.query_one("#prompt-input").value = "counting?"
        await pilot.press("enter")
        assert app.selection == (10, 11, 12, 40)
        assert app.query_one("#strip-z", NeuronStrip).marked == frozenset({10, 11, 12, 40})


async def test_intervention_changes_output_and_toggles(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await set_inputs(app, pilot, "the king and the queen went to the castle .", "king@4")
        original = list(app.view.clean.output_tokens)
        await pilot.press("i")
        assert isinstance(app.screen, PromptScreen)
        assert app.screen.query_one("#prompt-input").value.startswith("zero:0@")
        app.screen.query_one("#prompt-input").value = "zero:all@T-1"
        await pilot.press("enter")
        await settle(app, pilot)
        assert app.view.interventions == ["zero:all@T-1"]
        changed = app.view.changed
        assert changed is not None and changed.output_tokens != original
        assert app.view.clean.output_tokens == original
        compare = text_of(app.query_one(ComparePanel))
        assert "changed" in compare and "|Δh|" in compare
        assert "changed" in text_of(app.query_one(Timeline))
        assert "zero:all@T-1" in text_of(app.query_one(InterventionList))
        # stack a second one, toggle it off, delete it
        await pilot.press("i")
        app.screen.query_one("#prompt-input").value = "copy:all@T-1<T-2"
        await pilot.press("enter")
        await settle(app, pilot)
        assert app.view.interventions == ["zero:all@T-1", "copy:all@T-1<T-2"]
        await pilot.press("x")
        await settle(app, pilot)
        assert app.view.interventions == ["zero:all@T-1"]
        await pilot.press("left_square_bracket", "x")
        await settle(app, pilot)
        assert app.view.changed is None
        await pilot.press("d", "d")
        await settle(app, pilot)
        assert app.interventions == []


@pytest.mark.parametrize("text,message", [
    ("zap:1@2", "not understood"),
    # the intervention checks the hook points the model's wiring forms, before any run
    ("attend:0@2", "forms no attention"),
])
async def test_a_refused_intervention_is_a_notification(make_app, text, message):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("escape")  # the source box has the keys at launch
        await pilot.press("i")
        app.screen.query_one("#prompt-input").value = text
        await pilot.press("enter")
        await settle(app, pilot)
        assert app.interventions == []
        assert any(message in n.message for n in app._notifications)


async def test_save_and_reopen_session(make_app, shipped, tmp_path):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await set_inputs(app, pilot, "the queen spoke to the king", "king@2")
        await pilot.press("i")
        app.screen.query_one("#prompt-input").value = "zero:1-5@T"
        await pilot.press("enter")
        await settle(app, pilot)
        await pilot.press("n")
        app.screen.query_one("#prompt-input").value = "7,9"
        await pilot.press("enter", "g", "x", "y", "enter", "s", "enter")
    saved = load_session(tmp_path / "session.json")
    assert saved.source == "the queen spoke to the king" and saved.controls == ["king@2"]
    assert [s.to_json() for s in saved.interventions] == [{"spec": "zero:1-5@T", "enabled": True}]
    assert saved.groups == {"xy": [7, 9]}
    again = ExplorerApp(shipped, session=saved, session_path=tmp_path / "session.json")
    async with again.run_test(size=SIZE) as pilot:
        await settle(again, pilot)
        assert again.query_one("#source").value == saved.source
        assert again.view.interventions == ["zero:1-5@T"] and again.groups == {"xy": [7, 9]}


async def test_help_lists_every_binding(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("escape")  # the source box has the keys at launch
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        from rich.console import Console

        console = Console(width=110, record=True, file=open("/dev/null", "w"))
        console.print(app.screen.table)
        shown = console.export_text()
        for b in app.BINDINGS:
            assert b.description in shown
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)


async def test_too_small_terminal_gets_a_message(make_app):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("escape")  # the source box has the keys at launch
        assert app.screen.has_class("-too-small")
        assert "enlarge" in text_of(app.query_one("#too-small"))


def test_session_json_round_trip(tmp_path):
    s = Session("a b", ["a@1"], {"g": [1]}, [Stacked(parse_intervention("zero:all@1"), False)], "note", "x.safetensors")
    save_session(s, tmp_path / "s.json")
    assert load_session(tmp_path / "s.json") == s
    assert json.loads((tmp_path / "s.json").read_text())["version"] == 1


async def test_command_palette_reaches_actions(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("escape")  # the source box has the keys at launch
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"Help (")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await pilot.pause(0.2)
        assert isinstance(app.screen, HelpScreen)


async def test_intervention_list_elides_long_specs_and_scrolls_to_the_cursor(make_app):
    """Issue bug 6: long swap specs stay on one line each, the full text of the focused one is shown, and a long
    list keeps the cursor in view."""
    from tui_neuron.analysis.session import Stacked

    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        long = "swap:0-255@T-1<the queen said that the king is here today queen@3"
        app.interventions = [Stacked(parse_intervention(f"zero:{k}@T")) for k in range(8)] + [Stacked(parse_intervention(long))]
        app.iv_cursor = 8
        app.query_one(InterventionsPane).draw_list()
        await pilot.pause()
        panel = app.query_one(InterventionList)
        lines = panel.render_list().plain.splitlines()
        width = panel.content_size.width
        assert all(len(line) <= width for line in lines[1:-1])
        assert any(line.endswith("…") for line in lines)
        assert lines[-1] == f"9: {long}"  # the focused entry in full
        assert any(line.startswith("↑") for line in lines)  # the top of the list scrolled away
        assert "9. swap" in panel.render_list().plain
        await pilot.press("escape")
        for _ in range(8):
            await pilot.press("left_square_bracket")
        lines = panel.render_list().plain.splitlines()
        assert app.iv_cursor == 0 and lines[1].startswith("›[x] 1. zero:0@T")  # the cursor is a mark, not only a colour
        assert any(line.startswith("↓") for line in lines)


async def test_a_role_key_for_a_token_outside_the_results_offers_the_analysis(make_app):
    app = make_app(roles={"storing": {"queen": [1, 2]}})
    async with app.run_test(size=SIZE) as pilot:
        await set_inputs(app, pilot, "the king is here", "king@3")
        await pilot.press("escape", "1")
        await pilot.pause()
        messages = [n.message for n in app._notifications]
        assert any("press F to analyse 'king'" in m for m in messages)
        assert any("covers 1 token: 'queen'" in m for m in messages)  # what the results do cover
        assert app.is_running


async def test_every_number_the_explorer_shows_at_a_step_equals_decode_json(make_app, shipped):
    """The top-5, the control's probability and rank, h and the gates at each decoding step: the explorer's
    view and `decode --json` (clean and changed runs) agree."""
    from tui_neuron.analysis.decoding import decode_one

    spec = "zero:0-99@T-1"
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await set_inputs(app, pilot, "the king is here", "king@3")
        app.add_intervention(parse_intervention(spec))
        await settle(app, pilot)
        view = app.view
        data = decode_one(shipped, "the king is here", ["king@3"], [parse_intervention(spec)]).to_json(True)
        for run, steps in ((view.clean, data["steps"]), (view.changed, data["changed_steps"])):
            by_t = {s["t"]: s for s in steps}
            for i, t in enumerate(run.times):
                s = by_t[int(t)]
                assert run.h[i] == pytest.approx(s["h"], abs=1e-5)
                for gate, values in run.gates.items():
                    assert values[i] == pytest.approx(s[gate], abs=1e-5)
                if t >= 1:
                    assert [tok for tok, _ in run.topk[i]] == [k["token"] for k in s["top_k"]]
                    assert [p for _, p in run.topk[i]] == pytest.approx([k["p"] for k in s["top_k"]], abs=1e-5)
                    prob, rank = run.control[i]
                    assert prob == pytest.approx(s["controls"][0]["p"], abs=1e-5) and rank == s["controls"][0]["rank"]


async def test_a_saved_session_restores_results_selection_neuron_and_step(make_app, shipped, results, tmp_path):
    """Issue capability 14: reopening brings back the loaded results, the selection, the neuron, the step and the
    view (original / changed / difference)."""
    functions = tmp_path / "functions.json"
    functions.write_text(json.dumps(results))
    path = tmp_path / "where.json"
    app = ExplorerApp(shipped, session_path=path)
    async with app.run_test(size=SIZE) as pilot:
        await set_inputs(app, pilot, "the king is here", "king@3")
        app.analyses.open_results(str(functions))
        app.selection = (5, 9, 11)
        app.neuron = 9
        app.add_intervention(parse_intervention("zero:all@T-1"))
        await settle(app, pilot)
        await pilot.press("escape", "home", "right", "right", "v", "v")  # the view: changed − original
        await pilot.pause()
        step_t = app.current_t
        save_session(app.current_session(), path)
    saved = load_session(path)
    assert saved.results == [str(functions)] and saved.selection == [5, 9, 11] and saved.neuron == 9
    assert saved.step == step_t and saved.run_view == "difference"
    again = ExplorerApp(shipped, session=saved, session_path=path)
    async with again.run_test(size=SIZE) as pilot:
        await settle(again, pilot)
        assert again.role_sets == results["roles"]
        assert again.selection == (5, 9, 11) and again.neuron == 9
        assert again.current_t == step_t and again.run_view == "difference"
        assert not again.session_pane.unsaved


async def test_the_delta_sparkline_has_a_label_and_a_t_axis(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await with_intervention(app, pilot, "zero:all@T-1")
        text = text_of(app.query_one(ComparePanel))
        lines = text.splitlines()
        k = next(i for i, line in enumerate(lines) if line.startswith("|Δh| changed − original (n"))
        spark, axis = lines[k], lines[k + 1]
        assert len(axis) == len(spark) and axis.strip().startswith("t ") and " 0 " in axis + " "


async def test_v_cycles_original_changed_and_difference_views(make_app):
    """Issue capability 9: one key shows the changed run and changed − original in the strips and the top-5."""
    import numpy as np

    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await set_inputs(app, pilot, "the king is here", "king@3")
        await pilot.press("escape", "v")
        assert app.run_view == "original"  # nothing changed yet: the key says so and stays
        app.add_intervention(parse_intervention("zero:0-99@T-1"))
        await settle(app, pilot)
        await pilot.press("end")
        v = app.view
        i = app.step
        t = int(v.clean.times[i])
        k = v.changed.index_of(t)
        strip = app.query_one("#strip-h", NeuronStrip)
        assert np.allclose(strip.values, v.clean.h[i])
        await pilot.press("v")
        assert app.run_view == "changed" and np.allclose(strip.values, v.changed.h[k])
        assert "(changed run)" in text_of(app.query_one(TopK))
        await pilot.press("v")
        assert app.run_view == "difference" and np.allclose(strip.values, v.changed.h[k] - v.clean.h[i])
        top = text_of(app.query_one(TopK))
        biggest = int(np.argmax(np.abs(v.changed.h[k] - v.clean.h[i])))
        assert "top |Δh|" in top and f"n{biggest} " in top and "Δp" in top
        await pilot.press("v")
        assert app.run_view == "original" and np.allclose(strip.values, v.clean.h[i])


async def test_e_exports_the_view_as_csv_and_the_screen_as_svg(make_app):
    """Issue capability 13: the strips at this step, the neuron over t (both runs) and the top-5 as CSV, the
    screen as SVG, all in the results folder (never the current directory)."""
    import csv

    import numpy as np

    from tui_neuron.paths import results_dir

    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await with_intervention(app, pilot, "zero:0-9@T-1")
        await pilot.press("escape", "t", "E")
        await pilot.pause()
        exported = app.session_pane.exported
        assert len(exported) == 4 and all(p.parent == results_dir() and p.exists() for p in exported)
        strips, over_t, top, svg = exported
        rows = list(csv.DictReader(strips.open()))
        i = app.step
        assert len(rows) == 256 and np.allclose([float(r["h"]) for r in rows], app.view.clean.h[i], atol=1e-6)
        assert "h_changed" in rows[0] and "z_changed" in rows[0]
        steps = list(csv.DictReader(over_t.open()))
        assert len(steps) == len(app.view.clean.times) and f"h{app.neuron}_changed" in steps[0]
        ranks = list(csv.DictReader(top.open()))
        assert {r["run"] for r in ranks} == {"original", "changed"}
        assert svg.suffix == ".svg" and svg.read_text().lstrip().startswith("<svg")


async def test_n_shows_the_notes(make_app):
    from tui_neuron.app.screens import NotesScreen

    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        app.notes = "neuron 57 looks like a clock"
        await pilot.press("escape", "N")
        await pilot.pause()
        assert isinstance(app.screen, NotesScreen)
        assert "neuron 57 looks like a clock" in str(app.screen.query_one("#notes-text").render())
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, NotesScreen)


async def test_keys_pressed_in_a_burst_each_count(make_app):
    """Held or fast keys: every press moves from the state the one before left (none is lost on the way up)."""
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await with_intervention(app, pilot, "zero:0-9@T-1")
        await pilot.press("escape", "home")
        await pilot.pause()
        app.post_message(Key("right", None))
        app.post_message(Key("right", None))
        app.post_message(Key("right", None))
        app.post_message(Key("down", None))
        app.post_message(Key("down", None))
        app.post_message(Key("v", "v"))
        app.post_message(Key("v", "v"))
        await pilot.pause()
        assert (app.step, app.neuron, app.run_view) == (3, 2, "difference")


async def test_a_role_name_stays_a_name_on_the_stack_and_in_the_session(shipped, tmp_path):
    """Issue 21: a session saved after typing zero:storing@T-1 contains that text; the run uses the role's
    neurons for the control token, and scale: works from the prompt like every other kind."""
    from tui_neuron.app.messages import StateRequest

    path = tmp_path / "roles.json"
    app = ExplorerApp(shipped, session_path=path)
    async with app.run_test(size=SIZE) as pilot:
        await set_inputs(app, pilot, "the king is here", "king@3")
        app.post_message(StateRequest(role_sets={"storing": {"king": [7, 3, 40], "queen": [1]}}))
        await settle(app, pilot)
        storing = app.names["storing"]
        assert storing == [7, 3, 40]
        for text in ("zero:storing@T-1", "scale:1-5=2@T"):
            await pilot.press("escape", "i")
            app.screen.query_one("#prompt-input").value = text
            await pilot.press("enter")
            await settle(app, pilot)
        assert [s.intervention.spec() for s in app.interventions] == ["zero:storing@T-1", "scale:1-5=2@T"]
        assert f"zero:storing@T-1 · {len(storing)} neurons" in str(app.query_one(InterventionList).render())
        view = app.view
        assert view.changed is not None
        t = view.clean.index_of(2)  # T-1 = 2
        k = view.changed.index_of(2)
        assert all(view.changed.h[k][j] == 0 for j in storing) and any(view.clean.h[t][j] != 0 for j in storing)
        save_session(app.current_session(), path)
    text = path.read_text()
    assert '"zero:storing@T-1"' in text and '"scale:1-5=2@T"' in text
    assert [s.intervention.spec() for s in load_session(path).interventions] == ["zero:storing@T-1", "scale:1-5=2@T"]
