"""Pattern search (analyze match): the place finder, a planted neuron found in a tiny model, CLI = job."""

import copy
import json

import numpy as np
import pytest
import torch
from conftest import run_main

from tui_neuron.analysis.jobs import MatchJob, preset, run_match
from tui_neuron.analysis.places import find_places, histograms
from tui_neuron.analysis.results_files import load_results
from tui_neuron.checkpoint.format import load_checkpoint, save_checkpoint
from tui_neuron.errors import UserError

PLANTED = 5  # the encoder neuron planted to fire while reading the marker word
MARKER = "w7"


def test_places_are_ranked_and_do_not_overlap():
    a = np.array([[0.0], [0.9], [0.8], [0.7], [0.0], [0.6], [0.6], [0.0]])
    places = find_places([a], threshold=0.5, window=2)
    assert [(p.start, round(p.margin, 2)) for p in places] == [(1, 0.35), (5, 0.1)]  # (2,3) overlaps (1,2)
    assert all(p.share == 1.0 for p in places)
    below = find_places([a], threshold=0.5, below=True, window=1)
    assert sorted(p.start for p in below) == [0, 4, 7]
    partial = find_places([np.array([[0.9, 0.9], [0.9, 0.1]])], threshold=0.5, window=2, min_share=0.75)
    assert len(partial) == 1 and partial[0].share == 0.75
    assert find_places([a[:1]], threshold=0.5, window=2) == []


def test_histograms_count_every_state():
    h = histograms(np.array([[0.0, 1.0], [0.5, 1.0], [1.0, 1.0]]), [3, 9], bins=4)
    assert sum(h["3"]["counts"]) == 3 and h["3"]["edges"][0] == 0.0 and h["3"]["edges"][-1] == 1.0
    assert sum(h["9"]["counts"]) == 3  # a constant neuron still gets a histogram


@pytest.fixture(scope="module")
def planted(tiny_gru, tmp_path_factory):
    """tiny_gru with encoder neuron PLANTED set to +1 while reading MARKER and -1 otherwise (z = 0 so h = n;
    n = tanh(±5) from a spare embedding dimension that only MARKER has); saved, with a corpus to search."""
    ckpt = copy.deepcopy(tiny_gru)
    m, vocab = ckpt.model, ckpt.vocab
    H = m.config.hidden
    with torch.no_grad():
        emb = m.source_embedding.weight
        emb[:, -1] = 0.0
        emb[vocab.stoi[MARKER], -1] = 1.0
        enc = m.encoder
        for w in (enc.weight_ih_l0, enc.weight_hh_l0):
            w[[PLANTED, H + PLANTED, 2 * H + PLANTED]] = 0.0
        enc.weight_ih_l0[2 * H + PLANTED, -1] = 10.0
        enc.bias_ih_l0[[PLANTED, H + PLANTED, 2 * H + PLANTED]] = torch.tensor([0.0, -30.0, -5.0])
        enc.bias_hh_l0[[PLANTED, H + PLANTED, 2 * H + PLANTED]] = 0.0
    folder = tmp_path_factory.mktemp("planted")
    save_checkpoint(ckpt, folder / "planted.safetensors")
    corpus = folder / "search.txt"
    corpus.write_text("w1 w2 w3 w4\nw2 w3 w7 w7 w4 w5\nw7 w1 w2\nw3 w3 w3\n")
    return load_checkpoint(folder / "planted.safetensors"), corpus


def test_match_finds_the_planted_span(planted):
    ckpt, corpus = planted
    res = run_match(ckpt, preset(MatchJob, neurons=(PLANTED,), threshold=0.5, window=2, corpus=(str(corpus),)))
    assert res["n_sequences"] == 4 and res["n_matches"] == 1
    top = res["matches"][0]
    assert top["tokens"][top["start"] : top["end"]] == [MARKER, MARKER] and top["share"] == 1.0
    singles = run_match(ckpt, preset(MatchJob, neurons=(PLANTED,), threshold=0.5, window=1, corpus=(str(corpus),)))
    assert singles["n_matches"] == 3
    assert all(m["tokens"][m["start"]] == MARKER for m in singles["matches"])
    off = run_match(ckpt, preset(MatchJob, neurons=(PLANTED,), threshold=0.5, below=True, window=3,
                                 corpus=(str(corpus),)))
    assert all(MARKER not in m["tokens"][m["start"] : m["end"]] for m in off["matches"]) and off["n_matches"] == 2
    counts = res["histograms"][str(PLANTED)]["counts"]
    assert counts[-1] == 3 and counts[0] == res["n_states"] - 3  # three marker states at +1, the rest at -1


def test_match_on_decoder_states(planted):
    ckpt, _ = planted
    res = run_match(ckpt, preset(MatchJob, neurons=(1, 2), threshold=-2.0, window=2, part="decoder", sentences=40))
    assert res["n_matches"] > 0 and all(m["controls"] and "t_start" in m for m in res["matches"])


def test_match_cli_prints_the_job_answer(planted, tmp_path, capsys):
    ckpt, corpus = planted
    out = tmp_path / "m.json"
    code, stdout, _ = run_main("analyze", "match", ckpt.path, "--neurons", str(PLANTED), "--threshold", "0.5",
                               "--window", "2", "--corpus", corpus, "--json", "--out", out, capsys=capsys)
    assert code == 0
    printed = json.loads(stdout[stdout.index("{"):])
    direct = run_match(ckpt, preset(MatchJob, neurons=(PLANTED,), threshold=0.5, window=2, corpus=(str(corpus),)))
    assert printed["matches"] == direct["matches"] and printed["histograms"] == direct["histograms"]
    assert load_results(out).kind == "match" and load_results(out).top_neurons(64) == ("match", [PLANTED])
    code, _, stderr = run_main("analyze", "match", ckpt.path, "--neurons", str(PLANTED), "--out", out, capsys=capsys)
    assert code == 2 and "exists" in stderr  # nothing saved is overwritten unasked


@pytest.mark.parametrize("args,message", [
    (["--neurons", "999"], "does not exist"),
    (["--neurons", "3", "--part", "middle"], "encoder or decoder"),
    (["--neurons", "3", "--min-share", "0"], "min-share"),
    (["--neurons", "x"], "neurons"),
])
def test_match_bad_arguments_are_one_line(planted, args, message, capsys):
    ckpt, corpus = planted
    code, _, stderr = run_main("analyze", "match", ckpt.path, "--corpus", corpus, *args, capsys=capsys)
    assert code == 2 and message in stderr and "Traceback" not in stderr
    assert len(stderr.strip().splitlines()) == 1


def test_match_job_checks_its_config(planted):
    ckpt, _ = planted
    with pytest.raises(UserError, match="select at least one neuron"):
        run_match(ckpt, MatchJob())


async def test_explorer_search_finds_the_planted_neuron_and_opens_a_place(planted, tmp_path):
    """S with the planted neuron selected: the histogram and the places shown are the job's, every place holds
    the marker word, and enter opens the first as the source."""
    from textual.widgets import OptionList

    from tui_neuron.app.explorer import ExplorerApp
    from tui_neuron.app.screens import MatchScreen, PromptScreen

    ckpt, _ = planted
    app = ExplorerApp(ckpt, session_path=tmp_path / "s.json")
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.press("escape")  # out of the source box: keys are commands again
        app.neuron = PLANTED
        await pilot.press("S")
        await pilot.pause()
        assert isinstance(app.screen, PromptScreen)
        app.screen.query_one("#prompt-input").value = "0.5 window 1"
        await pilot.press("enter")
        for _ in range(100):
            await pilot.pause(0.05)
            await app.workers.wait_for_complete()
            if isinstance(app.screen, MatchScreen):
                break
        screen = app.screen
        assert isinstance(screen, MatchScreen)
        expected = run_match(ckpt, preset(MatchJob, "quick", neurons=(PLANTED,), threshold=0.5, window=1))
        assert screen.result["matches"] == expected["matches"] and expected["n_matches"] > 0
        options = screen.query_one("#match-list", OptionList)
        assert options.option_count == len(expected["matches"])
        first = str(options.get_option_at_index(0).prompt)  # the span in [brackets], not eaten as markup
        assert f"[{MARKER}]" in first
        assert all(m["tokens"][m["start"]] == MARKER for m in screen.result["matches"])
        from textual.widgets import Static

        histogram = screen.query_one("#match-histograms")
        assert "◀ threshold" in str(histogram.query_one(Static).render())
        assert "share on" in str(screen.query_one("#match-columns").render())  # the list's columns are named
        await pilot.press("tab")  # the histogram takes the focus and scrolls on its own keys
        assert screen.focused is histogram
        await pilot.press("tab")
        assert screen.focused is options
        await pilot.press("enter")
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert not isinstance(app.screen, MatchScreen)
        assert app.query_one("#source").value == expected["matches"][0]["source"]
        assert app.view is not None and app.view.source == expected["matches"][0]["source"].split()
        # the step shown is where the matched span starts: its input is the marker word
        place = expected["matches"][0]
        assert app.view.clean.inputs[app.step] == MARKER, (app.view.t_at(app.step), place["start"])
