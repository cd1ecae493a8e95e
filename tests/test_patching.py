"""Activation patching: a cell is the swap intervention a user could type, the metric's ends are 0 and 1,
attribution equals exact where the metric is linear in the patched values, and bad pairs are one line."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import run_main
from hypothesis import given, settings
from hypothesis import strategies as st

from tui_neuron.analysis.patch_pairs import Pair, generate_pairs, read_pairs_tsv
from tui_neuron.analysis.patching import PatchConfig, run_patching
from tui_neuron.errors import UserError


def _landing_pair(ckpt) -> Pair:
    """A position pair on which the tiny model's clean run lands (it positions almost every example)."""
    from tui_neuron.model.examples import example_from_text
    from tui_neuron.model.stepper import Stepper

    stepper = Stepper(ckpt.model, ckpt.vocab)
    for T in (2, 3, 4):
        clean = f"w1 w5 w2 w7 w3 w9 w3@{T}"
        trace = stepper.run([example_from_text(ckpt.vocab, clean)], topk=0)
        if trace.output_ids(0)[T - 1] == ckpt.vocab.stoi["w3"]:
            return Pair(clean, f"w1 w5 w2 w7 w3 w9 w3@{T + 1}")
    raise AssertionError("the tiny GRU did not position w3")


def _grid(res, name="h/l0", method="exact"):
    return np.array(res["maps"][name][method]["mean"], dtype=float)


@pytest.fixture(scope="module")
def single(tiny_gru):
    pair = _landing_pair(tiny_gru)
    return pair, run_patching(tiny_gru, [pair], PatchConfig(block=8))


def test_one_cell_equals_the_same_swap_run_through_decode(tiny_gru, single, tmp_path, capsys):
    pair, res = single
    info = res["pairs"][0]
    step = info["metric_step"]
    t, block = step - 1, 1  # the step before the metric step, neurons 8-15
    row = res["steps"].index("T-1")
    assert res["blocks"][block]["label"] == "8-15"
    path = tmp_path / "m.safetensors"
    import shutil

    shutil.copy(tiny_gru.path, path)
    source, control = pair.corrupt.rsplit(" ", 1)
    code, out, err = run_main("decode", path, source, "-c", control, "-i", f"swap:8-15@{t}<{pair.clean}", "--json",
                              capsys=capsys)
    assert code == 0, err
    h = torch.tensor(next(s["h"] for s in json.loads(out)["changed_steps"] if s["t"] == step))
    with torch.no_grad():
        logits = tiny_gru.model.output(h[None])[0]
    answer, other = (tiny_gru.vocab.stoi[info[k]] for k in ("clean_answer", "corrupt_answer"))
    m = float(logits[answer] - logits[other])
    expected = (m - info["metric_corrupt"]) / (info["metric_clean"] - info["metric_corrupt"])
    assert _grid(res)[row, block] == pytest.approx(expected, abs=1e-4)


def test_the_normalised_metric_is_0_unpatched_and_1_with_every_neuron_patched(tiny_gru, single):
    pair, _ = single
    for direction in ("denoise", "noise"):
        res = run_patching(tiny_gru, [pair], PatchConfig(block=tiny_gru.config.hidden, direction=direction,
                                                         attribution=False))
        grid = _grid(res)[:, 0]
        # the whole of h at the metric step is the other run's: its logits are the donor's exactly
        assert grid[res["steps"].index("T")] == pytest.approx(1.0 if direction == "denoise" else 0.0, abs=1e-5)
        # the encoder steps before the controls read the same words in both runs: patching them changes nothing
        assert grid[res["steps"].index("t=-3")] == pytest.approx(0.0 if direction == "denoise" else 1.0, abs=1e-5)


def test_attribution_equals_exact_where_the_metric_is_linear_in_the_patched_values(tiny_gru, single):
    """The logits are linear in h at the metric step: there the first-order estimate is exact."""
    _, res = single
    row = res["steps"].index("T")
    exact, attr = _grid(res)[row], _grid(res, method="attribution")[row]
    assert np.abs(exact - attr).max() < 1e-4
    assert np.ptp(exact) > 1e-3  # the cells differ: the check is not of zeros against zeros
    assert res["rank_correlation"]["cells"] == exact.size * len(res["steps"])


def test_gates_and_many_pairs(tiny_lstm):
    pairs = [Pair(f"w1 w4 w2 w8 w4@{T}", f"w1 w4 w2 w8 w4@{T + 1}") for T in (1, 2, 3)]
    res = run_patching(tiny_lstm, pairs, PatchConfig(hooks=("all",), block=32, encoder=False))
    assert set(res["maps"]) == {f"{h}/l0" for h in ("h", "c", "i", "f", "g", "o")}
    n = np.array(res["maps"]["h/l0"]["exact"]["n"])
    assert n.max() == res["n_pairs"] and res["n_pairs"] + len(res["dropped"]) == 3
    assert all(s.startswith("T") for s in res["steps"])


def test_a_pair_with_the_same_output_is_dropped_with_its_reason(tiny_gru):
    same = Pair("w1 w2 w3 w2@2", "w1 w2 w3 w2@2")
    res = run_patching(tiny_gru, [same], PatchConfig(block=32))
    assert res["n_pairs"] == 0 and "same output" in res["dropped"][0]["reason"]
    assert res["warnings"]


@pytest.mark.parametrize("args,expect", [
    (["--clean", "w1 zzz w2 w2@2", "--corrupt", "w1 w2 w2@3"], "clean input"),
    (["--clean", "w1 w2 w2@2", "--corrupt", "w1 w2 w2@99"], "position 99 is outside"),
    (["--clean", "w1 w2 w2@2", "--corrupt", "w1 w2"], "needs control signals"),
    (["--clean", "w1 w2 w2@2"], "together"),
    (["--pairs", "sideways"], "not a file"),
    (["--clean", "w1 w2 w2@2", "--corrupt", "w1 w2 w2@3", "--block", "0"], "--block 0"),
    (["--clean", "w1 w2 w2@2", "--corrupt", "w1 w2 w2@3", "--hooks", "c"], "--hooks c"),
    (["--clean", "w1 w2 w2@2", "--corrupt", "w1 w2 w2@3", "--metric", "kl"], "--metric"),
    (["--clean", "w1 w2 w2@2", "--corrupt", "w1 w2 w2@3", "--layers", "3"], "--layers"),
])
def test_bad_pairs_and_options_are_one_line(tiny_gru, args, expect, capsys):
    code, out, err = run_main("analyze", "patch", tiny_gru.path, *args, capsys=capsys)
    assert code == 2, out + err
    assert expect in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_the_cli_writes_json_and_csv_and_never_over_a_file(tiny_gru, tmp_path, capsys):
    pair = _landing_pair(tiny_gru)
    target = tmp_path / "p.json"
    args = ["analyze", "patch", tiny_gru.path, "--clean", pair.clean, "--corrupt", pair.corrupt, "--block", "16",
            "--out", target]
    code, out, err = run_main(*args, capsys=capsys)
    assert code == 0, err
    data = json.loads(target.read_text())
    from tui_neuron.analysis.results_files import load_results

    assert load_results(target).kind == "patch" and data["n_pairs"] == 1
    rows = (tmp_path / "p.csv").read_text().splitlines()
    assert rows[0].startswith("hook,layer,step,block,exact_mean") and len(rows) == 1 + len(data["steps"]) * 4
    assert "Spearman" in out and "|" in out  # the heatmap and the trust line
    code, _, err = run_main(*args, capsys=capsys)
    assert code == 2 and "exists" in err


def test_generated_pairs_differ_the_way_their_kind_says(tiny_gru):
    from tui_neuron.training.evaluate import heldout_examples

    _, held = heldout_examples(tiny_gru, n=100, seed=3)
    for kind in ("position", "token", "source"):
        pairs = generate_pairs(tiny_gru, kind, held, 10, seed=1)
        assert 0 < len(pairs) <= 10
        for p in pairs:
            (src_a, ctl_a), (src_b, ctl_b) = (x.rsplit(" ", 1) for x in (p.clean, p.corrupt))
            same_source, same_token = src_a == src_b, ctl_a.split("@")[0] == ctl_b.split("@")[0]
            assert (same_source, same_token) == {"position": (True, True), "token": (True, False),
                                                 "source": (False, True)}[kind]


def test_pairs_file_lines_are_checked(tmp_path):
    good = tmp_path / "ok.tsv"
    good.write_text("# clean\tcorrupt\nw1 w2 w2@2\tw1 w2 w2@3\n\n")
    assert read_pairs_tsv(good) == [Pair("w1 w2 w2@2", "w1 w2 w2@3")]
    bad = tmp_path / "bad.tsv"
    bad.write_text("w1 w2 w2@2\tw1 w2 w2@3\nonly one side\n")
    with pytest.raises(UserError, match="line 2"):
        read_pairs_tsv(bad)


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_as_a_pairs_file_are_pairs_or_one_user_error(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("fuzz") / "pairs.tsv"
    path.write_bytes(data)
    try:
        pairs = read_pairs_tsv(path)
    except UserError as e:
        assert "\n" not in str(e)
        return
    assert pairs and all(p.clean and p.corrupt for p in pairs)


def test_role_overlap_counts_the_strongest_neurons_inside_each_set():
    from tui_neuron.analysis.patch_roles import role_overlap

    effects = np.zeros(64)
    effects[[3, 5, 7, 9]] = [0.9, 0.8, 0.7, 0.6]  # the four strongest at T-1
    pairs = [("w3", {"T-1": effects, "T": effects})] * 3
    roles = {"counting": {"w3": [3, 5, 7, 11]}, "outputting": {"w3": [40, 41, 42, 43]}, "storing": {}}
    res = role_overlap(pairs, roles, 64, draws=50)
    assert res["counting"]["overlap"] == pytest.approx(0.75) and res["counting"]["pairs"] == 3
    assert res["outputting"]["overlap"] == 0.0
    assert 0 < res["counting"]["random"] < 0.2  # k/h = 4/64 on average
    assert res["storing"]["pairs"] == 0


def test_the_cli_reports_the_overlap_with_a_functions_result(tiny_gru, results, tmp_path, capsys):
    path = tmp_path / "functions.json"
    path.write_text(json.dumps(results))
    token = next(t for t, e in results["tokens"].items() if "neurons" in e)
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("".join(f"w1 w5 w2 w7 w9 {token}@{T}\tw1 w5 w2 w7 w9 {token}@{T + 1}\n" for T in (2, 3)))
    code, out, err = run_main("analyze", "patch", tiny_gru.path, "--pairs", pairs, "--block", "1", "--roles", path,
                              "--method", "exact", "--no-encoder", "--out", tmp_path / "p.json", capsys=capsys)
    assert code == 0, err
    data = json.loads((tmp_path / "p.json").read_text())
    assert set(data["role_overlap"]) == {"storing", "counting", "triggering", "outputting"}
    assert "role sets" in out
    code, _, err = run_main("analyze", "patch", tiny_gru.path, "--pairs", pairs, "--roles", path, capsys=capsys)
    assert code == 2 and "--block 1" in err
