"""analyze curves and analyze storing through the real entry point, on the tiny models."""

import json

import pytest
from conftest import run_main

from tui_neuron.analysis.results_files import load_results


def test_curves_writes_json_csv_and_a_figure(tiny_gru, tmp_path, capsys):
    out = tmp_path / "curves.json"
    code, stdout, err = run_main("analyze", "curves", tiny_gru.path, "--n-tokens", "3", "--per-cell", "4",
                                 "--percents", "5,25,50", "--draws", "10", "-o", out, capsys=capsys)
    assert code == 0, err
    res = json.loads(out.read_text())
    assert res["kind"] == "curves" and set(res["curves"]) == {"storing", "counting", "triggering", "outputting"}
    for curve in res["curves"].values():
        sizes = [p["neurons"] for p in curve["points"]]
        assert sizes == sorted(sizes) and len(sizes) == 3
        for p in curve["points"]:
            assert p["random"]["draws"] == 10 and p["random"]["min"] <= p["random"]["mean"] <= p["random"]["max"]
            assert p["set"]["ci95"][0] <= p["set"]["rate"] <= p["set"]["ci95"][1]
    # zeroing half of h_T in order of importance removes the token more than random halves do
    half = res["curves"]["outputting"]["points"][-1]
    assert half["set"]["rate"] <= half["random"]["mean"]
    assert out.with_suffix(".csv").read_text().startswith("role,neurons,percent")
    assert "% success" in stdout and "outputting" in stdout
    assert load_results(out).kind == "curves"


def test_curves_refuses_bad_roles_and_an_existing_out(tiny_gru, tmp_path, capsys):
    code, _, err = run_main("analyze", "curves", tiny_gru.path, "--roles", "storing,dancing", capsys=capsys)
    assert code == 2 and "--roles" in err and len(err.strip().splitlines()) == 1
    out = tmp_path / "exists.json"
    out.write_text("{}")
    code, _, err = run_main("analyze", "curves", tiny_gru.path, "-o", out, capsys=capsys)
    assert code == 2 and "--force" in err
    assert out.read_text() == "{}"


@pytest.mark.parametrize("fixture", ["tiny_gru", "tiny_lstm"])
def test_storing_study_grows_sets_and_tests_redundancy(fixture, request, tmp_path, capsys):
    ckpt = request.getfixturevalue(fixture)
    out = tmp_path / "storing.json"
    code, stdout, err = run_main("analyze", "storing", ckpt.path, "--n-tokens", "2", "--per-cell", "4",
                                 "--grow-step", "32", "--draws", "10", "-o", out, capsys=capsys)
    assert code == 0, err
    res = json.loads(out.read_text())
    expected = {"h"} if ckpt.config.cell == "gru" else {"h", "c", "h+c"}
    assert set(res["states"]) == expected
    for r in res["states"].values():
        assert [p["neurons"] for p in r["growth"]] == [32, 64]
        last = r["growth"][-1]  # every neuron zeroed: both orders are the same full set
        assert last["IG at T-1"]["rate"] == last["IG over t in [-1, T-1]"]["rate"]
        assert r["redundancy"]["random 2k"]["draws"] == 10
        for order in ("IG at T-1", "IG over t in [-1, T-1]"):
            assert set(r["redundancy"][order]) == {"A: ranks 1..k", "B: ranks k+1..2k", "A and B together"}
    assert res["conclusion"] and "redundan" in " ".join(res["conclusion"])
    assert load_results(out).kind == "storing"


async def test_the_explorer_plots_a_loaded_curve_for_the_selected_role(tiny_gru, tmp_path, capsys):
    from tui_neuron.app.explorer import ExplorerApp
    from tui_neuron.app.plot import NeuronPlot

    out = tmp_path / "curves.json"
    code, _, err = run_main("analyze", "curves", tiny_gru.path, "--n-tokens", "2", "--per-cell", "4",
                            "--percents", "10,50", "--roles", "storing,outputting", "-o", out, capsys=capsys)
    assert code == 0, err
    app = ExplorerApp(tiny_gru, session_path=tmp_path / "s.json")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.press("escape", "f")
        app.screen.query_one("#prompt-input").value = str(out)
        await pilot.press("enter")
        await pilot.pause()
        assert set(app.analyses.curves) == {"storing", "outputting"}
        await pilot.press("4")
        await pilot.pause()
        assert app.query_one(NeuronPlot).curve_role == "outputting"
        await pilot.press("2")  # no curve for counting: the plot stays
        assert app.query_one(NeuronPlot).curve_role == "outputting"
