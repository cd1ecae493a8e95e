"""export activations: each format written from a tiny model and read back (h5py, json), NeuroX's own loader where
it installs, the LSTMVis config, the --activations round trip, and bad input as one line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import run_main

h5py = pytest.importorskip("h5py")


@pytest.fixture(scope="module")
def corpus(tiny_gru, tmp_path_factory) -> Path:
    """The tiny model's held-out sentences as a text file, one a line, with a repeated sentence."""
    from tui_neuron.analysis.recording import heldout_lines

    lines = [" ".join(x) for x in heldout_lines(tiny_gru)[:40]]
    path = tmp_path_factory.mktemp("export") / "corpus.txt"
    path.write_text("\n".join(lines + lines[:1]) + "\n")
    return path


def _export(ckpt, corpus, out, *args, capsys=None):
    return run_main("export", "activations", ckpt.path, corpus, "--out", out, *args, capsys=capsys)


def test_neurox_hdf5_and_json_hold_the_same_arrays_in_neurox_layout(tiny_gru, corpus, tmp_path, capsys):
    from tui_neuron.analysis.activation_files import read_activations
    from tui_neuron.analysis.probes import encoder_states

    h5, js = tmp_path / "a.hdf5", tmp_path / "a.json"
    for path, fmt in ((h5, "neurox-hdf5"), (js, "neurox-json")):
        code, _, err = _export(tiny_gru, corpus, path, "--format", fmt, "--states", "h,z", capsys=capsys)
        assert code == 0, err
    with h5py.File(h5, "r") as f:
        index = json.loads(f["sentence_to_index"][0])
        assert len(index) == 41 and any(k.endswith("(Occurrence 2)") for k in index)  # NeuroX's suffix
        first = np.asarray(f["0"])
        assert first.shape[0] == 2 and first.shape[2] == tiny_gru.config.hidden  # [tracks, tokens, hidden]
        assert json.loads(f.attrs["tui_neuron_tracks"]) == ["h/l0", "z/l0"]
    lines = js.read_text().splitlines()
    row = json.loads(lines[0])
    assert row["linex_index"] == 0 and [x["token"] for x in row["features"]] == corpus.read_text().split("\n")[0].split()
    assert [layer["index"] for layer in row["features"][0]["layers"]] == [0, 1]
    a, b = read_activations(h5), read_activations(js)
    assert a.tokens == b.tokens and all(np.allclose(x, y, atol=1e-7) for x, y in zip(a.acts, b.acts))
    # the values are the model's encoder states
    states = encoder_states(tiny_gru, [corpus.read_text().split("\n")[0].split()])
    assert np.allclose(a.acts[0][:, : tiny_gru.config.hidden], states.X, atol=1e-6)


def test_neurox_own_loader_reads_both_files(tiny_gru, corpus, tmp_path, capsys):
    loader = pytest.importorskip("neurox.data.loader", reason="NeuroX is not installed beside the project")
    for name, fmt in (("a.hdf5", "neurox-hdf5"), ("a.json", "neurox-json")):
        path = tmp_path / name
        assert _export(tiny_gru, corpus, path, "--format", fmt, capsys=capsys)[0] == 0
        acts, layers = loader.load_activations(str(path))
        assert layers == 1 and acts[0].shape[1] == tiny_gru.config.hidden


def test_lstmvis_bundle_has_the_keys_lstmvis_reads(tiny_lstm, corpus, tmp_path, capsys):
    out = tmp_path / "bundle"
    code, _, err = _export(tiny_lstm, corpus, out, "--format", "lstmvis", "--states", "h,c,f", capsys=capsys)
    assert code == 0, err
    cfg = json.loads((out / "lstm.yml").read_text())  # JSON is YAML
    assert {"name", "description", "files", "word_sequence", "states"} <= set(cfg)
    assert all(v.endswith((".h5", ".hdf5", ".dict")) for v in cfg["files"].values())
    ws = cfg["word_sequence"]
    assert ws["file"] in cfg["files"] and ws["dict_file"] in cfg["files"]
    types = cfg["states"]["types"]
    assert [(t["path"], t["layer"]) for t in types] == [("h1", 1), ("c1", 1), ("f1", 1)]
    assert types[0]["transform"] == "none" and "transform" not in types[1] and types[2]["unsigned"] is True
    with h5py.File(out / cfg["files"][cfg["states"]["file"]], "r") as s, \
            h5py.File(out / cfg["files"][ws["file"]], "r") as w:
        steps = w[ws["path"]].shape[0]
        assert all(s[t["path"]].shape == (steps, tiny_lstm.config.hidden) for t in types)
    words = (out / "words.dict").read_text().splitlines()
    assert words[0].rsplit(" ", 1)[1] == "0"


def test_rank_from_an_exported_file_equals_rank_on_the_model(tiny_gru, corpus, tmp_path, capsys):
    path = tmp_path / "a.hdf5"
    assert _export(tiny_gru, corpus, path, "--limit", "40", capsys=capsys)[0] == 0
    direct, from_file = tmp_path / "direct.json", tmp_path / "file.json"
    base = ["analyze", "rank", tiny_gru.path, "--hypothesis", "position", "--sentences", "40"]
    code, _, err = run_main(*base, "--out", direct, capsys=capsys)
    assert code == 0, err
    code, _, err = run_main(*base, "--activations", path, "--out", from_file, capsys=capsys)
    assert code == 0, err
    assert json.loads(direct.read_text())["ranking"] == json.loads(from_file.read_text())["ranking"]


@pytest.mark.parametrize("args,expect", [
    (["--states", "c"], "--states c"),
    (["--format", "csv"], "--format"),
    (["--part", "middle"], "--part"),
])
def test_bad_export_options_are_one_line(tiny_gru, corpus, tmp_path, args, expect, capsys):
    code, _, err = _export(tiny_gru, corpus, tmp_path / "x.hdf5", *args, capsys=capsys)
    assert code == 2 and expect in err and len(err.strip().splitlines()) == 1


def test_existing_out_empty_corpus_and_a_mismatched_file_are_one_line(tiny_gru, tiny_lstm, corpus, tmp_path, capsys):
    out = tmp_path / "x.hdf5"
    out.write_text("keep me")
    code, _, err = _export(tiny_gru, corpus, out, capsys=capsys)
    assert code == 2 and "--force" in err and out.read_text() == "keep me"
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    code, _, err = _export(tiny_gru, empty, tmp_path / "y.hdf5", capsys=capsys)
    assert code == 2 and "no sentences" in err and not (tmp_path / "y.hdf5").exists()
    two = tmp_path / "two.hdf5"
    assert _export(tiny_gru, corpus, two, "--states", "h,z", capsys=capsys)[0] == 0
    code, _, err = run_main("analyze", "rank", tiny_gru.path, "--hypothesis", "position", "--activations", two,
                            capsys=capsys)
    assert code == 2 and "values per token" in err and len(err.strip().splitlines()) == 1


def test_an_interrupted_export_leaves_nothing_at_out(tiny_gru, corpus, tmp_path, monkeypatch):
    from tui_neuron.analysis import activations
    from tui_neuron.analysis.activations import ExportConfig, read_sentences, stream_activations
    from tui_neuron.cli.export import _writer

    out = tmp_path / "cut.hdf5"
    writer = _writer("neurox-hdf5", out, ["h/l0"], tiny_gru)
    try:
        for i, (words, acts, _) in enumerate(stream_activations(tiny_gru, read_sentences([corpus]),
                                                                 ExportConfig(batch=4))):
            writer.write(words, acts)
            if i == 5:
                raise KeyboardInterrupt
    except KeyboardInterrupt:
        writer.abort()
    assert not out.exists() and not list(tmp_path.glob(".cut.hdf5.part-*"))
    assert activations.PARTS


@pytest.mark.parametrize("suffix", [".json", ".hdf5"])
def test_any_bytes_as_an_activations_file_are_read_or_one_user_error(tmp_path_factory, suffix):
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from tui_neuron.analysis.activation_files import read_activations
    from tui_neuron.errors import UserError

    @settings(max_examples=40, deadline=None)
    @given(st.binary(max_size=400))
    def check(data: bytes) -> None:
        path = tmp_path_factory.mktemp("fuzz") / f"acts{suffix}"
        path.write_bytes(data)
        try:
            read_activations(path)
        except UserError as e:
            assert "\n" not in str(e)

    check()


def test_a_damaged_hdf5_export_is_one_line(tiny_gru, corpus, tmp_path, capsys):
    from tui_neuron.analysis.activation_files import read_activations
    from tui_neuron.errors import UserError

    path = tmp_path / "a.hdf5"
    assert _export(tiny_gru, corpus, path, capsys=capsys)[0] == 0
    with h5py.File(path, "a") as f:
        del f["3"]  # the index names a sentence that is gone
    with pytest.raises(UserError, match="not a NeuroX activations file"):
        read_activations(path)


def test_probeless_scores_are_the_summed_class_mean_differences():
    import itertools

    from tui_neuron.analysis.rankers import correlation_clusters, probeless_ranking

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(400, 12)), rng.integers(0, 4, 400)
    X[:, 7] += 2 * y  # the neuron that tells the classes apart
    ranking, scores = probeless_ranking(X, y)
    expected = [sum(abs(X[y == a, j].mean() - X[y == b, j].mean()) for a, b in itertools.combinations(range(4), 2))
                for j in range(12)]
    assert ranking[0] == 7 and np.allclose(scores, expected)
    X[:, 2] = -3 * X[:, 7] + 0.01 * rng.normal(size=400)  # a redundant copy
    groups, reps = correlation_clusters(X, 0.3)
    assert sorted(groups[0]) == [2, 7] and len(groups) == 11 and reps[0] in (2, 7)


def test_probeless_and_cluster_from_the_cli_reopen_as_selections(tiny_gru, corpus, tmp_path, capsys):
    from tui_neuron.analysis.results_files import load_results

    acts = tmp_path / "a.hdf5"
    assert _export(tiny_gru, corpus, acts, capsys=capsys)[0] == 0
    for cmd, extra in (("probeless", ["--hypothesis", "position"]), ("cluster", [])):
        out = tmp_path / f"{cmd}.json"
        for source in ([], ["--activations", acts]):
            code, text, err = run_main("analyze", cmd, tiny_gru.path, *extra, *source, "--sentences", "40", "--out",
                                       out, "--force", capsys=capsys)
            assert code == 0, err
        name, neurons = load_results(out).top_neurons(tiny_gru.config.hidden)
        assert neurons and all(0 <= n < tiny_gru.config.hidden for n in neurons)


def test_a_tagged_corpus_gives_lstmvis_a_part_of_speech_track(tiny_gru, tmp_path, capsys):
    tagged = tmp_path / "tagged.txt"
    tagged.write_text("w1/DT w2/NN w3/VBD\nw4/PRP w5/VBZ\n")
    out = tmp_path / "bundle"
    code, _, err = _export(tiny_gru, tagged, out, "--format", "lstmvis", "--tagged", capsys=capsys)
    assert code == 0, err
    cfg = json.loads((out / "lstm.yml").read_text())
    meta = cfg["meta"]["part_of_speech"]
    assert meta["vis"] == {"type": "discrete", "range": "dict"} and cfg["files"][meta["dict"]].endswith(".dict")
    with h5py.File(out / cfg["files"][meta["file"]], "r") as f, h5py.File(out / "words.h5", "r") as w:
        assert f[meta["path"]].shape == w["word_ids"].shape == (5,)
        tags = dict(line.rsplit(" ", 1)[::-1] for line in (out / "pos.dict").read_text().splitlines())
        assert [tags[str(i)] for i in f[meta["path"]][:]] == ["DT", "NN", "VBD", "PRP", "VBZ"]
