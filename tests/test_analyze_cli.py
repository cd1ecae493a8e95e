"""Every `analyze` subcommand through the real entry point, on the tiny models and a tagged corpus written here."""

import json
import random

import pytest
from conftest import run_main


@pytest.fixture(scope="module")
def tagged(tmp_path_factory):
    """word/TAG lines over the tiny vocabulary; the tag is the word's index mod 3 (a learnable property)."""
    rng = random.Random(3)
    folder = tmp_path_factory.mktemp("tagged")
    lines = []
    for _ in range(400):
        ids = [rng.randrange(24) for _ in range(rng.randint(5, 9))]
        lines.append(" ".join(f"w{i}/{'ABC'[i % 3]}" for i in ids))
    (folder / "book.txt").write_text("\n".join(lines))
    return folder


def test_probe_on_a_tagged_corpus(tiny_gru, tagged, tmp_path, capsys):
    out = tmp_path / "probe.json"
    code, text, err = run_main("analyze", "probe", tiny_gru.path, "--hypothesis", "pos", "--tagged", tagged,
                               "--sentences", "300", "-o", out, capsys=capsys)
    assert code == 0, err
    res = json.loads(out.read_text())
    assert res["classes"] == 3 and res["plain"]["accuracy"] > res["plain"]["majority_baseline"]
    assert "most responsible neuron" in text


def test_rank_converges_and_prints_its_stability(tiny_gru, tagged, tmp_path, capsys):
    out = tmp_path / "rank.json"
    code, text, err = run_main("analyze", "rank", tiny_gru.path, "--hypothesis", "pos", "--tagged", tagged,
                               "--sentences", "300", "--stability-seeds", "2", "--resamples", "1", "--l1", "1e-3",
                               "--percents", "10", "-o", out, capsys=capsys)
    assert code == 0, err
    res = json.loads(out.read_text())
    assert res["converged"] and res["stability"]["n_seeds"] == 2 and res["stability"]["n_resamples"] == 1
    assert res["masking"]["random 10%"]["masked_spread"]["draws"] == 10
    assert "Jaccard" in text and "converged" in text


def test_rank_refuses_an_unknown_objective(tiny_gru, capsys):
    code, _, err = run_main("analyze", "rank", tiny_gru.path, "--hypothesis", "position", "--objective", "cubic",
                            capsys=capsys)
    assert code == 2 and "--objective" in err


def test_decoder_hypotheses_probe(tiny_gru, capsys):
    code, text, err = run_main("analyze", "probe", tiny_gru.path, "--hypothesis", "steps-remaining", capsys=capsys)
    assert code == 0, err
    assert "ridge" in text


def test_top_words_and_memory(tiny_gru, tagged, capsys):
    code, text, err = run_main("analyze", "top-words", tiny_gru.path, "--neuron", "3", "--sentences", "200",
                               capsys=capsys)
    assert code == 0, err
    assert "neuron 3 top:" in text
    code, text, err = run_main("analyze", "memory", tiny_gru.path, "--max-delay", "4", "--sequences", "4",
                               "--tagged", tagged, capsys=capsys)
    assert code == 0, err


def test_crossmodel_on_the_decoder_places_role_neurons(tiny_gru, tiny_gru_seed1, results, tmp_path, capsys):
    functions = tmp_path / "functions.json"
    functions.write_text(json.dumps(results))
    out = tmp_path / "cross.json"
    code, text, err = run_main("analyze", "crossmodel", tiny_gru.path, tiny_gru_seed1.path, "--part", "decoder",
                               "--results", functions, "--sentences", "200", "-o", out, capsys=capsys)
    assert code == 0, err
    res = json.loads(out.read_text())
    assert res["part"] == "decoder" and len(res["models"]) == 2
    assert 0.0 <= res["models"][0]["share_at_least_0.8"] <= 1.0
    assert set(res["roles"]) <= {"storing", "counting", "triggering", "outputting"} and res["roles"]
    assert "in the top 20%" in text


def test_table_and_figures_read_a_functions_result(tiny_gru, results, tmp_path, capsys):
    path = tmp_path / "functions.json"
    path.write_text(json.dumps(results))
    code, text, err = run_main("analyze", "table", tiny_gru.path, "--results", path, capsys=capsys)
    assert code == 0, err
    assert "±" in text and "storing: zero at T-1" in text  # random mean ± sd beside each set
    assert "this result covers" in text  # which tokens the roles are for
    code, text, err = run_main("analyze", "figures", "--results", path, "--out-dir", tmp_path, capsys=capsys)
    assert code == 0, err


def test_crossmodel_refuses_role_placement_on_the_encoder(tiny_gru, tiny_gru_seed1, results, tmp_path, capsys):
    functions = tmp_path / "functions.json"
    functions.write_text(json.dumps(results))
    code, _, err = run_main("analyze", "crossmodel", tiny_gru.path, tiny_gru_seed1.path, "--results", functions,
                            capsys=capsys)
    assert code == 2 and "--part decoder" in err


def test_a_piped_table_keeps_its_full_width(tiny_gru, results, tmp_path):
    """`analyze table … | head` used to render at rich's 80 columns, cutting cells (`ne…`)."""
    import os
    import subprocess
    import sys

    path = tmp_path / "functions.json"
    path.write_text(json.dumps(results))
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    proc = subprocess.run([sys.executable, "-m", "tui_neuron.cli", "analyze", "table", str(tiny_gru.path),
                           "--results", str(path)], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "…" not in proc.stdout and max(map(len, proc.stdout.splitlines())) > 80
    assert "storing: zero at T-1" in proc.stdout
