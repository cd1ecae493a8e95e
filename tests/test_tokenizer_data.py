import numpy as np
import pytest

from tui_neuron.errors import UserError
from tui_neuron.model.examples import ControlSignal, Example, make_example
from tui_neuron.model.tokenizer import BOS_ID, EOS_ID, PAD_ID, Vocab, tokenize
from tui_neuron.training.corpus import Corpus, ExampleSource, SamplingConfig, collate


def test_tokenize_lowercases_and_splits_punctuation():
    assert tokenize("The King's men, ALL of them!") == ["the", "king's", "men", ",", "all", "of", "them", "!"]


def test_vocab_layout_and_frequency_order():
    v = Vocab.build([["b", "a", "b"], ["c", "b", "a"]], size=2, max_position=3)
    assert v.itos[:4] == ["<pad>", "<unk>", "<bos>", "<eos>"]
    assert v.itos[4:7] == ["<pos_1>", "<pos_2>", "<pos_3>"]
    assert v.words == ["b", "a"]
    assert v.encode(["c"]) == [1]
    assert Vocab.from_json(v.to_json()).itos == v.itos


def test_control_appended_without_separator():
    v = Vocab.standard(["the", "king", "is"], max_position=5)
    ex = make_example(v, "the king is", [ControlSignal.parse("king@3")])
    assert v.decode(ex.encoder_ids(v)) == ["the", "king", "is", "king", "<pos_3>"]


@pytest.mark.parametrize("control,msg", [("king@9", "outside 1..5"), ("queen@2", "not in the model's vocabulary"),
                                         ("<pos_1>@1", "not in the model's vocabulary")])
def test_bad_controls(control, msg):
    v = Vocab.standard(["the", "king"], max_position=5)
    with pytest.raises(UserError, match=msg):
        make_example(v, "the king", [ControlSignal.parse(control)])


def test_sampled_examples_put_the_control_token_at_t(tmp_path):
    (tmp_path / "c.txt").write_text("\n".join(f"a b c d e f g h {i % 7}" for i in range(200)))
    corpus = Corpus.load([tmp_path], heldout_fraction=0.1)
    v = Vocab.build(corpus.lines("train"), 50, 6)
    for mode, k in [("spans", 1), ("lines", 1), ("spans", 3)]:
        src = ExampleSource(v, corpus.lines("train"), SamplingConfig(mode, 3, 8, k))
        for ex in src.sample_many(200, seed=1, max_position=6):
            assert len(ex.controls) == k
            for tok, pos in ex.controls:
                assert ex.target_ids[pos - 1] == tok and 1 <= pos <= 6


def test_heldout_is_a_contiguous_tail_not_seen_in_training(tmp_path):
    (tmp_path / "c.txt").write_text("\n".join(f"line {i}" for i in range(100)))
    corpus = Corpus.load([tmp_path / "c.txt"], heldout_fraction=0.1)
    train, held = corpus.lines("train"), corpus.lines("heldout")
    assert held == [["line", str(i)] for i in range(90, 100)]
    assert not set(map(tuple, train)) & set(map(tuple, held))
    (tmp_path / "sub").mkdir()
    record = corpus.heldout_record(relative_to=tmp_path / "sub")
    assert record["files"][0]["path"] == "../c.txt"  # relative to the checkpoint's folder, never absolute
    again = Corpus.from_heldout_record(record, base=tmp_path / "sub")
    assert again.lines("heldout") == held
    by_name = Corpus.from_heldout_record(corpus.heldout_record(), search=[tmp_path])  # no path: found by name
    assert by_name.lines("heldout") == held and "path" not in corpus.heldout_record()["files"][0]


def test_collate_shapes():
    v = Vocab.standard(["a", "b"], 3)
    batch = collate([Example([6, 7], [(6, 1)], [6]), Example([7], [(7, 2)], [6, 7])], v)
    assert batch.src.shape == (2, 4) and batch.src_len.tolist() == [4, 3]
    assert batch.tgt_in[:, 0].tolist() == [BOS_ID, BOS_ID]
    assert batch.tgt_out[0].tolist() == [6, EOS_ID, PAD_ID]
    assert np.array_equal(batch.tgt_out[1].numpy(), [6, 7, EOS_ID])
