"""The three-stage method on a tiny model trained in the test session."""

import json

import numpy as np
import pytest
import torch
from conftest import ROOT

from tui_neuron.analysis.attribution import prob_from_state
from tui_neuron.analysis.functions import FunctionsConfig, fit_probe
from tui_neuron.analysis.recording import (
    FIRST_T,
    build_examples,
    cached_record,
    heldout_lines,
)
from tui_neuron.app.explorer import ExplorerApp
from tui_neuron.app.widgets import NeuronStrip


def test_recording_layout(tiny_gru, recording):
    e = 0
    ex = recording.examples[e]
    T = ex.controls[0][1]
    tr = __import__("tui_neuron.model.stepper", fromlist=["Stepper"]).Stepper(tiny_gru.model, tiny_gru.vocab).run([ex])
    for t in (FIRST_T, 0, T):
        assert np.allclose(recording.h[e, t - FIRST_T], tr.h_at(t)[0].numpy(), atol=1e-6)
    assert np.isnan(recording.h[e, T + 2 - FIRST_T :]).all()
    assert recording.landed.mean() > 0.9


def test_recording_cache_is_reused(tiny_gru, tmp_path):
    lines = heldout_lines(tiny_gru)
    calls = {"n": 0}

    def make():
        calls["n"] += 1
        return build_examples(tiny_gru, lines, ["w1", "w2"], [1, 2, 3], 3)

    a, cached_a = cached_record(tiny_gru, tmp_path, make, "k1")
    b, cached_b = cached_record(tiny_gru, tmp_path, make, "k1")
    assert (cached_a, cached_b, calls["n"]) == (False, True, 1)
    assert np.array_equal(a.h, b.h, equal_nan=True) and np.array_equal(a.landed, b.landed)


def test_svm_threshold_and_rfe_picks_planted_neurons():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3000, 40))
    groups = np.arange(3000)
    y = (X[:, 7] + X[:, 23] > 0).astype(int)
    probe = fit_probe(X, y, groups, FunctionsConfig(candidate_fraction=0.05))
    assert probe.plausible and probe.accuracy > 0.95
    assert set(probe.candidates) == {7, 23}
    noise = rng.integers(0, 2, size=3000)
    assert not fit_probe(X, noise, groups, FunctionsConfig()).plausible


def test_integrated_gradients_match_finite_differences(tiny_gru):
    """captum's IG against a Riemann sum of central finite differences along the straight path."""
    from captum.attr import IntegratedGradients

    torch.manual_seed(0)
    h = torch.rand(1, 64) * 2 - 1
    x = torch.tensor([tiny_gru.vocab.stoi["w3"]])
    tok = torch.tensor([tiny_gru.vocab.stoi["w5"]])
    ig = IntegratedGradients(lambda hh, xx, tt: prob_from_state(tiny_gru, hh, xx, tt))
    attr = ig.attribute(h, baselines=torch.zeros_like(h), additional_forward_args=(x, tok), n_steps=200,
                        method="riemann_middle").detach()[0]

    def f(v):
        with torch.no_grad():
            return float(prob_from_state(tiny_gru, v[None], x, tok)[0])

    eps, steps = 1e-3, 200
    fd = torch.zeros(64)
    for s in range(steps):
        point = h[0] * (s + 0.5) / steps
        for j in range(64):
            d = torch.zeros(64)
            d[j] = eps
            fd[j] += (f(point + d) - f(point - d)) / (2 * eps)
    fd = fd / steps * h[0]
    assert torch.allclose(attr, fd, atol=2e-4), (attr - fd).abs().max()
    assert abs(float(attr.sum()) - (f(h[0]) - f(torch.zeros(64)))) < 1e-3  # completeness


def test_manipulations_change_the_decode_as_described(results):
    t = results["table"]

    def rate(name, key="set"):
        return t[name][key]["rate"]

    assert rate("outputting: zero at T") < rate("outputting: zero at T", "random")
    assert rate("outputting: keep only at T") > rate("outputting: keep only at T", "random")
    assert rate("triggering: h[T-1-1] <- h[T-1] (token 1 earlier)") > \
        rate("triggering: h[T-1-1] <- h[T-1] (token 1 earlier)", "random")
    assert rate("counting: h[T-1] <- h[T-1-1] (token 1 later)") > \
        rate("counting: h[T-1] <- h[T-1-1] (token 1 later)", "random")
    assert rate("none: clean run") > 0.9
    for entry in results["tokens"].values():
        for role in ("storing", "counting", "triggering", "outputting"):
            assert set(entry["neurons"][role]) <= set(entry["stage1"][role])  # stage 2 only filters


async def test_results_reopen_in_explorer_with_roles(tiny_gru, results, tmp_path):
    path = tmp_path / "functions.json"
    path.write_text(json.dumps(results))
    roles = json.loads(path.read_text())["roles"]
    token = next(iter(roles["outputting"]))

    if True:
        app = ExplorerApp(tiny_gru, session_path=tmp_path / "s.json", roles=roles)
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause()
            await run_controls(app, pilot, f"{token}@3", source="w1 w2 w3 w4")
            strip = app.query_one("#strip-h", NeuronStrip)
            tagged = {j for j, r in strip.roles.items() if "o" in r}
            assert tagged == set(roles["outputting"][token])
            await pilot.press("4")
            assert set(app.selection) == set(roles["outputting"][token])
            await pilot.press("t", "p")
            await pilot.pause()
            await app.workers.wait_for_complete()
            await pilot.pause()
            assert app.view.interventions and app.view.interventions[0].startswith("zero:")
            assert app.view.changed is not None


async def run_controls(app, pilot, controls: str, source: str | None = None) -> None:
    """Type controls (and a source) into the boxes, press enter, wait for the decode."""
    if source is not None:
        app.query_one("#source").value = source
    app.query_one("#controls").value = controls
    app.query_one("#controls").focus()
    await pilot.press("enter")
    await pilot.pause()
    await app.workers.wait_for_complete()
    await pilot.pause()


async def test_f_key_reopens_a_results_file(tiny_gru, results, tmp_path):
    path = tmp_path / "functions.json"
    path.write_text(json.dumps(results))
    app = ExplorerApp(tiny_gru, session_path=tmp_path / "s.json")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.press("escape", "f")  # the source box has the keys at launch
        app.screen.query_one("#prompt-input").value = str(path)
        await pilot.press("enter")
        await pilot.pause()
        assert app.role_sets == results["roles"]
        token = next(iter(results["roles"]["counting"]))
        await run_controls(app, pilot, f"{token}@3")
        await pilot.press("escape", "2")  # the counting set verification used for this token
        assert set(app.selection) == set(results["roles"]["counting"][token])
        await pilot.press("f")
        app.screen.query_one("#prompt-input").value = str(tmp_path / "missing.json")
        await pilot.press("enter")
        await pilot.pause()
        assert app.is_running and any("cannot load" in n.message for n in app._notifications)


@pytest.mark.parametrize("cell,layers,layer", [("gru", 1, 0), ("lstm", 1, 0), ("gru", 2, 0), ("gru", 2, 1),
                                                ("lstm", 2, 0), ("lstm", 2, 1)])
def test_prob_from_layer_state_matches_the_stepper(cell, layers, layer):
    """Integrated gradients on a layer of the decoder start from a function that reproduces the run."""
    import sys

    sys.path.insert(0, str(ROOT / "tests"))
    from test_stepper import random_model

    from tui_neuron.analysis.attribution import prob_from_layer_state
    from tui_neuron.checkpoint.format import Checkpoint
    from tui_neuron.model.stepper import Stepper

    model, vocab, examples = random_model(cell, seed=4, layers=layers)
    ckpt = Checkpoint(model, vocab)
    exs = [e for e in examples if e.controls[0][1] >= 2][:6]
    tr = Stepper(model, vocab).run(exs, max_steps=8, keep_logits=True, stop_at_eos=False)
    T = torch.tensor([e.controls[0][1] for e in exs])
    rows = torch.arange(len(exs))
    before, at = tr.n_enc - 1 + T - 1, tr.n_enc - 1 + T
    hs = torch.stack([h[rows, before] for h in tr.layer_h], 1)
    cs = torch.stack([c[rows, before] for c in tr.layer_c], 1) if cell == "lstm" else None
    token = torch.tensor([e.controls[0][0] for e in exs])
    expected = torch.softmax(tr.logits[rows, T - 1], -1)[rows, token]
    with torch.no_grad():
        from_output_step = prob_from_layer_state(ckpt, tr.layer_h[layer][rows, at], None, token, layer, hs, cs)
        x_next = tr.tokens[rows, tr.n_enc + T - 1]  # the decoder input of step T
        from_step_before = prob_from_layer_state(ckpt, hs[:, layer], x_next, token, layer, hs, cs)
    assert torch.allclose(from_output_step, expected, atol=1e-5)
    assert torch.allclose(from_step_before, expected, atol=1e-5)
    if layers == 1:  # the one-layer form integrated gradients uses
        from tui_neuron.analysis.attribution import prob_from_state

        c = None if cs is None else cs[:, 0]
        with torch.no_grad():
            assert torch.allclose(prob_from_state(ckpt, hs[:, 0], x_next, token, c), expected, atol=1e-5)


def test_functions_on_each_layer_of_a_two_layer_model(corpus_path, tmp_path, capsys):
    """The whole method runs on either layer of a trained 2-layer GRU: roles, a table, the layer recorded."""
    from conftest import run_main, tiny_config, with_data

    from tui_neuron.training.trainer import Trainer

    out = tmp_path / "two.safetensors"
    Trainer(*with_data(tiny_config(corpus_path, out, layers=2, max_steps=500))).run()
    for layer in ("0", "1"):
        results = tmp_path / f"f{layer}.json"
        code, text, err = run_main("analyze", "functions", out, "--n-tokens", "4", "--positions", "2-5",
                                   "--per-cell", "6", "--layer", layer, "--out", results, capsys=capsys)
        assert code == 0, err
        data = json.loads(results.read_text())
        assert data["layer"] == int(layer) and "outputting: zero at T" in data["table"]
        assert data["table"]["none: clean run"]["set"]["rate"] > 0.5


def test_plausible_follows_the_interval_not_the_point_estimate():
    """Issue 20: a hypothesis is plausible when the lower end of its accuracy's 95% interval clears the
    threshold: 27 of 27 correct is not enough for 95% (the interval reaches down to 87.5%), 200 of 200 is."""
    from tui_neuron.analysis.trust import plausible

    assert plausible(1.0, 27, 0.95) == (False, plausible(1.0, 27, 0.95)[1])
    assert plausible(1.0, 27, 0.95)[1][0] < 0.95
    assert plausible(1.0, 200, 0.95)[0]
    assert not plausible(0.96, 100, 0.95)[0]
    rng = np.random.default_rng(0)
    for n_groups, expected in ((8, False), (400, True)):  # a separable hypothesis, few or many held-out examples
        groups = np.repeat(np.arange(n_groups), 4)
        y = np.tile([0, 1, 0, 1], n_groups)
        X = rng.normal(size=(len(y), 6)) + 5.0 * y[:, None]
        probe = fit_probe(X, y, groups, FunctionsConfig(), select=False)
        assert probe.accuracy == 1.0 and probe.plausible is expected, (n_groups, probe)
        assert probe.to_json()["ci95"][0] <= probe.accuracy


def test_functions_warns_on_a_model_that_cannot_position(tmp_path_factory, corpus_path, tmp_path, capsys):
    """Issue 20: analyze functions on a model that positions almost nothing prints its table under a loud warning,
    and the warning is in the results file (and analyze table shows it again)."""
    from conftest import _train, run_main

    weak = _train(tmp_path_factory, corpus_path, "weak", cell="gru", max_steps=3, eval_every=3)
    out = tmp_path / "weak.json"
    code, stdout, _ = run_main("analyze", "functions", str(weak.path), "--n-tokens", "3", "--per-cell", "4",
                               "--positions", "1-4", "--out", str(out), "--cache", str(tmp_path / "cache"),
                               capsys=capsys)
    assert code == 0
    data = json.loads(out.read_text())
    assert data["positioning_accuracy"] < 0.9
    assert any("positions only" in w for w in data["warnings"])
    assert "WARNING" in stdout and "positions only" in stdout and "WARNING(S) ABOVE" in stdout
    code, stdout, _ = run_main("analyze", "table", str(weak.path), "--results", str(out), capsys=capsys)
    assert code == 0 and "positions only" in stdout


def test_legibility_reports_one_number_per_role_with_random_controls(tiny_gru, recording, tmp_path, capsys):
    """The recipe study's measure on a model that positions: the outputting size is the first grid size whose
    zeroing stops the token (the curve says so), every row has n, a CI and its random control."""
    from conftest import run_main

    from tui_neuron.analysis.legibility import ROWS, LegibilityConfig, legibility_rows, run_legibility
    from tui_neuron.analysis.results_files import load_results

    cfg = LegibilityConfig(draws=2, functions=FunctionsConfig(draws=2, ig_steps=8))
    res = run_legibility(tiny_gru, recording, cfg)
    size = res["outputting_size"]
    rates = [p["set"]["rate"] for p in size["curve"]]
    if size["smallest"] is not None:
        k = size["smallest"]["neurons"]
        first = next(p for p in size["curve"] if p["set"]["rate"] <= 1 - size["stop_share"])
        assert first["neurons"] == k and size["smallest"]["share_of_h"] == k / tiny_gru.config.hidden
        assert size["smallest"]["random"]["draws"] == 2
    assert rates[-1] <= rates[0]  # zeroing all of h stops more than zeroing 2% of it
    assert set(res["rows"]) <= set(ROWS) and "storing: zero at T-1" in res["rows"]
    for row in res["rows"].values():
        assert row["set"]["n"] > 0 and len(row["set"]["ci95"]) == 2
    assert len(legibility_rows(res)) == len(res["rows"]) + 1
    out = tmp_path / "leg.json"
    code, stdout, _ = run_main("analyze", "legibility", str(tiny_gru.path), "--n-tokens", "2", "--per-cell", "4",
                               "--positions", "1-4", "--draws", "1", "--out", str(out), "--cache",
                               str(tmp_path / "cache"), capsys=capsys)
    assert code == 0 and "legibility" in stdout and "outputting" in stdout
    assert load_results(out).kind == "legibility"
    code, _, stderr = run_main("analyze", "legibility", str(tiny_gru.path), "--out", str(out), capsys=capsys)
    assert code == 2 and "--force" in stderr
