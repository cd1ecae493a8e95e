"""The three-stage method on a tiny model trained in the test session."""

import json

import numpy as np
import pytest
import torch

from tui_neuron.analysis.functions import FunctionsConfig, analyze_functions, fit_probe, prob_from_state
from tui_neuron.analysis.recording import (
    FIRST_T,
    build_examples,
    cached_record,
    frequent_targets,
    heldout_lines,
    record,
)
from tui_neuron.app.explorer import ExplorerApp
from tui_neuron.app.widgets import NeuronStrip


@pytest.fixture(scope="module")
def recording(tiny_gru):
    lines = heldout_lines(tiny_gru)
    tokens = frequent_targets(tiny_gru, lines, 5)
    return record(tiny_gru, build_examples(tiny_gru, lines, tokens, range(1, 7), 20, seed=0))


@pytest.fixture(scope="module")
def results(tiny_gru, recording):
    return analyze_functions(tiny_gru, recording, FunctionsConfig(candidate_fraction=0.2, ig_steps=16))


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
            app.query_one("#source").value = "w1 w2 w3 w4"
            app.query_one("#controls").value = f"{token}@3"
            app.query_one("#controls").focus()
            await pilot.press("enter")
            await pilot.pause()
            await app.workers.wait_for_complete()
            await pilot.pause()
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


async def test_f_key_reopens_a_results_file(tiny_gru, results, tmp_path):
    path = tmp_path / "functions.json"
    path.write_text(json.dumps(results))
    app = ExplorerApp(tiny_gru, session_path=tmp_path / "s.json")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.press("f")
        app.screen.query_one("#prompt-input").value = str(path)
        await pilot.press("enter")
        await pilot.pause()
        assert app.role_sets == results["roles"]
        await pilot.press("2")  # counting neurons are shared by every token
        assert set(app.selection) == set(results["roles"]["counting"]["*"])
        await pilot.press("f")
        app.screen.query_one("#prompt-input").value = str(tmp_path / "missing.json")
        await pilot.press("enter")
        await pilot.pause()
        assert app.is_running and any("cannot load" in n.message for n in app._notifications)
