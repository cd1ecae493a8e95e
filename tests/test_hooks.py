"""Named hook points: gate interventions act inside the step, h/c after it; names resolve to groups."""

import pytest
import torch

from tui_neuron.errors import UserError
from tui_neuron.model.stepper import Stepper, hook_points
from tui_neuron.model.syntax import parse_intervention


def _examples(ckpt, n=6):
    from tui_neuron.training.evaluate import heldout_examples

    return heldout_examples(ckpt, n=n, seed=3)[1]


@pytest.mark.parametrize("spec", ["set.z:all=1@T", "zero.n:3-5@2", "keep.r:0-9@T-1", "copy.z:4@T<T-1",
                                  "zero.f:all@1", "set.o:2=0.5@T"])
def test_gate_specs_round_trip(spec):
    assert parse_intervention(spec).spec() == spec


def test_unknown_hook_and_wrong_cell_are_refused(tiny_gru, tiny_lstm):
    with pytest.raises(UserError, match="not a hook point"):
        parse_intervention("zero.q:1@T")
    st = Stepper(tiny_gru.model, tiny_gru.vocab)
    with pytest.raises(UserError, match="has no gate 'f'"):
        st.run(_examples(tiny_gru, 2), [parse_intervention("zero.f:1@T")])
    st = Stepper(tiny_lstm.model, tiny_lstm.vocab)
    with pytest.raises(UserError, match="has no gate 'z'"):
        st.run(_examples(tiny_lstm, 2), [parse_intervention("zero.z:1@T")])


def test_update_gate_one_keeps_h_unchanged(tiny_gru):
    """GRU: h' = n + z·(h − n), so z = 1 at step t leaves h_t = h_{t−1} (to rounding), and the gate trace shows 1."""
    st = Stepper(tiny_gru.model, tiny_gru.vocab)
    tr = st.run(_examples(tiny_gru), [parse_intervention("set.z:all=1@2")])
    i = tr.index(2)
    assert torch.allclose(tr.h[:, i], tr.h[:, i - 1], atol=1e-6)
    assert bool((tr.gates["z"][:, i] == 1).all())
    clean = st.run(_examples(tiny_gru))
    assert torch.equal(clean.h[:, : i], tr.h[:, : i])  # nothing before the step moved


def test_gate_on_some_neurons_changes_only_those_at_that_step(tiny_gru):
    st = Stepper(tiny_gru.model, tiny_gru.vocab)
    clean = st.run(_examples(tiny_gru))
    tr = st.run(_examples(tiny_gru), [parse_intervention("set.z:0-3=1@1")])
    i = tr.index(1)
    assert torch.allclose(tr.h[:, i, :4], clean.h[:, i - 1, :4], atol=1e-6)
    assert torch.equal(tr.h[:, i, 4:], clean.h[:, i, 4:])


def test_lstm_forget_and_output_gates(tiny_lstm):
    """LSTM: c' = f·c + i·g and h' = o·tanh(c'): f = 0 gives c' = i·g, o = 0 gives h' = 0."""
    st = Stepper(tiny_lstm.model, tiny_lstm.vocab)
    tr = st.run(_examples(tiny_lstm), [parse_intervention("zero.f:all@2"), parse_intervention("zero.o:all@3")])
    i = tr.index(2)
    assert torch.allclose(tr.c[:, i], tr.gates["i"][:, i] * tr.gates["g"][:, i])
    assert bool((tr.h[:, tr.index(3)] == 0).all())


def test_copying_a_gate_from_its_own_step_changes_nothing(tiny_gru):
    st = Stepper(tiny_gru.model, tiny_gru.vocab)
    clean = st.run(_examples(tiny_gru))
    tr = st.run(_examples(tiny_gru), [parse_intervention("copy.z:all@T<T")])
    assert torch.allclose(tr.h, clean.h, atol=1e-6)
    moved = st.run(_examples(tiny_gru), [parse_intervention("copy.z:all@T<T-1")])
    assert not torch.allclose(moved.h, clean.h)


def test_hook_points_name_every_recorded_value(tiny_gru, tiny_lstm):
    assert hook_points("gru") == ("encoder.h", "decoder.input", "decoder.r", "decoder.z", "decoder.n",
                                  "decoder.h", "output.logits")
    assert "decoder.c" in hook_points("lstm") and "decoder.f" in hook_points("lstm")
    tr = Stepper(tiny_lstm.model, tiny_lstm.vocab).run(_examples(tiny_lstm, 2))
    for name in ("h", "c", "i", "f", "g", "o"):
        assert tr.at_hook(name).shape == tr.h.shape
    with pytest.raises(UserError):
        Stepper(tiny_gru.model, tiny_gru.vocab).run(_examples(tiny_gru, 2)).at_hook("c")


def test_trace_window_and_source_positions(tiny_gru):
    tr = Stepper(tiny_gru.model, tiny_gru.vocab).run(_examples(tiny_gru, 3))
    w = tr.window(0, -1, 2)
    assert w.shape[0] == 4 and torch.equal(w[0], tr.h[0, tr.index(-1)])
    positions = tr.source_positions(0)
    assert positions[-1] == 0 and len(positions) == int(tr.valid[0, : tr.n_enc].sum())
    with pytest.raises(UserError):
        tr.window(0, -1, 10_000)


def test_names_resolve_case_insensitively():
    groups = {"outputting": [5, 3, 4], "counting": [9]}
    assert parse_intervention("set.z:OUTPUTTING=1@T").resolved(groups).neurons.indices == (3, 4, 5)
    assert parse_intervention("zero:counting@T-1").resolved(groups).neurons.indices == (9,)
    assert parse_intervention("zero:all@T").resolved(groups).neurons.indices is None
    assert parse_intervention("swap:counting@0<the cat sat cat@2").resolved(groups).spec() == \
        "swap:counting@0<the cat sat cat@2"
    with pytest.raises(UserError, match="not a known group"):
        parse_intervention("zero:dancing@T").resolved(groups)
