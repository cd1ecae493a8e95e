"""≥200 malformed session files and ≥200 malformed results files: a one-line UserError, or a file that works."""

from __future__ import annotations

import json
import random

from tui_neuron.analysis.decoding import decode_one
from tui_neuron.analysis.functions import format_table
from tui_neuron.analysis.results_files import load_results
from tui_neuron.analysis.session import load_session

from .helpers import tiny_checkpoint

ODD = [None, True, 0, -1, 3.5, 10**30, "", "x", "no", [], {}, [1, "a"], {"a": [1]}, float("nan"), "w1@2",
       "zero:all@T", ["w1@9"], {"g": [1, 2]}, [{"spec": 5}], [{"spec": "zero:all@T", "enabled": "no"}]]

GOOD_SESSION = {"source": "w1 w2 w3", "controls": ["w2@2"], "groups": {"g": [1, 2]},
                "interventions": [{"spec": "zero:all@T-1", "enabled": True}, {"spec": "keep:0-3@T", "enabled": False}],
                "notes": "n", "checkpoint": "m.safetensors", "version": 1}

GOOD_RESULTS = {
    "functions": {"n_examples": 4, "positioning_accuracy": 1.0, "tokens": {"w1": {}},
                  "table": {"storing: zero at T-1": {"set": {"rate": 0.5, "n": 4, "hits": 2},
                                                     "random": {"rate": 1.0, "n": 4}, "mean_size": 3}},
                  "section5": {"clean": {"z_outputting": 0.2, "r_storing": 0.5, "n": 4}},
                  "roles": {"storing": {"w1": [1, 2]}}, "figure2": [{"token": "w1", "pc1": 0.1, "pc2": 0.2}],
                  "figure3": [{"T": 1, "t": 0, "mean": 0.1}]},
    "probe": {"hypothesis": "pos", "plain": {"top_neurons": [1, 2, 3]}},
    "rank": {"hypothesis": "pos", "ranking": [3, 1, 2], "masking": {}},
    "crossmodel": {"models": [{"ranking": [0, 1]}]},
}


def _mutate_doc(doc, rng: random.Random):
    """Replace, delete or add one field somewhere in a nested document."""
    doc = json.loads(json.dumps(doc))
    node = doc
    for _ in range(rng.randint(0, 3)):
        keys = list(node) if isinstance(node, dict) else list(range(len(node))) if isinstance(node, list) else []
        children = [k for k in keys if isinstance(node[k], (dict, list)) and node[k]]
        if not children:
            break
        node = node[rng.choice(children)]
    keys = list(node) if isinstance(node, dict) else list(range(len(node)))
    if not keys:
        return doc
    key = rng.choice(keys)
    action = rng.random()
    if action < 0.6:
        node[key] = rng.choice(ODD)
    elif action < 0.8 and isinstance(node, dict):
        del node[key]
    elif isinstance(node, dict):
        node["extra_" + str(rng.randrange(9))] = rng.choice(ODD)
    return doc


def _text(doc, rng: random.Random) -> str:
    text = json.dumps(doc)
    r = rng.random()
    if r < 0.1:
        return text[: rng.randrange(len(text))]
    if r < 0.15:
        return "[" * 5000 + "]" * 5000
    if r < 0.2:
        return rng.choice(["", "null", "[]", "5", '"s"', "\x00\xff", "{" + '"a":' * 40])
    return text


def test_malformed_sessions(tmp_path, tally):
    ckpt = tiny_checkpoint(tmp_path / "m.safetensors")
    rng = random.Random(11)
    path = tmp_path / "session.json"

    def use():
        session = load_session(path)
        if session.source and session.controls:
            decode_one(ckpt, session.source, session.controls, session.active_interventions(),
                       names=session.groups)
        return session

    for i in range(240):
        path.write_text(_text(_mutate_doc(GOOD_SESSION, rng), rng), encoding="utf-8", errors="surrogateescape")
        tally.run(f"session {i}", use)
    assert tally.counts["tried"] >= 200 and tally.counts["clean rejection"] > 50


def test_malformed_results(tmp_path, tally):
    rng = random.Random(12)
    path = tmp_path / "results.json"

    def use():
        loaded = load_results(path)
        if loaded.kind == "functions":
            format_table(loaded.data)
        else:
            loaded.top_neurons(8)
        return loaded

    for i in range(240):
        kind = rng.choice(sorted(GOOD_RESULTS))
        path.write_text(_text(_mutate_doc(GOOD_RESULTS[kind], rng), rng), encoding="utf-8", errors="surrogateescape")
        tally.run(f"results {i} ({kind})", use)
    assert tally.counts["tried"] >= 200 and tally.counts["clean rejection"] > 50
