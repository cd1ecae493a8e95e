"""Interventions: the text syntax round-trips, and each one changes the decode the way it should."""

import pytest
import torch

from tui_neuron.errors import UserError
from tui_neuron.model.stepper import Stepper
from tui_neuron.model.syntax import parse_intervention
from tui_neuron.training.evaluate import landed

SPECS = ["zero:all@T-1", "set:3=0.5@2", "keep:0-9,11@T", "copy:4-5@T-3<T-1", "swap:all@0<w1 w2 w3@1",
         "randin@*", "randin@3:seed=4", "zero.c:1@-2", "zero:1-3@*", "scale:3,5=2@T", "scale.z:all=-1@1",
         "zero:storing@T-1", "set.z:OUTPUTTING=1@T"]


@pytest.mark.parametrize("spec", SPECS)
def test_spec_round_trip(spec):
    iv = parse_intervention(spec)
    assert iv.spec() == spec
    assert parse_intervention(iv.to_json()["spec"]) == iv


@pytest.mark.parametrize("bad", ["", "zero", "zero:all", "zero:x-1@1", "set:1@2", "scale:1@2", "copy:1@2", "zero:all@Q",
                                 "zero:5-2@1", "set:1=abc@2", "swap:all@1<"])
def test_bad_specs_raise_user_error(bad):
    with pytest.raises(UserError):
        parse_intervention(bad)


def heldout(ckpt, n=200, seed=7):
    from tui_neuron.training.evaluate import heldout_examples

    return heldout_examples(ckpt, n=n, seed=seed)[1]


def run(ckpt, examples, specs=()):
    st = Stepper(ckpt.model, ckpt.vocab)
    tr = st.run(examples, [parse_intervention(s) for s in specs])
    return [tr.output_ids(b) for b in range(len(examples))]


def test_tiny_model_positions_tokens(tiny_gru):
    exs = heldout(tiny_gru)
    outs = run(tiny_gru, exs)
    acc = sum(landed(o, *e.controls[0]) for e, o in zip(exs, outs)) / len(exs)
    assert acc > 0.9


def test_zero_all_at_t_minus_1_changes_output(tiny_gru):
    exs = heldout(tiny_gru, 100)
    assert sum(a != b for a, b in zip(run(tiny_gru, exs), run(tiny_gru, exs, ["zero:all@T-1"]))) > 50


def test_copy_previous_step_delays_token_by_one(tiny_gru):
    exs = [e for e in heldout(tiny_gru, 300) if e.controls[0][1] >= 2]
    clean = run(tiny_gru, exs)
    correct = [(e, o) for e, o in zip(exs, clean) if landed(o, *e.controls[0])]
    changed = run(tiny_gru, [e for e, _ in correct], ["copy:all@T-1<T-2"])
    tok_pos = [e.controls[0] for e, _ in correct]
    delayed = sum(landed(o, tok, pos + 1) for o, (tok, pos) in zip(changed, tok_pos)) / len(correct)
    assert delayed > 0.5, delayed


def test_keep_only_all_is_identity_and_keep_none_differs(tiny_gru):
    exs = heldout(tiny_gru, 60)
    assert run(tiny_gru, exs, ["keep:all@T"]) == run(tiny_gru, exs)
    tr = Stepper(tiny_gru.model, tiny_gru.vocab).run(exs[:5], [parse_intervention("keep:0-1@2")])
    assert torch.count_nonzero(tr.h_at(2)[:, 2:]) == 0


def test_set_value_is_visible_in_trace(tiny_gru):
    exs = heldout(tiny_gru, 5)
    tr = Stepper(tiny_gru.model, tiny_gru.vocab).run(exs, [parse_intervention("set:3,4=0.75@1")])
    assert torch.all(tr.h_at(1)[:, 3:5] == 0.75)


def test_swap_with_itself_is_identity_and_with_other_source_differs(tiny_gru):
    st = Stepper(tiny_gru.model, tiny_gru.vocab)
    ex = st.example("w1 w2 w3 w4 w5", ["w7@4"])
    base = st.run([ex]).output_ids(0)
    same = st.run([ex], [parse_intervention("swap:all@0<w1 w2 w3 w4 w5 w7@4")]).output_ids(0)
    other = st.run([ex], [parse_intervention("swap:all@0<w9 w9 w9 w2@1")]).output_ids(0)
    assert same == base
    assert other != base and other[0] == tiny_gru.vocab.stoi["w2"]


def test_random_decoder_inputs_keep_bos_and_change_inputs(tiny_gru):
    exs = heldout(tiny_gru, 50)
    st = Stepper(tiny_gru.model, tiny_gru.vocab)
    clean = st.run(exs)
    rand = st.run(exs, [parse_intervention("randin@*")])
    dec_clean = clean.tokens[:, clean.n_enc :]
    dec_rand = rand.tokens[:, rand.n_enc :]
    assert torch.equal(dec_rand[:, 0], dec_clean[:, 0])  # <bos> kept
    assert not torch.equal(dec_rand[:, 1:3], dec_clean[:, 1:3])


def test_cell_state_intervention_needs_lstm(tiny_gru, tiny_lstm):
    with pytest.raises(UserError, match="LSTM"):
        run(tiny_gru, heldout(tiny_gru, 3), ["zero.c:all@T-1"])
    exs = heldout(tiny_lstm, 50)
    assert run(tiny_lstm, exs, ["zero.c:all@T-1"]) != run(tiny_lstm, exs)




def test_shipped_copy_previous_step_delays_token(shipped):
    """On the shipped checkpoint: writing h_{T-2} into step T-1 makes the token arrive one step late."""
    from conftest import shipped_corpus_or_skip

    shipped_corpus_or_skip(shipped)
    exs = [e for e in heldout(shipped, 600, seed=11) if e.controls[0][1] >= 2]
    clean = run(shipped, exs)
    correct = [e for e, o in zip(exs, clean) if landed(o, *e.controls[0])]
    changed = run(shipped, correct, ["copy:all@T-1<T-2"])
    delayed = sum(landed(o, e.controls[0][0], e.controls[0][1] + 1) for e, o in zip(correct, changed)) / len(correct)
    zeroed = run(shipped, correct, ["zero:all@T-1"])
    assert sum(a != b for a, b in zip(zeroed, [o for e, o in zip(exs, clean) if landed(o, *e.controls[0])])) > 0
    assert delayed > 0.5, delayed


def test_scale_multiplies_the_values(tiny_gru):
    """scale: one class and its grammar row: h of the chosen neurons at the step is the clean value times FACTOR."""
    st = Stepper(tiny_gru.model, tiny_gru.vocab)
    exs = heldout(tiny_gru, n=4)
    clean = st.run(exs)
    scaled = st.run(exs, [parse_intervention("scale:1,3=2.5@1")])
    i = clean.index(1)
    assert torch.allclose(scaled.h[:, i, [1, 3]], 2.5 * clean.h[:, i, [1, 3]])
    others = [j for j in range(clean.h.shape[-1]) if j not in (1, 3)]
    assert torch.equal(scaled.h[:, i, others], clean.h[:, i, others])
    assert torch.equal(scaled.h[:, : i], clean.h[:, : i])
    same = st.run(exs, [parse_intervention("scale:all=1@1")])
    assert torch.equal(same.h, clean.h)


def test_named_neurons_stay_names_until_a_run_resolves_them(tiny_gru):
    iv = parse_intervention("zero:storing@T-1")
    assert iv.neurons.name == "storing" and iv.neurons.indices is None and iv.spec() == "zero:storing@T-1"
    with pytest.raises(UserError, match="name no run has resolved"):
        Stepper(tiny_gru.model, tiny_gru.vocab).run(heldout(tiny_gru, n=2), [iv])
    resolved = iv.resolved({"STORING": [5, 3]})
    assert resolved.neurons.indices == (3, 5) and resolved.spec() == "zero:storing@T-1"
    with pytest.raises(UserError, match="not a known group"):
        iv.resolved({"counting": [1]})
    exs = heldout(tiny_gru, n=3)
    st = Stepper(tiny_gru.model, tiny_gru.vocab)
    assert torch.equal(st.run(exs, [resolved]).h, st.run(exs, [parse_intervention("zero:3,5@T-1")]).h)
