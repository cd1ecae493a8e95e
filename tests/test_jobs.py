"""Jobs: one set of defaults, a named quick preset, and the CLI and the explorer's job asking the same question."""

import json

import pytest
from conftest import run_main

from tui_neuron.analysis.jobs import FunctionsJob, MemoryJob, ProbeJob, RankJob, preset, run_probe
from tui_neuron.errors import UserError


def test_presets_start_from_the_one_set_of_defaults():
    assert preset(ProbeJob) == ProbeJob()
    quick = preset(ProbeJob, "quick", hypothesis="token")
    assert (quick.sentences, quick.hypothesis, quick.preset) == (500, "token", "quick")
    assert preset(FunctionsJob, "quick").n_tokens == 10 and preset(MemoryJob, "quick").sequences == 24
    assert preset(RankJob, "quick", sentences=None).sentences == 500  # None means: not given
    assert preset(RankJob, "full", sentences=7).sentences == 7
    with pytest.raises(UserError, match="preset 'fast'"):
        preset(ProbeJob, "fast")


def test_cli_quick_preset_equals_the_explorers_job(tiny_gru, tmp_path, capsys):
    """`analyze probe --preset quick` and the explorer's b (run_probe under the quick preset) give one answer."""
    out = tmp_path / "probe.json"
    code, _, err = run_main("analyze", "probe", tiny_gru.path, "--hypothesis", "steps-remaining", "--preset",
                            "quick", "--out", out, capsys=capsys)
    assert code == 0, err
    cli = json.loads(out.read_text())
    job = run_probe(tiny_gru, preset(ProbeJob, "quick", hypothesis="steps-remaining"))
    assert cli["preset"] == job["preset"] == "quick" and cli["sentences"] == 500
    assert cli["plain"]["top_neurons"] == job["plain"]["top_neurons"]
    assert cli["plain"]["accuracy"] == job["plain"]["accuracy"]
