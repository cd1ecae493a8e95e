"""Bring your own model: a plain torch Seq2Seq defined here, saved as a state dict, imported, decoded the same."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import run_main
from safetensors.torch import save_file
from torch import nn

from tui_neuron.checkpoint.format import load_checkpoint

VOCAB = ["<pad>", "<unk>", "<sos>", "<eos>", *[f"<pos_{t}>" for t in range(1, 6)], *[f"w{i}" for i in range(30)]]


class UserSeq2Seq(nn.Module):
    """What a researcher might have written: separate embeddings, stacked RNNs, an output layer named fc."""

    def __init__(self, cell: str, layers: int = 2, emb: int = 12, hidden: int = 16, vocab: int = len(VOCAB)):
        super().__init__()
        rnn = nn.GRU if cell == "gru" else nn.LSTM
        self.src_embedding = nn.Embedding(vocab, emb)
        self.tgt_embedding = nn.Embedding(vocab, emb)
        self.encoder = rnn(emb, hidden, num_layers=layers, batch_first=True)
        self.decoder = rnn(emb, hidden, num_layers=layers, batch_first=True)
        self.fc = nn.Linear(hidden, vocab)

    @torch.no_grad()
    def greedy(self, ids: list[int], steps: int) -> list[int]:
        _, state = self.encoder(self.src_embedding(torch.tensor([ids])))
        token, out = VOCAB.index("<sos>"), []
        for _ in range(steps):
            h, state = self.decoder(self.tgt_embedding(torch.tensor([[token]])), state)
            token = int(self.fc(h[0, -1]).argmax())
            if token == VOCAB.index("<eos>"):
                break
            out.append(token)
        return out


def _export(tmp_path, cell, seed=0, **kw):
    torch.manual_seed(seed)
    model = UserSeq2Seq(cell, **kw).eval()
    with torch.no_grad():  # larger weights than the default init, so greedy outputs vary
        for p in model.parameters():
            p.mul_(3)
    state = tmp_path / f"{cell}.safetensors"
    save_file(model.state_dict(), state)
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(VOCAB) + "\n")
    return model, state, vocab


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_imported_model_decodes_like_the_users_own_modules(cell, tmp_path, capsys):
    model, state, vocab = _export(tmp_path, cell)
    out = tmp_path / "imported.safetensors"
    code, text, err = run_main("import", state, "--vocab", vocab, "--out", out, "--rename", "fc.=output.",
                               "--bos", "<sos>", "--max-len", "12", capsys=capsys)
    assert code == 0, err
    assert f"2-layer {cell.upper()}" in text and "separate source and target embeddings" in text
    ckpt = load_checkpoint(out)
    assert ckpt.config.layers == 2 and not ckpt.config.shared_embedding and ckpt.vocab.max_position == 5
    for source, control in (("w1 w2 w3 w4", "w7@2"), ("w9 w9 w0", "w3@5"), ("w5", "w1@1")):
        code, text, err = run_main("decode", out, source, "--control", control, "--json", capsys=capsys)
        assert code == 0, err
        result = json.loads(text)
        word, position = control.split("@")
        ids = [VOCAB.index(t) for t in source.split()] + [VOCAB.index(word), VOCAB.index(f"<pos_{position}>")]
        assert result["source_ids"] == ids
        assert result["output_ids"] == model.greedy(ids, 14)


def test_model_without_position_tokens_runs_on_a_bare_source(tmp_path, capsys):
    model, state, vocab = _export(tmp_path, "gru", layers=1)
    out = tmp_path / "plain.safetensors"
    code, _, err = run_main("import", state, "--vocab", vocab, "--out", out, "--rename", "fc.=output.", "--bos",
                            "<sos>", "--no-positions", capsys=capsys)
    assert code == 0, err
    code, text, _ = run_main("decode", out, "w1 w2 w3", "--json", capsys=capsys)
    assert code == 0 and json.loads(text)["output_ids"] == model.greedy([VOCAB.index(w) for w in ("w1", "w2", "w3")],
                                                                         52)
    code, _, err = run_main("decode", out, "w1 w2", "--control", "w1@2", capsys=capsys)
    assert code == 2 and "no position tokens" in err


def _bad_pickle(tmp_path):
    import pickle

    path = tmp_path / "model.pt"
    path.write_bytes(pickle.dumps({"a": object()}))
    return path


@pytest.mark.parametrize("case,msg", [
    ("pickle", "weights_only"), ("no output", "no output layer"), ("bidirectional", "bidirectional"),
    ("vocab length", "vocabulary has"), ("not seq2seq", "no embedding"), ("attention", "attention"),
    ("no bias", "bias"),
])
def test_bad_imports(case, msg, tmp_path, capsys):
    model, state, vocab = _export(tmp_path, "gru")
    sd = {k: v.clone() for k, v in model.state_dict().items()}
    renames = ["--rename", "fc.=output."]
    if case == "pickle":
        state = _bad_pickle(tmp_path)
    elif case == "no output":
        renames = []
    elif case == "bidirectional":
        sd["encoder.weight_ih_l0_reverse"] = sd["encoder.weight_ih_l0"].clone()
    elif case == "vocab length":
        vocab.write_text("\n".join(VOCAB[:-3]))
    elif case == "not seq2seq":
        sd = {"conv1.weight": torch.zeros(4, 3, 3, 3), "fc.weight": torch.zeros(10, 4)}
    elif case == "attention":
        sd["attn.weight"] = torch.zeros(3, 3)
    elif case == "no bias":
        del sd["decoder.bias_hh_l1"]
    if case not in ("pickle", "vocab length"):
        state = tmp_path / "edited.safetensors"
        save_file(sd, state)
    code, _, err = run_main("import", state, "--vocab", vocab, "--out", tmp_path / "o.safetensors", *renames,
                            "--bos", "<sos>", capsys=capsys)
    assert code == 2 and msg in err and len(err.strip().splitlines()) == 1, err


def test_pt_state_dict_is_read_weights_only(tmp_path, capsys):
    model, _, vocab = _export(tmp_path, "lstm")
    pt = tmp_path / "model.pt"
    torch.save({"state_dict": model.state_dict()}, pt)
    code, text, err = run_main("import", pt, "--vocab", vocab, "--out", tmp_path / "o.safetensors", "--rename",
                               "fc.=output.", "--bos", "<sos>", capsys=capsys)
    assert code == 0, err


def test_json_vocabulary_and_existing_out(tmp_path, capsys):
    _, state, _ = _export(tmp_path, "gru")
    vocab = tmp_path / "vocab.json"
    vocab.write_text(json.dumps(VOCAB))
    out = tmp_path / "o.safetensors"
    args = ["import", state, "--vocab", vocab, "--out", out, "--rename", "fc.=output.", "--bos", "<sos>"]
    assert run_main(*args, capsys=capsys)[0] == 0
    code, _, err = run_main(*args, capsys=capsys)
    assert code == 2 and "--force" in err


def test_decode_json_takes_layer_on_a_two_layer_model(tmp_path, capsys):
    from tui_neuron.model.examples import example_from_text
    from tui_neuron.model.stepper import Stepper

    _, state, vocab = _export(tmp_path, "gru")
    out = tmp_path / "imported.safetensors"
    assert run_main("import", state, "--vocab", vocab, "--out", out, "--rename", "fc.=output.", "--bos", "<sos>",
                    "--max-len", "12", capsys=capsys)[0] == 0
    ckpt = load_checkpoint(out)
    trace = Stepper(ckpt.model, ckpt.vocab).run([example_from_text(ckpt.vocab, "w1 w2 w3 w3@2")])
    for layer in (0, 1):
        code, text, err = run_main("decode", out, "w1 w2 w3", "-c", "w3@2", "--json", "--layer", layer, capsys=capsys)
        assert code == 0, err
        data = json.loads(text)
        step = data["steps"][0]
        assert data["layer"] == layer
        expected = trace.for_layer(layer).h[0, trace.n_enc - 5].tolist()
        assert step["h"] == pytest.approx([round(x, 6) for x in expected], abs=1e-6)
    code, _, err = run_main("decode", out, "w1 w2", "-c", "w3@2", "--json", "--layer", "2", capsys=capsys)
    assert code == 2 and "layers 0..1" in err
