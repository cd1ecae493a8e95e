"""Pilot tests of the patching pane: `P` sweeps A ← B in a worker, the heatmap holds the sweep's values, enter on
a cell adds that patch as a swap and the changed run shows it; `f` reopens a saved sweep."""

import json

import numpy as np
from test_app import SIZE, set_inputs, settle
from test_app_compare import A_CONTROL, A_SOURCE, set_b

from tui_neuron.app.explorer import ExplorerApp
from tui_neuron.app.patch_screen import PatchScreen
from tui_neuron.app.screens import PromptScreen
from tui_neuron.paths import results_dir

B_TEXT = "the queen and the king went to the castle . queen@4"  # the same source, T one later


async def wait_for_screen(app, pilot, kind, tries: int = 200) -> None:
    for _ in range(tries):
        await pilot.pause(0.05)
        if isinstance(app.screen, kind):
            return
    raise AssertionError(f"no {kind.__name__} (status: {app.query_one('#status').render()})")


async def test_patch_key_draws_the_heatmap_and_enter_adds_the_swap(shipped, tmp_path):
    app = ExplorerApp(shipped, session_path=tmp_path / "s.json")
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await set_inputs(app, pilot, A_SOURCE, A_CONTROL)
        await pilot.press("escape", "P")  # no B yet: says how to set one
        await pilot.pause()
        assert not isinstance(app.screen, PatchScreen)
        await set_b(app, pilot, B_TEXT)
        await pilot.press("P")
        await wait_for_screen(app, pilot, PatchScreen)
        screen = app.screen
        res = screen.result
        table = screen.query_one("#patch-table")
        assert table.row_count == len(res["blocks"]) == shipped.config.hidden // 16
        assert len(table.columns) == 1 + len(res["steps"])
        # the cell under the cursor is the sweep's value, in words
        row = res["steps"].index("T")
        table.move_cursor(row=2, column=1 + row)
        await pilot.pause()
        value = res["maps"]["h/l0"]["exact"]["mean"][row][2]
        assert f"{value:+.3f}" in str(screen.query_one("#patch-cell").render())
        assert str(table.get_cell_at(table.cursor_coordinate)).strip() == f"{value:+.2f}"
        await pilot.press("enter")
        await settle(app, pilot)
        T = res["pairs"][0]["metric_step"]
        assert [s.intervention.spec() for s in app.interventions] == [f"swap:32-47@{T}<{B_TEXT}"]
        assert app.view.changed is not None  # the changed run shows at once
        saved = sorted(results_dir().glob("patch-*.json"))
        assert saved and json.loads(saved[-1].read_text())["maps"]["h/l0"]["exact"]["mean"][row][2] == value


async def test_f_reopens_a_saved_sweep(shipped, tmp_path):
    from tui_neuron.analysis.patch_pairs import Pair
    from tui_neuron.analysis.patching import PatchConfig, run_patching

    res = run_patching(shipped, [Pair(B_TEXT, f"{A_SOURCE} queen@3")], PatchConfig(block=64, encoder=False))
    path = tmp_path / "patch.json"
    path.write_text(json.dumps(res))
    app = ExplorerApp(shipped, session_path=tmp_path / "s.json")
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("escape", "f")
        await pilot.pause()
        assert isinstance(app.screen, PromptScreen)
        app.screen.query_one("#prompt-input").value = str(path)
        await pilot.press("enter")
        await wait_for_screen(app, pilot, PatchScreen)
        table = app.screen.query_one("#patch-table")
        assert table.row_count == 4 and np.isfinite(np.array(res["maps"]["h/l0"]["exact"]["mean"], float)).all()
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, PatchScreen)


async def test_b_runs_the_cheap_rankers_and_selects_their_neurons(tiny_gru, tmp_path):
    """`b` with 'probeless HYP' or 'cluster' runs NeuroX's cheap rankers in a worker, as `rank` does."""
    from tui_neuron.analysis.jobs import ClusterJob, ProbelessJob, preset, run_cluster, run_probeless

    app = ExplorerApp(tiny_gru, session_path=tmp_path / "s.json")
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        for text, expected in (
                ("probeless position", run_probeless(tiny_gru, preset(ProbelessJob, "quick", hypothesis="position"))
                 ["ranking"][: max(1, tiny_gru.config.hidden // 10)]),
                ("cluster", run_cluster(tiny_gru, preset(ClusterJob, "quick"))["representatives"])):
            await pilot.press("escape", "b")
            await pilot.pause()
            assert isinstance(app.screen, PromptScreen)
            app.screen.query_one("#prompt-input").value = text
            await pilot.press("enter")
            await settle(app, pilot)
            assert list(app.selection) == sorted(expected) or list(app.selection) == expected, text
