"""Bring your own model: each codebase's modules (tests/byom_reference.py), saved the way that codebase saves,
imported with no --rename, and decoded by `decode --json` exactly as the codebase's own greedy loop decodes:
the same tokens; h, c and attention weights within 1e-5."""

from __future__ import annotations

import json

import byom_reference as ref
import pytest
import torch
from conftest import run_main

WORDS = [f"w{i}" for i in range(14)]
TOL = 1e-5


def _scaled(module: torch.nn.Module, seed: int, scale: float = 2.5) -> None:
    """Random weights large enough that greedy outputs vary from step to step."""
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.uniform_(-scale / p.shape[-1] ** 0.5, scale / p.shape[-1] ** 0.5)
    module.eval()


def _vocab_file(path, tokens):
    path.write_text("\n".join(tokens) + "\n")
    return path


def _tutorial(tmp_path, attention: bool):
    src_itos = ["SOS", "EOS", *WORDS[:10]]
    tgt_itos = ["SOS", "EOS", *[w.upper() for w in WORDS]]
    hidden = 16
    encoder = ref.EncoderRNN(len(src_itos), hidden)
    decoder = ref.AttnDecoderRNN(hidden, len(tgt_itos)) if attention else ref.DecoderRNN(hidden, len(tgt_itos))
    _scaled(encoder, 1)
    _scaled(decoder, 2)
    torch.save(encoder.state_dict(), tmp_path / "encoder.pt")
    torch.save(decoder.state_dict(), tmp_path / "decoder.pt")
    args = ["--encoder", tmp_path / "encoder.pt", "--decoder", tmp_path / "decoder.pt",
            "--src-vocab", _vocab_file(tmp_path / "src.txt", src_itos),
            "--tgt-vocab", _vocab_file(tmp_path / "tgt.txt", tgt_itos), "--source-suffix", "EOS"]

    def greedy(words, max_len):
        ids = [src_itos.index(w) for w in words] + [1]  # the tutorial appends EOS to every source
        return ref.tutorial_greedy(encoder, decoder, ids, 0, 1, max_len)

    return args, greedy


def _notebook1(tmp_path):
    src_itos = ["<unk>", "<pad>", "<sos>", "<eos>", *WORDS[:9]]
    tgt_itos = ["<unk>", "<pad>", "<sos>", "<eos>", *WORDS]
    model = ref.Seq2Seq1(ref.Encoder1(len(src_itos), 8, 12, 2, 0.5), ref.Decoder1(len(tgt_itos), 8, 12, 2, 0.5))
    _scaled(model, 8, 4.0)
    torch.save(model.state_dict(), tmp_path / "tut1-model.pt")
    args = [tmp_path / "tut1-model.pt", "--src-vocab", _vocab_file(tmp_path / "src.txt", src_itos),
            "--tgt-vocab", _vocab_file(tmp_path / "tgt.txt", tgt_itos), "--source-prefix", "<sos>",
            "--source-suffix", "<eos>"]

    def greedy(words, max_len):
        ids = [2, *[src_itos.index(w) for w in words], 3]
        return ref.notebook1_greedy(model, ids, 2, 3, max_len)

    return args, greedy


def _notebook2(tmp_path):
    itos = ["<unk>", "<pad>", "<sos>", "<eos>", *WORDS]
    model = ref.Seq2Seq1(ref.Encoder2(len(itos), 8, 12, 0.5), ref.Decoder2(len(itos), 8, 12, 0.5))
    _scaled(model, 4)
    torch.save(model.state_dict(), tmp_path / "tut2-model.pt")
    args = [tmp_path / "tut2-model.pt", "--vocab", _vocab_file(tmp_path / "vocab.txt", itos)]

    def greedy(words, max_len):
        return ref.notebook2_greedy(model, [itos.index(w) for w in words], 2, 3, max_len)

    return args, greedy


def _notebook3(tmp_path):
    src_itos = ["<unk>", "<pad>", "<sos>", "<eos>", *WORDS[:11]]
    tgt_itos = ["<unk>", "<pad>", "<sos>", "<eos>", *WORDS]
    attention = ref.Attention3(6, 12)
    model = ref.Seq2Seq1(ref.Encoder3(len(src_itos), 8, 6, 12, 0.5),
                         ref.Decoder3(len(tgt_itos), 8, 6, 12, 0.5, attention))
    _scaled(model, 5, 4.0)
    torch.save(model.state_dict(), tmp_path / "tut3-model.pt")
    args = [tmp_path / "tut3-model.pt", "--src-vocab", _vocab_file(tmp_path / "src.txt", src_itos),
            "--tgt-vocab", _vocab_file(tmp_path / "tgt.txt", tgt_itos)]

    def greedy(words, max_len):
        return ref.notebook3_greedy(model, [src_itos.index(w) for w in words], 2, 3, max_len)

    greedy.encoder_outputs = lambda words: model.encoder(torch.tensor([src_itos.index(w) for w in words])[:, None])[0][:, 0]
    return args, greedy


def _opennmt(tmp_path, attn_type="general", input_feed=True):
    src_itos = ["<unk>", "<blank>", "<s>", "</s>", *WORDS[:12]]
    tgt_itos = ["<unk>", "<blank>", "<s>", "</s>", *WORDS]
    hidden = 12
    encoder = ref.RNNEncoder("LSTM", input_feed, 2, hidden, ref.Embeddings(8, len(src_itos), 1))  # brnn, or rnn
    decoder_class = ref.InputFeedRNNDecoder if input_feed else ref.StdRNNDecoder
    decoder = decoder_class(2, hidden, ref.Embeddings(8, len(tgt_itos), 1), attn_type)
    model = ref.NMTModel(encoder, decoder)
    generator = torch.nn.Sequential(torch.nn.Linear(hidden, len(tgt_itos)), torch.nn.LogSoftmax(dim=-1))
    _scaled(model, 6)
    _scaled(generator, 7)
    torch.save(ref.opennmt_checkpoint(model, generator, src_itos, tgt_itos), tmp_path / "model_step_1000.pt")
    args = [tmp_path / "model_step_1000.pt"]  # the vocabularies come from the checkpoint itself

    def greedy(words, max_len):
        return ref.opennmt_greedy(model, generator, [src_itos.index(w) for w in words], 2, 3, max_len)

    greedy.encoder_outputs = lambda words: model.encoder(torch.tensor([[src_itos.index(w) for w in words]]))[0][0]
    return args, greedy


SHAPES = {
    "tutorial": lambda p: _tutorial(p, False), "tutorial-attention": lambda p: _tutorial(p, True),
    "notebook1": _notebook1, "notebook2": _notebook2, "notebook3-bahdanau-bidirectional": _notebook3,
    "opennmt-luong-input-feed-brnn": _opennmt,
    "opennmt-dot": lambda p: _opennmt(p, "dot"), "opennmt-mlp": lambda p: _opennmt(p, "mlp"),
    "opennmt-std-rnn-no-feed": lambda p: _opennmt(p, "general", input_feed=False),
}
SOURCES = [["w1", "w2", "w3"], ["w4", "w0", "w5", "w2", "w6"], ["w7"]]


@pytest.mark.parametrize("shape", list(SHAPES))
def test_imported_model_decodes_as_its_own_code(shape, tmp_path, capsys):
    import_args, greedy = SHAPES[shape](tmp_path)
    out = tmp_path / "imported.safetensors"
    code, text, err = run_main("import", *import_args, "--out", out, "--max-len", "8", capsys=capsys)
    assert code == 0, err
    assert "found the" in text
    for words in SOURCES:
        tokens, hs, cs, attn = greedy(words, 10)
        code, text, err = run_main("decode", out, " ".join(words), "--json", capsys=capsys)
        assert code == 0, err
        steps = [s for s in json.loads(text)["steps"] if s["t"] >= 1]
        assert [s["output_id"] for s in steps] == tokens
        for step, h in zip(steps, hs):
            assert torch.tensor(step["h"]) == pytest.approx(h, abs=TOL)
        for step, c in zip(steps, cs or []):
            assert torch.tensor(step["c"]) == pytest.approx(c, abs=TOL)
        for step, weights in zip(steps, attn):
            assert torch.tensor(step["attention"]) == pytest.approx(weights, abs=TOL)
        assert bool(attn) == ("attention" in steps[0])
        if hasattr(greedy, "encoder_outputs"):  # a bidirectional encoder's [forward; backward] at each source token
            with torch.no_grad():
                outputs = greedy.encoder_outputs(words)
            source_steps = [s for s in json.loads(text)["steps"] if s["t"] <= 0]
            assert len(source_steps) == len(words)
            for step, h in zip(source_steps, outputs):
                assert torch.tensor(step["h"]) == pytest.approx(h, abs=TOL)


def test_attention_can_be_forced(tmp_path, capsys):
    import_args, _ = _notebook3(tmp_path)
    out = tmp_path / "imported.safetensors"
    assert run_main("import", *import_args, "--out", out, capsys=capsys)[0] == 0
    code, text, err = run_main("decode", out, "w1 w2 w3 w4", "-i", "attend:2@3", "--json", capsys=capsys)
    assert code == 0, err
    changed = {s["t"]: s for s in json.loads(text)["changed_steps"]}
    assert changed[3]["attention"] == [0.0, 0.0, 1.0, 0.0]
    clean = {s["t"]: s for s in json.loads(text)["steps"]}
    assert clean[2]["h"] == changed[2]["h"] and clean[3]["h"] != changed[3]["h"]
    code, _, err = run_main("decode", out, "w1 w2", "-i", "attend:5@1", capsys=capsys)
    assert code == 2 and "source position 5 does not exist" in err


def test_separate_vocabularies_are_named_when_missing(tmp_path, capsys):
    import_args, _ = _notebook1(tmp_path)
    code, _, err = run_main("import", import_args[0], "--vocab", import_args[2], "--out", tmp_path / "o.safetensors",
                            capsys=capsys)
    assert code == 2 and "--src-vocab and --tgt-vocab" in err and len(err.strip().splitlines()) == 1, err


def _attention_explorer(tmp_path, capsys):
    """The explorer on an imported notebook-3 model (Bahdanau attention, bidirectional encoder)."""
    from tui_neuron.app.explorer import ExplorerApp
    from tui_neuron.checkpoint.format import load_checkpoint

    import_args, _ = _notebook3(tmp_path)
    out = tmp_path / "imported.safetensors"
    assert run_main("import", *import_args, "--out", out, capsys=capsys)[0] == 0
    return ExplorerApp(load_checkpoint(out), session_path=tmp_path / "session.json")


async def _run_source(app, pilot, source: str) -> None:
    from test_app import settle

    await settle(app, pilot)
    app.query_one("#source").value = source
    app.query_one("#source").focus()
    await pilot.press("enter")
    await settle(app, pilot)


async def test_explorer_shows_and_forces_attention(tmp_path, capsys):
    """Open an imported attention model: step, read the attention row, force an attention intervention."""
    from test_app import settle, text_of

    from tui_neuron.app.widgets import AttentionRow, TopK
    from tui_neuron.model.syntax import parse_intervention

    app = _attention_explorer(tmp_path, capsys)
    async with app.run_test(size=(140, 45)) as pilot:
        await _run_source(app, pilot, "w1 w2 w3 w4")
        row = app.query_one(AttentionRow)
        assert row.display and app.query_one("#neurons-pane").has_class("-attends")
        app.step = app.view.clean.index_of(2)
        await pilot.pause()
        shown = text_of(row)
        assert "attention at t=2" in shown and all(w in shown for w in ("w1", "w2", "w3", "w4"))
        weights = app.view.clean.attention[app.step]
        assert f"{max(weights):.2f}" in shown and abs(sum(weights) - 1) < 1e-5
        assert "control" not in text_of(app.query_one(TopK))  # no controls: no control line
        app.add_intervention(parse_intervention("attend:3@2"))
        await settle(app, pilot)
        app.run_view = "changed"
        await pilot.pause()
        assert "w4 1.00" in text_of(row) and "changed run" in text_of(row)
        app.run_view = "difference"
        await pilot.pause()
        assert "changed − original" in text_of(row) and "+" in text_of(row)


def _edited_opennmt(tmp_path, edit):
    _opennmt(tmp_path)
    ckpt = torch.load(tmp_path / "model_step_1000.pt", weights_only=False)
    edit(ckpt["model"])
    torch.save(ckpt, tmp_path / "edited.pt")
    return [tmp_path / "edited.pt"]


def _coverage_attention(model):
    model["decoder.attn.linear_cover.weight"] = torch.zeros(12, 1)


def _wide_encoder(tmp_path):
    """Notebook 3 with its defaults' proportions: each direction as wide as the decoder."""
    attention = ref.Attention3(12, 12)
    model = ref.Seq2Seq1(ref.Encoder3(10, 8, 12, 12, 0.5), ref.Decoder3(10, 8, 12, 12, 0.5, attention))
    torch.save(model.state_dict(), tmp_path / "wide.pt")
    return [tmp_path / "wide.pt", "--vocab", _vocab_file(tmp_path / "v.txt", ["<unk>", "<pad>", "<sos>", "<eos>",
                                                                            *WORDS[:6]])]


@pytest.mark.parametrize("case,cause", [
    ("coverage", "coverage attention is not supported"),
    ("bridge", "--bridge (a linear + relu"),
    ("wide", "needs one width"),
])
def test_unsupported_shapes_are_refused_with_their_cause(case, cause, tmp_path, capsys):
    if case == "coverage":
        args = _edited_opennmt(tmp_path, _coverage_attention)
    elif case == "bridge":
        args = _edited_opennmt(tmp_path, lambda m: m.update({"encoder.bridge.0.weight": torch.zeros(12, 12)}))
    else:
        args = _wide_encoder(tmp_path)
    out = tmp_path / "o.safetensors"
    code, _, err = run_main("import", *args, "--out", out, capsys=capsys)
    assert code == 2 and cause in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists()


async def test_compare_shows_b_attention(tmp_path, capsys):
    """Compare two sources on an attention model: A − B's attention where the lengths agree, then B's own."""
    from test_app import text_of
    from test_app_compare import set_b

    from tui_neuron.app.widgets import AttentionRow

    app = _attention_explorer(tmp_path, capsys)
    async with app.run_test(size=(140, 45)) as pilot:
        await _run_source(app, pilot, "w1 w2 w3 w4")
        await set_b(app, pilot, "w4 w3 w2 w1")
        assert app.compare is not None and app.compare_mode == "A−B"
        app.step = app.view.clean.index_of(2)
        await pilot.pause()
        row = text_of(app.query_one(AttentionRow))
        assert "(A − B)" in row
        while app.compare_mode != "B":
            await pilot.press("w")
        row = text_of(app.query_one(AttentionRow))
        k = app.compare.clean.index_of(2)
        assert "(B)" in row and f"{max(app.compare.clean.attention[k]):.2f}" in row
        assert row.index("w4") < row.index("w1")  # B's source, in B's order


async def test_the_prompt_names_absolute_steps_on_a_model_without_controls(tmp_path, capsys):
    """Without controls there is no T: the prefill and the placeholder name steps as numbers."""
    from tui_neuron.app.screens import PromptScreen

    app = _attention_explorer(tmp_path, capsys)
    async with app.run_test(size=(140, 45)) as pilot:
        await _run_source(app, pilot, "w1 w2 w3 w4")
        app.step = app.view.clean.index_of(2)
        await pilot.press("escape", "i")
        await pilot.pause()
        assert isinstance(app.screen, PromptScreen)
        box = app.screen.query_one("#prompt-input")
        assert box.value.endswith("@2") and "T" not in box.value and box.placeholder == "zero:all@1"


@pytest.mark.parametrize("half", ["encoder.pt", "decoder.pt"])
def test_one_half_alone_is_pointed_at_encoder_and_decoder(half, tmp_path, capsys):
    """The tutorial saves its encoder and decoder apart; importing one of them alone names the two flags."""
    _tutorial(tmp_path, attention=True)
    out = tmp_path / "o.safetensors"
    code, _, err = run_main("import", tmp_path / half, "--out", out, capsys=capsys)
    assert code == 2 and "--encoder E.pt --decoder D.pt" in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists()
