"""Probes, NeuroX rankings and state gradients, on tiny models trained in the test session."""

import copy

import numpy as np
import pytest
import torch
from textual.widgets import Input
from torch import nn

from tui_neuron.analysis import memory
from tui_neuron.analysis.neurox import RankConfig, cross_model_correlation, neuron_ranking, rank
from tui_neuron.analysis.probes import control_labels, encoder_labels, encoder_states, probe
from tui_neuron.analysis.recording import heldout_lines
from tui_neuron.checkpoint.format import Checkpoint

SET_WORDS = [f"w{i}" for i in range(12)]


def plant(ckpt: Checkpoint, neuron: int, dim: int) -> Checkpoint:
    """A copy whose encoder neuron `neuron` is +1 after a word of SET_WORDS and -1 after any other word."""
    model = copy.deepcopy(ckpt.model)
    H = model.config.hidden
    with torch.no_grad():
        for tid, word in enumerate(ckpt.vocab.itos):
            model.embedding.weight[tid, dim] = 2.0 if word in SET_WORDS else -2.0
        enc = model.encoder
        enc.weight_ih_l0[H + neuron].zero_()
        enc.weight_hh_l0[H + neuron].zero_()
        enc.bias_ih_l0[H + neuron] = -30.0  # update gate shut: h = candidate
        enc.bias_hh_l0[H + neuron] = 0.0
        enc.weight_ih_l0[2 * H + neuron].zero_()
        enc.weight_ih_l0[2 * H + neuron, dim] = 10.0
        enc.weight_hh_l0[2 * H + neuron].zero_()
        enc.bias_ih_l0[2 * H + neuron] = 0.0
        enc.bias_hh_l0[2 * H + neuron] = 0.0
    return Checkpoint(model, ckpt.vocab, ckpt.heldout, ckpt.training, ckpt.path)


@pytest.fixture(scope="module")
def planted(tiny_gru):
    ck = plant(tiny_gru, neuron=0, dim=0)
    states = encoder_states(ck, heldout_lines(ck)[:300])
    y = encoder_labels(states, "word-set", SET_WORDS)
    return ck, states, y


def test_planted_neuron_copies_the_label(planted):
    _, states, y = planted
    assert np.array_equal(states.X[:, 0] > 0, y == "in")


def test_probe_ranks_planted_neuron_first(planted):
    _, states, y = planted
    res = probe(states.X, y, states.sentence, states.words)
    assert res["most_responsible_neuron"] == 0
    assert res["plain"]["accuracy"] > 0.99 > res["plain"]["majority_baseline"]
    assert set(res["plain"]["per_class"]) == {"in", "out"}
    assert "selectivity" in res


def test_elastic_net_ranking_puts_planted_neuron_first_and_top_beats_bottom(planted):
    _, states, y = planted
    res = rank(states.X, y, states.sentence, RankConfig(l1=1e-3, l2=1e-5, percents=(10,)))
    assert res["ranking"][0] == 0
    assert res["converged"] and res["stability"]["seeds"]["top10%"]["min"] == 1.0
    m = res["masking"]
    assert m["top 10%"]["retrained"] > m["bottom 10%"]["retrained"]
    assert m["top 10%"]["masked"] >= m["bottom 10%"]["masked"]


def test_neuron_ranking_algorithm_orders_by_weight_mass():
    coef = np.array([[5.0, 0.1, 1.0, 0.0], [0.0, 3.0, 0.2, 0.1]])
    order = neuron_ranking(coef, stride=0.1)
    assert order[:2] == [0, 1] and sorted(order) == [0, 1, 2, 3]


def test_cross_model_correlation_finds_the_shared_planted_neuron(tiny_gru, tiny_gru_seed1):
    a = plant(tiny_gru, neuron=0, dim=0)
    b = plant(tiny_gru_seed1, neuron=5, dim=1)
    lines = heldout_lines(a)[:300]
    scores = cross_model_correlation([encoder_states(a, lines).X, encoder_states(b, lines).X])
    assert scores[0]["ranking"][0] == 0
    assert scores[1]["ranking"][0] == 5
    assert scores[0]["score"][0] == pytest.approx(1.0, abs=1e-4)


def test_control_task_keeps_one_label_per_word_type():
    words = ["a", "b", "a", "c", "b"]
    y = np.array(["x", "y", "y", "x", "x"])
    c = control_labels(words, y, seed=3)
    assert c[0] == c[2] and c[1] == c[4]


def test_normalisation_makes_embedding_covariance_identity():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(5000, 6)) @ rng.normal(size=(6, 6)) + 3.0
    mu, D = memory.cholesky_factor(X)
    Z = np.linalg.solve(D, (X - mu).T).T
    assert np.allclose(np.cov(Z, rowvar=False), np.eye(6), atol=1e-3)


@pytest.mark.parametrize("kind,state", [("gru", "h"), ("lstm", "h"), ("lstm", "c")])
def test_batched_jacobian_equals_autograd_row_by_row(kind, state):
    torch.manual_seed(0)
    rnn = {"gru": nn.GRU, "lstm": nn.LSTM}[kind](5, 7)
    cell = memory.Cell.from_module(rnn)
    X = torch.randn(9, 5)
    N = memory.delay_jacobians(cell, X, max_delay=6, state=state)
    for t in (8, 5):
        rows = memory.rowwise_jacobian(cell, X, t, state)  # [H, n, E]
        for tau in range(0, min(6, t) + 1):
            assert torch.allclose(N[t - tau, tau], rows[:, t - tau], atol=1e-6)
    if state == "h":  # the unroll itself matches torch's module
        ref, _ = rnn(X[:, None])
        assert torch.allclose(cell.unroll(X), ref[:, 0], atol=1e-6)


def test_trained_copy_task_remembers_longer_than_untrained():
    torch.manual_seed(0)
    V, E, H, delay, n = 8, 8, 24, 4, 14
    emb = nn.Embedding(V, E)
    rnn = nn.GRU(E, H, batch_first=True)
    readout = nn.Linear(H, V)
    untrained = memory.Cell.from_module(copy.deepcopy(rnn))
    opt = torch.optim.Adam([*emb.parameters(), *rnn.parameters(), *readout.parameters()], lr=1e-2)
    for _ in range(400):
        x = torch.randint(0, V, (64, n))
        out, _ = rnn(emb(x))
        loss = nn.functional.cross_entropy(readout(out[:, delay:]).reshape(-1, V), x[:, :-delay].reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.5  # it learned to copy
    trained = memory.Cell.from_module(rnn)
    table = emb.weight.detach().numpy()
    seqs = [np.random.default_rng(i).integers(0, V, size=n) for i in range(20)]
    decay = {}
    for name, cell in (("untrained", untrained), ("trained", trained)):
        rep = memory.memory_report(cell, table, seqs, max_delay=8)
        s1 = rep["curves"]["all"]["sigma1"]
        decay[name] = s1[delay] / s1[0]
    assert decay["trained"] > decay["untrained"]


async def _settle(app, pilot):
    await pilot.pause()
    await app.workers.wait_for_complete()
    await pilot.pause()
    if isinstance(app.focused, Input):
        app.query_one("#strips").focus()  # the keys step and select, as after escape


async def _prompt(app, pilot, key: str, text: str):
    """Press `key`, type `text` into the prompt it opens, submit, and wait for the worker."""
    await pilot.press(key)
    app.screen.query_one("#prompt-input").value = text
    await pilot.press("enter")
    await _settle(app, pilot)


async def test_probe_panel_in_explorer_selects_top_neurons(tiny_gru, tmp_path):
    from tui_neuron.app.explorer import ExplorerApp
    from tui_neuron.app.widgets import NeuronStrip

    app = ExplorerApp(tiny_gru, session_path=tmp_path / "s.json")
    async with app.run_test(size=(120, 40)) as pilot:
        await _settle(app, pilot)
        await _prompt(app, pilot, "b", "position")
        group = app.groups["probe:position"]
        assert len(group) == 10 and app.selection == tuple(group)
        assert app.query_one("#strip-h", NeuronStrip).marked == frozenset(group)


async def test_rank_and_memory_panels_in_explorer(tiny_gru, tmp_path):
    from tui_neuron.app.explorer import ExplorerApp
    from tui_neuron.app.screens import MemoryScreen

    app = ExplorerApp(tiny_gru, session_path=tmp_path / "s.json")
    async with app.run_test(size=(120, 40)) as pilot:
        await _settle(app, pilot)
        await _prompt(app, pilot, "b", "rank position")
        assert len(app.groups["rank:position"]) == 6  # 10% of 64 neurons
        await pilot.press("M")
        await _settle(app, pilot)
        assert isinstance(app.screen, MemoryScreen)
        curve = app.screen.result["curves"]["all"]
        assert len(curve["sigma1"]) == 21 and curve["sigma1"][0] > curve["sigma1"][20]
        await pilot.press("escape")
        assert not isinstance(app.screen, MemoryScreen)


def test_relative_memory_is_one_along_the_top_direction_and_bounded():
    rng = np.random.default_rng(0)
    G = rng.normal(size=(2, 8, 5))
    D = np.eye(5)
    _, _, Vt = np.linalg.svd(G[0])
    top = memory.relative_memory(G, D, Vt[0] * 3.0, top_n=1)
    assert top["relative_memory"][0] == pytest.approx(1.0) and top["cosine_top_n"][0] == pytest.approx(1.0)
    other = memory.relative_memory(G, D, rng.normal(size=5), top_n=2)
    assert all(0 <= m <= 1 + 1e-9 for m in other["relative_memory"])


def test_span_hypothesis_labels_tokens_between_delimiters():
    from tui_neuron.analysis.probes import TokenStates

    words = ["a", "(", "b", "c", ")", "d", "(", "e"]
    states = TokenStates(np.zeros((8, 2)), words, [None] * 8, np.arange(1, 9), np.zeros(8, dtype=int))
    labels = encoder_labels(states, "span", ["(", ")"]).tolist()
    assert labels == ["out", "out", "in", "in", "out", "out", "out", "in"]


def test_memory_by_word_list(tiny_gru):
    from tui_neuron.analysis.corpus_states import memory_for

    rep = memory_for(tiny_gru, max_delay=4, sequences=16, words=SET_WORDS)
    assert set(rep["curves"]) == {"all", "in-list"}
    assert 50 <= rep["curves"]["in-list"]["count"] < rep["curves"]["all"]["count"]
    assert len(rep["curves"]["all"]["sigma1"]) == 5
