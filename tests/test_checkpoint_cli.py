
"""Checkpoints round-trip, and every kind of bad input gets one clear line and exit code 2, never a traceback."""

import json
import os
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file, save_file

from tui_neuron.analysis.session import Stacked
from tui_neuron.checkpoint.format import load_checkpoint, save_checkpoint
from tui_neuron.errors import UserError
from tui_neuron.model.syntax import parse_intervention

CLI = [sys.executable, "-m", "tui_neuron.cli"]


def cli(*args, **kw):
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True, env=env, timeout=120, **kw)


def test_round_trip_and_tensor_names(tiny_gru, tmp_path):
    path = tmp_path / "copy.safetensors"
    save_checkpoint(tiny_gru, path)
    names = set(load_file(path))
    assert {"embedding.weight", "encoder.weight_ih_l0", "decoder.bias_hh_l0", "output.weight", "output.bias"} <= names
    again = load_checkpoint(path)
    for (k, a), (_, b) in zip(tiny_gru.model.state_dict().items(), again.model.state_dict().items()):
        assert torch.equal(a, b), k
    assert again.vocab.itos == tiny_gru.vocab.itos


def test_fp16_storage_loads_as_fp32(tiny_gru, tmp_path):
    path = tmp_path / "half.safetensors"
    save_checkpoint(tiny_gru, path, torch.float16)
    assert load_file(path)["output.weight"].dtype == torch.float16
    assert load_checkpoint(path).model.output.weight.dtype == torch.float32


def _broken(kind, tiny_gru, tmp_path):
    good = tiny_gru.path
    path = tmp_path / f"{kind}.safetensors"
    if kind == "missing":
        return tmp_path / "nope.safetensors"
    if kind == "truncated":
        path.write_bytes(good.read_bytes()[:500])
    elif kind == "random":
        path.write_bytes(os.urandom(4096))
    elif kind == "pickle":
        path = tmp_path / "model.pt"
        torch.save(tiny_gru.model.state_dict(), path)
    elif kind in ("missing_tensor", "wrong_shape", "no_metadata"):
        from safetensors import safe_open

        with safe_open(str(good), "pt") as f:
            meta = f.metadata()
        tensors = load_file(good)
        if kind == "missing_tensor":
            del tensors["decoder.weight_hh_l0"]
        elif kind == "wrong_shape":
            tensors["output.bias"] = torch.zeros(3)
        else:
            meta = None
        save_file(tensors, path, metadata=meta)
    elif kind == "folder":
        path = tmp_path
    return path


@pytest.mark.parametrize("kind,msg", [
    ("missing", "does not exist"), ("truncated", "truncated or corrupt"), ("random", "truncated or corrupt"),
    ("pickle", "pickle"), ("missing_tensor", "decoder.weight_hh_l0 is missing"),
    ("wrong_shape", "output.bias has shape"), ("no_metadata", "format"), ("folder", "folder"),
])
def test_bad_checkpoints(kind, msg, tiny_gru, tmp_path):
    path = _broken(kind, tiny_gru, tmp_path)
    with pytest.raises(UserError, match=msg):
        load_checkpoint(path)
    r = cli("info", path)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr and msg.split()[0] in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("args,msg", [
    (["the king", "-c", "w1@99"], "outside 1..6"),
    (["the king", "-c", "zzz@2"], "not in the model's vocabulary"),
    (["   ", "-c", "w1@2"], "source is empty"),
    (["w1 w2", "-c", "w1"], "WORD@POSITION"),
    (["w1 w2", "-c", "w1@2", "-i", "zero:999@1"], "does not exist"),
    (["w1 w2", "-c", "w1@2", "-i", "frobnicate"], "not understood"),
])
def test_bad_decode_input(args, msg, tiny_gru):
    r = cli("decode", tiny_gru.path, *args)
    assert r.returncode == 2, r.stderr
    assert msg in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_usage_errors_exit_2():
    assert cli("decode").returncode == 2
    assert cli("no-such-command").returncode == 2


def test_decode_json_has_ids_h_and_gates(tiny_gru):
    r = cli("decode", tiny_gru.path, "w1 w2 w3", "-c", "w4@2", "--json", "-i", "zero:all@T-1")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["source_ids"][-2:] == [tiny_gru.vocab.stoi["w4"], tiny_gru.vocab.position_id(2)]
    assert data["output_ids"] and "changed_output_ids" in data
    step = data["steps"][0]
    assert {"t", "h", "r", "z", "n"} <= set(step) and len(step["h"]) == 64
    assert data["steps"][0]["t"] == -4 and any(s["t"] == 0 for s in data["steps"])


def test_info_and_eval_json(tiny_gru):
    r = cli("info", tiny_gru.path, "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["config"]["hidden"] == 64
    r = cli("eval", tiny_gru.path, "--json", "--examples", "300")
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)["report"]
    assert rep["overall"]["n"] == 300 and rep["overall"]["accuracy"] > 0.9
    assert set(rep["per_position"]) == {str(t) for t in range(1, 7)}


def test_eval_on_moved_corpus_and_changed_corpus(tiny_gru, corpus_path, tmp_path):
    moved = tmp_path / "moved"
    moved.mkdir()
    (moved / corpus_path.name).write_text(corpus_path.read_text())
    assert cli("eval", tiny_gru.path, "--corpus", moved, "--examples", "50").returncode == 0
    (moved / corpus_path.name).write_text("changed text\n" * 100)
    r = cli("eval", tiny_gru.path, "--corpus", moved, "--examples", "50")
    assert r.returncode == 2 and "changed since training" in r.stderr


def test_session_replay_in_decode(tiny_gru, tmp_path):
    from tui_neuron.analysis.session import Session, save_session

    path = tmp_path / "s.json"
    save_session(Session("w1 w2 w3", ["w5@2"], {"g": [1, 2]}, [Stacked(parse_intervention("zero:all@T-1"))]), path)
    r = cli("decode", tiny_gru.path, "--session", path, "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["interventions"] == ["zero:all@T-1"]
    path.write_text("{not json")
    r = cli("decode", tiny_gru.path, "--session", path)
    assert r.returncode == 2 and "not valid JSON" in r.stderr


@pytest.mark.parametrize("config", [
    dict(), dict(layers=2, cell="lstm", shared_embedding=False),
    dict(shared_embedding=False, src_vocab_size=30, architecture=dict(embed_activation="relu")),
    dict(shared_embedding=False, layers=2, cell="lstm", architecture=dict(
        bidirectional=True, bridge="concat", attention="general", query="current", rnn_input=["embedding", "feed"],
        attentional=True, output_input=["attentional"])),
    dict(shared_embedding=False, architecture=dict(
        bidirectional=True, bridge="linear_tanh", attention="additive", rnn_input=["embedding", "context"],
        output_input=["h", "context", "embedding"])),
    dict(architecture=dict(rnn_input=["embedding", "context"], output_input=["embedding", "h", "context"])),
    dict(architecture=dict(attention="dot", query="current", attentional=True, output_input=["attentional"],
                           attentional_activation="none")),
], ids=["plain", "lstm-2", "two-vocabs-relu", "luong-brnn", "bahdanau-bi", "context-fed", "dot-no-tanh"])
def test_expected_shapes_are_the_modules_own(config):
    """The format's shapes, worked out from the config, are exactly the torch module's state dict."""
    from tui_neuron.checkpoint.format import expected_shapes
    from tui_neuron.model.config import ModelConfig
    from tui_neuron.model.seq2seq import Seq2Seq

    cfg = ModelConfig.from_json({"vocab_size": 40, "emb_dim": 6, "hidden": 8, **config})
    module = {name: tuple(t.shape) for name, t in Seq2Seq(cfg).state_dict().items()}
    assert expected_shapes(cfg) == module


def test_errors_name_flags_not_core_parameters(tiny_gru, tmp_path):
    """A message that names two parameters says both flags, and a folder given for results suggests a results
    file, not a checkpoint."""
    no_budget = cli("train", tmp_path, "--out", tmp_path / "m.safetensors")
    assert no_budget.returncode == 2 and "--steps or --minutes" in no_budget.stderr, no_budget.stderr
    folder = cli("analyze", "legibility", tiny_gru.path, "--out", tmp_path)
    assert folder.returncode == 2 and f"{tmp_path / 'results.json'}" in folder.stderr, folder.stderr
    upgrade = cli("upgrade", tiny_gru.path, tmp_path)
    assert upgrade.returncode == 2 and f"NEW {tmp_path} is a folder" in upgrade.stderr, upgrade.stderr
