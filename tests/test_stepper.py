"""The stepper must reproduce torch's nn.GRU / nn.LSTM exactly, alone or in a padded batch."""

import random
from pathlib import Path

import pytest
import torch
from torch_reference import torch_greedy

from tui_neuron.checkpoint.format import load_checkpoint
from tui_neuron.model.examples import Example
from tui_neuron.model.seq2seq import ModelConfig, Seq2Seq
from tui_neuron.model.stepper import Stepper
from tui_neuron.model.tokenizer import Vocab
from tui_neuron.training.corpus import collate


def random_model(cell: str, seed: int = 0, layers: int = 1, shared: bool = True):
    torch.manual_seed(seed)
    vocab = Vocab.standard([f"w{i}" for i in range(60)], 6)
    model = Seq2Seq(ModelConfig(len(vocab), cell, 16, 32, 6, max_len=8, layers=layers, shared_embedding=shared)).eval()
    rng = random.Random(seed)
    examples = [
        Example([rng.randrange(vocab.first_word_id, len(vocab)) for _ in range(rng.randint(1, 12))],
                [(rng.randrange(vocab.first_word_id, len(vocab)), rng.randint(1, 6))])
        for _ in range(25)
    ]
    return model, vocab, examples


def check_parity(model, vocab, examples, max_steps=10):
    stepper = Stepper(model, vocab)
    trace = stepper.run(examples, max_steps=max_steps, stop_at_eos=False)
    # encoder: every step's h equals nn.GRU/nn.LSTM's output for that example alone
    for b, ex in enumerate(examples):
        ids = torch.tensor([ex.encoder_ids(vocab)])
        with torch.no_grad():
            ref, final = model.encoder(model.source_embedding(ids))
        n = ids.shape[1]
        mine = trace.h[b, trace.n_enc - n : trace.n_enc]
        assert (ref[0] - mine).abs().max().item() <= 1e-5
        h_n = final[0] if isinstance(final, tuple) else final
        for k in range(model.config.layers):  # every layer's final encoder state
            assert (h_n[k, 0] - trace.layer_h[k][b, trace.n_enc - 1]).abs().max().item() <= 1e-5
    # decoder: teacher-forced on the stepper's own greedy inputs, nn module outputs match h
    batch = collate(examples, vocab)
    with torch.no_grad():
        state = model.encode(batch.src, batch.src_len)
        dec_in = trace.tokens[:, trace.n_enc :]
        ref_dec, _ = model.decoder(model.target_embedding(dec_in), state)
    assert (ref_dec - trace.h[:, trace.n_enc :]).abs().max().item() <= 1e-5
    # greedy outputs identical to the reference decoder built from torch modules
    assert torch.equal(torch_greedy(model, batch.src, batch.src_len, max_steps, vocab.bos_id), trace.outputs)
    # an example decodes the same alone as inside the padded batch
    for b in (0, 7, 19):
        alone = stepper.run([examples[b]], max_steps=max_steps, stop_at_eos=False)
        n = len(examples[b].encoder_ids(vocab))
        assert torch.equal(alone.outputs[0], trace.outputs[b])
        diff = alone.h[0, alone.n_enc - n :] - trace.h[b, trace.n_enc - n :]
        assert diff.abs().max().item() <= 1e-5
    return trace


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_parity_random_weights(cell):
    model, vocab, examples = random_model(cell)
    trace = check_parity(model, vocab, examples)
    assert set(trace.gates) == set(model.config.gate_names)
    assert (trace.c is not None) == (cell == "lstm")


@pytest.mark.parametrize("cell", ["gru", "lstm"])
@pytest.mark.parametrize("layers,shared", [(2, True), (3, False)])
def test_parity_several_layers(cell, layers, shared):
    model, vocab, examples = random_model(cell, seed=layers, layers=layers, shared=shared)
    trace = check_parity(model, vocab, examples)
    assert trace.n_layers == layers and trace.for_layer(0).h.shape == trace.h.shape


def test_intervention_on_a_lower_layer_changes_the_layers_above():
    model, vocab, examples = random_model("gru", seed=5, layers=2)
    stepper = Stepper(model, vocab)
    from tui_neuron.model.syntax import parse_intervention

    clean = stepper.run(examples[:4], max_steps=6, stop_at_eos=False)
    changed = stepper.run(examples[:4], [parse_intervention("zero:all@0/l0")], max_steps=6, stop_at_eos=False)
    i = clean.index(0)
    assert changed.layer_h[0][:, i].abs().max() == 0  # the named layer is zeroed at t=0 ...
    assert not torch.equal(changed.layer_h[1][:, i], clean.layer_h[1][:, i])  # ... and the layer above reads it
    assert torch.equal(changed.layer_h[0][:, : i], clean.layer_h[0][:, : i])


def test_gates_reconstruct_h_gru():
    model, vocab, examples = random_model("gru", 1)
    tr = Stepper(model, vocab).run(examples, max_steps=5, stop_at_eos=False)
    h_prev = torch.cat([torch.zeros_like(tr.h[:, :1]), tr.h[:, :-1]], 1)
    z, n = tr.gates["z"], tr.gates["n"]
    recon = (1 - z) * n + z * h_prev
    valid = tr.valid[..., None].expand_as(recon)
    assert (recon - tr.h)[valid].abs().max() < 1e-5


def test_parity_trained_tiny(tiny_gru, tiny_lstm):
    for ckpt in (tiny_gru, tiny_lstm):
        _, _, examples = random_model(ckpt.config.cell)
        vocab = ckpt.vocab
        exs = [Example([i % (len(vocab) - vocab.first_word_id) + vocab.first_word_id for i in e.source_ids],
                       [(vocab.first_word_id + 2, e.controls[0][1])]) for e in examples]
        check_parity(ckpt.model, vocab, exs)


SHIPPED_FILES = sorted((Path(__file__).resolve().parent.parent / "checkpoints").glob("*.safetensors"))


@pytest.mark.parametrize("path", SHIPPED_FILES, ids=[p.stem for p in SHIPPED_FILES])
def test_parity_shipped(path):
    """Every shipped checkpoint (the GRU, and the LSTM when shipped): parity with torch's modules."""
    ckpt = load_checkpoint(path)
    vocab = ckpt.vocab
    rng = random.Random(3)
    exs = [Example([rng.randrange(vocab.first_word_id, len(vocab)) for _ in range(rng.randint(3, 16))],
                   [(rng.randrange(vocab.first_word_id, vocab.first_word_id + 200), rng.randint(1, 13))])
           for _ in range(40)]
    check_parity(ckpt.model, vocab, exs, max_steps=18)


def test_topk_and_control_probability_are_consistent(tiny_gru):
    st = Stepper(tiny_gru.model, tiny_gru.vocab)
    ex = st.example("w1 w2 w3 w4", ["w5@3"])
    tr = st.run([ex], keep_logits=True, topk=3)
    probs = torch.softmax(tr.logits[0], -1)
    assert torch.allclose(tr.top_probs[0], probs.topk(3, -1).values)
    assert torch.allclose(tr.control_probs[0], probs[:, tiny_gru.vocab.stoi["w5"]])
    assert torch.equal(tr.outputs[0], probs.argmax(-1))


def test_stepper_view_layer_is_what_analyses_read():
    """`--layer` sets the checkpoint's analysis layer; the stepper's traces then view that layer's states."""
    model, vocab, examples = random_model("lstm", seed=2, layers=2)
    top = Stepper(model, vocab).run(examples[:3], max_steps=4)
    low = Stepper(model, vocab, layer=0).run(examples[:3], max_steps=4)
    assert low.layer == 0 and torch.equal(low.h, top.layer_h[0]) and torch.equal(low.c, top.layer_c[0])
    assert not torch.equal(low.h, top.h) and torch.equal(low.outputs, top.outputs)
