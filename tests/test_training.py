"""Training: it learns, keeps the best checkpoint, and --resume ends on the same weights as a straight run."""

import pytest
import torch
from conftest import tiny_config, with_data
from safetensors.torch import load_file

from tui_neuron.checkpoint.format import load_checkpoint
from tui_neuron.errors import UserError
from tui_neuron.training.trainer import Trainer, resume_path


def test_tiny_training_record(tiny_gru):
    rec = tiny_gru.training
    assert rec["heldout_accuracy"] > 0.9
    assert rec["steps"] == 500 and len(rec["corpus_sha256"]) == 64
    assert [h["step"] for h in rec["history"]] == [250, 500]


@pytest.mark.parametrize("schedule", ["cosine", "plateau"])
def test_resume_matches_uninterrupted_run(corpus_path, tmp_path, schedule):
    """A stop requested mid-run (as SIGINT does) and --resume end on the straight run's weights, bit for bit."""
    kw = dict(max_steps=40, eval_every=10, eval_examples=50, hidden=32, emb_dim=16, schedule=schedule, dropout=0.3,
              word_dropout=0.25, weight_decay=0.01, warmup_steps=5)
    straight = tmp_path / "a.safetensors"
    Trainer(*with_data(tiny_config(corpus_path, straight, **kw))).run()
    split = tmp_path / "b.safetensors"
    first = Trainer(*with_data(tiny_config(corpus_path, split, **kw)))
    first.progress = lambda info: first.request_stop() if info["step"] == 17 else None
    with pytest.raises(KeyboardInterrupt):
        first.run()
    assert first.state.step == 17
    Trainer(*with_data(tiny_config(corpus_path, split, **kw))).run(resume=True)
    a, b = load_file(resume_path(straight)), load_file(resume_path(split))
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert load_checkpoint(split).training["steps"] == 40
    assert load_checkpoint(split).training["stopped"] == "step budget reached"  # not the first part's interrupt


def test_interrupt_leaves_a_valid_checkpoint_and_resume_state(corpus_path, tmp_path):
    out = tmp_path / "c.safetensors"
    calls = {"n": 0}

    def progress(info):
        calls["n"] += 1
        if info["step"] == 25:
            raise KeyboardInterrupt

    trainer = Trainer(*with_data(tiny_config(corpus_path, out, max_steps=100, eval_every=10, eval_examples=50)), progress)
    with pytest.raises(KeyboardInterrupt):
        trainer.run()
    assert load_checkpoint(out).training["steps"] in (10, 20)
    resumed = Trainer(*with_data(tiny_config(corpus_path, out, max_steps=30, eval_every=10, eval_examples=50)))
    state = resumed.run(resume=True)
    assert state.step == 30
    assert not list(tmp_path.glob("*.tmp"))


def test_resume_without_state_is_a_user_error(corpus_path, tmp_path):
    with pytest.raises(UserError, match="nothing to resume"):
        Trainer(*with_data(tiny_config(corpus_path, tmp_path / "x.safetensors"))).run(resume=True)


def test_lstm_trains_and_positions(tiny_lstm):
    assert tiny_lstm.config.cell == "lstm"
    assert tiny_lstm.training["heldout_accuracy"] > 0.8


def test_default_recipe_learns_the_tiny_task(corpus_path, tmp_path):
    """The regularised defaults (dropout, word dropout, AdamW, warmup + cosine) still learn positioning."""
    from tui_neuron.training.trainer import TrainConfig

    defaults = TrainConfig(corpus=(), out="")  # the recipe's one set of defaults
    cfg = tiny_config(corpus_path, tmp_path / "d.safetensors", warmup_steps=50, schedule=defaults.schedule,
                      dropout=defaults.dropout, word_dropout=defaults.word_dropout, weight_decay=defaults.weight_decay,
                      control_weight=defaults.control_weight)
    state = Trainer(*with_data(cfg)).run()
    assert state.best_acc > 0.9
    record = load_checkpoint(cfg.out).training
    assert record["args"]["dropout"] == defaults.dropout and record["world_size"] == 1


@pytest.mark.parametrize("control_weight, smoothing", [(1.0, 0.0), (5.0, 0.0), (5.0, 0.1)])
def test_loss_skips_padding_and_equals_the_full_logits_loss(tiny_gru, control_weight, smoothing):
    """Logits only for real target tokens: the same loss as cross-entropy over every position with pads ignored."""
    from tui_neuron.training.corpus import collate
    from tui_neuron.training.evaluate import heldout_examples

    model = tiny_gru.model.eval()
    _, examples = heldout_examples(tiny_gru, n=64, seed=3)
    b = collate(examples, tiny_gru.vocab)
    assert (b.tgt_out == 0).any()  # the batch has padding to skip
    got = model.loss(b.src, b.src_len, b.tgt_in, b.tgt_out, smoothing, 0, b.control_mask, control_weight)
    per_token = torch.nn.functional.cross_entropy(model(b.src, b.src_len, b.tgt_in).flatten(0, 1), b.tgt_out.flatten(),
                                                  ignore_index=0, label_smoothing=smoothing, reduction="none")
    weight = (b.tgt_out.flatten() != 0).float()
    weight = torch.where(b.control_mask.flatten(), weight * control_weight, weight)
    assert torch.allclose(got, (per_token * weight).sum() / weight.sum(), atol=1e-6)


def test_dropout_drops_p_and_rescales_and_is_off_in_eval():
    from tui_neuron.model.seq2seq import Dropout

    torch.manual_seed(0)
    dropout = Dropout(0.3).train()
    x = torch.ones(500, 999, requires_grad=True)  # an element count not divisible by 4
    y = dropout(x)
    dropped = (y == 0).float().mean().item()
    assert abs(dropped - 0.3) < 0.003  # 0.3 ± 6 standard errors
    assert torch.allclose(y[y != 0], torch.tensor(1 / 0.7))
    y.sum().backward()
    assert torch.equal(x.grad, y.detach())  # the gradient is the mask times the scale
    assert not torch.equal(dropout(torch.ones(4, 8)), dropout(torch.ones(4, 8)))  # a fresh mask per call
    dropout.eval()
    assert torch.equal(dropout(x), x)


def test_recipes_are_named_defaults_that_explicit_options_override(tmp_path):
    """--recipe paper|robust: a named set of defaults, recorded with the options; an explicit option wins."""
    from tui_neuron.errors import ParameterError
    from tui_neuron.training.config import RECIPES, TrainConfig

    base = dict(corpus=("c.txt",), out=str(tmp_path / "m.safetensors"))
    paper = TrainConfig.from_options(**base, recipe="paper")
    assert (paper.dropout, paper.word_dropout, paper.control_weight, paper.weight_decay) == (0.0, 0.0, 1.0, 0.0)
    assert paper.options()["recipe"] == "paper"
    robust = TrainConfig.from_options(**base, dropout=None)
    assert robust.recipe == "robust" and robust.dropout == RECIPES["robust"]["dropout"] == TrainConfig.dropout
    mixed = TrainConfig.from_options(**base, recipe="paper", word_dropout=0.25)
    assert mixed.word_dropout == 0.25 and mixed.dropout == 0.0
    with pytest.raises(ParameterError, match="recipe 'nope'"):
        TrainConfig.from_options(**base, recipe="nope")


def test_init_from_starts_at_a_checkpoints_weights_and_refuses_another_shape(tiny_gru, corpus_path, tmp_path):
    from tui_neuron.errors import ParameterError as _ParameterError

    out = tmp_path / "warm.safetensors"
    cfg = tiny_config(corpus_path, out, cell="gru", max_steps=1, lr=1e-9, warmup_steps=1, init_from=str(tiny_gru.path))
    trainer = Trainer(*with_data(cfg))
    start = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    for k, v in tiny_gru.model.state_dict().items():
        assert torch.equal(start[k], v.float()), k  # the run starts where the checkpoint is
    trainer.run()
    assert load_checkpoint(out).training["args"]["init_from"] == str(tiny_gru.path)
    wider = tiny_config(corpus_path, tmp_path / "w2.safetensors", cell="gru", hidden=32, init_from=str(tiny_gru.path))
    with pytest.raises(_ParameterError, match="hidden"):
        Trainer(*with_data(wider))
    other = tiny_config(corpus_path, tmp_path / "w3.safetensors", cell="gru", vocab_words=20,
                        init_from=str(tiny_gru.path))
    with pytest.raises(_ParameterError, match="vocabulary"):
        Trainer(*with_data(other))


def test_default_threads_are_the_cores_other_work_leaves_free(monkeypatch):
    """A thread per core starves beside other work (163 steps in 20 minutes); the default leaves busy cores alone."""
    import os

    from tui_neuron.training.config import free_cores

    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    for load, expected in ((0.1, 2), (1.2, 1), (3.5, 1)):
        monkeypatch.setattr(os, "getloadavg", lambda load=load: (load, load, load))
        assert free_cores() == expected
    monkeypatch.setattr(os, "cpu_count", lambda: 16)
    monkeypatch.setattr(os, "getloadavg", lambda: (4.4, 0, 0))
    assert free_cores() == 12
