"""Reproductions of the hardening defects: each failed before the fix (one line, exit 2; nothing lost)."""

from __future__ import annotations

import json
import os
import stat
import threading

import pytest
import torch
from conftest import run_main, tiny_config, with_data
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from tui_neuron.checkpoint.format import atomic_write_bytes, load_checkpoint, save_checkpoint
from tui_neuron.errors import UserError
from tui_neuron.training.trainer import Trainer, resume_path


def _rewrite(src, dst, meta_edit=None, tensor_edit=None, redigest=True):
    """A copy of a checkpoint with its metadata or tensors edited; `redigest` recomputes the metadata digest, as a
    file written by another tool would carry one (so the field checks behind the digest are what is tested)."""
    from tui_neuron.checkpoint.metadata import metadata_digest

    with safe_open(str(src), "pt") as f:
        meta = dict(f.metadata())
    tensors = load_file(src)
    if meta_edit:
        meta_edit(meta)
        if redigest and "metadata_sha256" in meta:
            meta["metadata_sha256"] = metadata_digest(meta)
    if tensor_edit:
        tensor_edit(tensors)
    save_file(tensors, dst, metadata=meta)
    return dst


def _edit_json(field, fn):
    def edit(meta):
        data = json.loads(meta[field])
        fn(data)
        meta[field] = json.dumps(data)
    return edit


# ----------------------------------------------------------------------------- 1. valid files refused as pickles


def test_header_length_128_mod_256_is_not_a_pickle(tiny_gru, tmp_path):
    """The old check read the header-length prefix as a pickle PROTO byte."""
    path = tmp_path / "h.safetensors"
    for pad in range(300):
        tiny_gru.training = {**tiny_gru.training, "pad": "x" * pad}
        save_checkpoint(tiny_gru, path)
        if path.read_bytes()[0] == 0x80:
            break
    assert path.read_bytes()[0] == 0x80
    assert load_checkpoint(path).vocab.itos == tiny_gru.vocab.itos


def test_real_pickles_are_named(tiny_gru, tmp_path):
    import pickle

    p = tmp_path / "p.safetensors"
    p.write_bytes(pickle.dumps({"a": 1}, protocol=4))
    with pytest.raises(UserError, match="pickle"):
        load_checkpoint(p)


def test_a_results_file_given_as_the_checkpoint_is_named(tmp_path):
    """`analyze table results.json` (the checkpoint comes first) said only that the header length was too long."""
    p = tmp_path / "functions.json"
    p.write_text('\n  {"checkpoint": "m.safetensors", "tokens": {}}')
    with pytest.raises(UserError, match="is a JSON file .*give the checkpoint's .safetensors file"):
        load_checkpoint(p)


def test_a_text_file_given_as_the_checkpoint_is_named(tmp_path):
    """`analyze functions README.md` said the header length was beyond the end of the file."""
    p = tmp_path / "README.md"
    p.write_text("# tui-neuron\n\nA terminal explorer — for neurons.\n" * 20)
    with pytest.raises(UserError, match="is a text file, not a .safetensors checkpoint"):
        load_checkpoint(p)


def test_a_truncated_checkpoint_opening_with_a_brace_byte_is_not_called_json(tmp_path):
    """A header length of 123 opens the file with 0x7b ('{'), but the zero bytes after it say safetensors: a file cut
    short there is truncated, not JSON (writers that pad the header to 8 bytes never start so; others may)."""
    path = tmp_path / "t.safetensors"
    path.write_bytes((123).to_bytes(8, "little") + b'{"w": {"dtype": "F32", "shape"')
    with pytest.raises(UserError, match="truncated or corrupt"):
        load_checkpoint(path)


# ----------------------------------------------------------------------------- 2. metadata crashes and hangs


METADATA_CASES = [
    ("config", lambda m: m.update(config="[" * 100000), "nested"),
    ("training", lambda m: m.update(training='{"a":' * 3000 + "1" + "}" * 3000), "nested"),
    ("max_position 1e9", _edit_json("config", lambda d: d.update(max_position=10**9)), "max_position"),
    ("max_position abc", _edit_json("config", lambda d: d.update(max_position="abc")), "max_position"),
    ("hidden float", _edit_json("config", lambda d: d.update(hidden=256.0)), "hidden"),
    ("hidden null", _edit_json("config", lambda d: d.update(hidden=None)), "hidden"),
    ("vocab_size float", _edit_json("config", lambda d: d.update(vocab_size=float(d["vocab_size"]))), "vocab_size"),
    ("max_len negative", _edit_json("config", lambda d: d.update(max_len=-3)), "max_len"),
    ("max_len huge", _edit_json("config", lambda d: d.update(max_len=10**9)), "max_len"),
    ("max_len string", _edit_json("config", lambda d: d.update(max_len="16")), "max_len"),
    ("max_len 1", _edit_json("config", lambda d: d.update(max_len=1)), "max_len"),
    ("max_len true", _edit_json("config", lambda d: d.update(max_len=True)), "max_len"),
    ("heldout files", _edit_json("heldout", lambda d: d.update(files="abc")), "files"),
    ("vocab word", _edit_json("vocab", lambda d: d["itos"].__setitem__(9, 5)), "itos"),
    ("vocab bomb", _edit_json("vocab", lambda d: d.update(itos=["w"] * 2_000_000)), "itos"),
    ("specials", _edit_json("special_tokens", lambda d: d.update(bos="<nope>")), "<nope>"),
    ("pattern", _edit_json("special_tokens", lambda d: d.update(position_pattern="<pos>")), "position_pattern"),
    ("tokenizer", _edit_json("tokenizer", lambda d: d.update(name="(a+)+$")), "tokenizer"),
]


@pytest.mark.parametrize("name,edit,msg", METADATA_CASES, ids=[c[0] for c in METADATA_CASES])
def test_bad_metadata_is_one_line(name, edit, msg, tiny_gru, tmp_path, capsys):
    path = _rewrite(tiny_gru.path, tmp_path / "bad.safetensors", meta_edit=edit)
    with pytest.raises(UserError, match=msg):
        load_checkpoint(path)
    if name not in ("config", "training"):  # the same edit without a matching digest is caught by the digest
        plain = _rewrite(tiny_gru.path, tmp_path / "plain.safetensors", meta_edit=edit, redigest=False)
        with pytest.raises(UserError, match="metadata_sha256|recorded sha256|nested"):
            load_checkpoint(plain)
    for cmd in (["info", path], ["decode", path, "w1 w2 w3", "--control", "w1@2"]):
        code, _, err = run_main(*cmd, capsys=capsys)
        assert code == 2 and err.startswith("error:") and "Traceback" not in err


# ----------------------------------------------------------------------------- 3. non-regular files


def test_fifo_is_refused_without_hanging(tmp_path):
    fifo = tmp_path / "pipe.safetensors"
    os.mkfifo(fifo)
    result: dict = {}

    def load():
        try:
            load_checkpoint(fifo)
        except UserError as e:
            result["error"] = str(e)

    thread = threading.Thread(target=load, daemon=True)
    thread.start()
    thread.join(5)
    assert "not a regular file" in result.get("error", "hung")


# ----------------------------------------------------------------------------- 4. silent garbage


def test_non_finite_weights_refused(tiny_gru, tmp_path):
    def poison(t):
        t["output.bias"][0] = float("nan")
    path = _rewrite(tiny_gru.path, tmp_path / "nan.safetensors", tensor_edit=poison,
                    meta_edit=lambda m: m.pop("tensors_sha256", None))
    with pytest.raises(UserError, match="NaN or infinite"):
        load_checkpoint(path)


def test_integer_weights_refused(tiny_gru, tmp_path):
    path = _rewrite(tiny_gru.path, tmp_path / "int.safetensors",
                    tensor_edit=lambda t: t.update({"output.bias": t["output.bias"].to(torch.int32)}))
    with pytest.raises(UserError, match="floating point"):
        load_checkpoint(path)


def test_bit_flip_detected_by_digest(tiny_gru, tmp_path):
    path = tmp_path / "flip.safetensors"
    data = bytearray(tiny_gru.path.read_bytes())
    data[-10] ^= 0x04  # inside the last tensor's data
    path.write_bytes(bytes(data))
    with pytest.raises(UserError, match="sha256"):
        load_checkpoint(path)


def test_file_without_digest_loads_with_a_warning(tiny_gru, tmp_path, capsys):
    path = _rewrite(tiny_gru.path, tmp_path / "old.safetensors", meta_edit=lambda m: m.pop("tensors_sha256"))
    assert load_checkpoint(path).warnings
    code, out, err = run_main("info", path, capsys=capsys)
    assert code == 0 and "warning" in err and "tensors_sha256" in err


def test_nan_loss_stops_training(corpus_path, tmp_path):
    trainer = Trainer(*with_data(tiny_config(corpus_path, tmp_path / "n.safetensors", max_steps=20, eval_every=10)))
    with torch.no_grad():
        trainer.model.output.weight.fill_(float("inf"))
    with pytest.raises(UserError, match="loss became nan"):
        trainer.run()


# ----------------------------------------------------------------------------- 5. training arguments


BAD_TRAIN_ARGS = [
    (["--lr", "-1"], "--lr"), (["--lr", "nan"], "--lr"), (["--lr", "inf"], "--lr"), (["--eval-every", "0"], "eval-every"),
    (["--threads", "-1"], "--threads"), (["--steps", "-5"], "--steps"), (["--minutes", "-1"], "--minutes"),
    (["--minutes", "0"], "--minutes"), (["--eval-examples", "0"], "eval-examples"), (["--dropout", "1.5"], "dropout"),
    (["--schedule", "linear"], "schedule"), (["--device", "tpu"], "device"),
]


@pytest.mark.parametrize("args,msg", BAD_TRAIN_ARGS, ids=[" ".join(a) for a, _ in BAD_TRAIN_ARGS])
def test_bad_training_arguments(args, msg, corpus_path, tmp_path, capsys):
    out = tmp_path / "m.safetensors"
    budget = [] if any(a in ("--steps", "--minutes") for a in args) else ["--steps", "5"]
    code, _, err = run_main("train", corpus_path, "--out", out, *budget, *args, capsys=capsys)
    assert code == 2, err
    assert err.startswith("error:") and msg in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists()


@pytest.mark.parametrize("where,msg", [("missing/m.safetensors", "does not exist"), ("", "is a folder")])
def test_out_checked_before_training(where, msg, corpus_path, tmp_path, capsys):
    code, _, err = run_main("train", corpus_path, "--out", tmp_path / where, "--steps", "5", capsys=capsys)
    assert code == 2 and msg in err


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_out_in_read_only_folder(corpus_path, tmp_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(stat.S_IRUSR | stat.S_IXUSR)
    code, _, err = run_main("train", corpus_path, "--out", ro / "m.safetensors", "--steps", "5", capsys=capsys)
    assert code == 2 and "not writable" in err


def test_full_disk_is_one_line_and_keeps_the_earlier_file(tmp_path, monkeypatch):
    path = tmp_path / "keep.bin"
    path.write_bytes(b"earlier")

    def no_space(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.raises(UserError, match="No space left"):
        atomic_write_bytes(path, b"new")
    assert path.read_bytes() == b"earlier"
    assert not list(tmp_path.glob("*.tmp"))


def test_resume_with_another_hidden_size_names_the_option(corpus_path, tmp_path, capsys):
    out = tmp_path / "r.safetensors"
    small = ["--hidden", "16", "--emb", "8", "--vocab-size", "30", "--max-position", "6", "--max-len", "8",
             "--min-len", "3", "--eval-every", "5", "--eval-examples", "20", "--batch-size", "8"]
    assert run_main("train", corpus_path, "--out", out, "--steps", "5", *small, capsys=capsys)[0] == 0
    code, _, err = run_main("train", corpus_path, "--out", out, "--steps", "10", *small, "--hidden", "32",
                            "--resume", capsys=capsys)
    assert code == 2 and "--hidden is 32 here but 16" in err


# ----------------------------------------------------------------------------- 6. overwrite without asking


def test_existing_out_needs_force_or_resume(corpus_path, tmp_path, capsys):
    out = tmp_path / "o.safetensors"
    small = ["--hidden", "16", "--emb", "8", "--vocab-size", "30", "--max-position", "6", "--max-len", "8",
             "--min-len", "3", "--eval-every", "5", "--eval-examples", "20", "--batch-size", "8", "--steps", "5"]
    assert run_main("train", corpus_path, "--out", out, *small, capsys=capsys)[0] == 0
    before = out.read_bytes()
    code, _, err = run_main("train", corpus_path, "--out", out, *small, "--seed", "3", capsys=capsys)
    assert code == 2 and "--force" in err and out.read_bytes() == before
    assert run_main("train", corpus_path, "--out", out, *small, "--seed", "3", "--force", capsys=capsys)[0] == 0
    assert out.read_bytes() != before


# ----------------------------------------------------------------------------- 8. leftovers


def test_stale_temp_files_are_removed_on_resume(corpus_path, tmp_path):
    out = tmp_path / "s.safetensors"
    kw = dict(max_steps=10, eval_every=5, eval_examples=20, hidden=16, emb_dim=8)
    Trainer(*with_data(tiny_config(corpus_path, out, **kw))).run()
    stale = [tmp_path / f".{out.name}.abc123.tmp", tmp_path / f".{resume_path(out).name}.xyz.tmp"]
    for s in stale:
        s.write_bytes(b"half a save")
    Trainer(*with_data(tiny_config(corpus_path, out, **{**kw, "max_steps": 15}))).run(resume=True)
    assert not any(s.exists() for s in stale)


# ----------------------------------------------------------------------------- 9. interventions and results files


@pytest.mark.parametrize("spec,msg", [
    ("zero:all@T+99999999999999999999", "beyond any run"), ("zero:0-999999999@T", "beyond any model"),
    ("zero:all@99", "outside this run"), ("zero:all@T-20", "outside this run"), ("set:3@4", "set needs a value"),
    ("zero:5000@T", "does not exist"),
])
def test_bad_interventions_in_the_cli(spec, msg, tiny_gru, capsys):
    code, _, err = run_main("decode", tiny_gru.path, "w1 w2 w3 w4", "--control", "w2@2", "--intervene", spec,
                            capsys=capsys)
    assert code == 2 and msg in err, err


def _session(tmp_path, **fields):
    path = tmp_path / "session.json"
    path.write_text(json.dumps({"source": "w1 w2 w3", "controls": ["w1@2"], **fields}))
    return path


@pytest.mark.parametrize("fields,msg", [
    ({"source": 5}, "source"), ({"controls": "w1@2"}, "controls"), ({"groups": {"a": ["x"]}}, "groups"),
    ({"interventions": [{"spec": "zero:all@T", "enabled": "no"}]}, "enabled"),
    ({"interventions": [{"spec": "bogus"}]}, "not understood"), ({"version": 99}, "version"),
])
def test_malformed_sessions(fields, msg, tiny_gru, tmp_path, capsys):
    path = _session(tmp_path, **fields)
    code, _, err = run_main("decode", tiny_gru.path, "--session", path, capsys=capsys)
    assert code == 2 and msg in err, err
    code, _, err = run_main("open", tiny_gru.path, "--session", path, capsys=capsys)
    assert code == 2 and msg in err, err


def test_session_given_a_folder(tiny_gru, tmp_path, capsys):
    code, _, err = run_main("decode", tiny_gru.path, "--session", tmp_path, capsys=capsys)
    assert code == 2 and "is a folder" in err


def _functions_results(tmp_path, **changes):
    data = {"n_examples": 4, "positioning_accuracy": 1.0, "tokens": {},
            "table": {"storing: zero at T-1": {"set": {"rate": 0.5, "n": 4}, "random": {"rate": 1.0, "n": 4},
                                               "mean_size": 3}},
            "roles": {"storing": {"w1": [1, 2]}}, "figure2": [{"token": "w1", "pc1": 0.1, "pc2": 0.2}], "figure3": []}
    data.update(changes)
    path = tmp_path / "functions.json"
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize("changes,msg", [
    ({"table": {"x": {"set": {"rate": "high", "n": 4}}}}, "rate"), ({"table": 5}, "table"),
    ({"roles": "abc"}, "roles"), ({"figure2": [{"token": "w1", "pc1": "a"}]}, "figure2"),
    ({"n_examples": "many"}, "n_examples"),
])
def test_malformed_results(changes, msg, tiny_gru, tmp_path, capsys):
    path = _functions_results(tmp_path, **changes)
    for cmd in (["analyze", "table", tiny_gru.path, "--results", path], ["analyze", "figures", "--results", path],
                ["open", tiny_gru.path, "--results", path]):
        code, _, err = run_main(*cmd, capsys=capsys)
        assert code == 2 and msg in err, (cmd, err)


def test_wellformed_results_render(tiny_gru, tmp_path, capsys):
    code, out, _ = run_main("analyze", "table", tiny_gru.path, "--results", _functions_results(tmp_path),
                            capsys=capsys)
    assert code == 0 and "storing: zero at T-1" in out


@pytest.mark.parametrize("args,msg", [
    (["analyze", "probe", "{ckpt}", "--hypothesis", "position", "--sentences", "0"], "--sentences"),
    (["eval", "{ckpt}", "--signals", "0"], "--signals"), (["eval", "{ckpt}", "--examples", "0"], "--examples"),
])
def test_counts_must_be_positive(args, msg, tiny_gru, capsys):
    code, _, err = run_main(*[a.replace("{ckpt}", str(tiny_gru.path)) for a in args], capsys=capsys)
    assert code == 2 and msg in err, err


@pytest.mark.parametrize("edit,fails", [
    (lambda m: m.update(state=json.dumps({**json.loads(m["state"]), "history": "x"})), True),
    (lambda m: m.update(state=json.dumps({**json.loads(m["state"]), "step": "12"})), True),
    (lambda m: m.update(state="[" * 5000), True),
    (lambda m: m.update(vocab=json.dumps({"itos": ["a"]})), True),
    (lambda m: m.update(config="{}"), False),  # names no option that differs; the rest is intact, so it resumes
], ids=["history", "step", "bomb", "vocab", "config"])
def test_damaged_resume_state_is_one_line(edit, fails, corpus_path, tmp_path):
    out = tmp_path / "r.safetensors"
    kw = dict(max_steps=10, eval_every=5, eval_examples=20, hidden=16, emb_dim=8)
    Trainer(*with_data(tiny_config(corpus_path, out, **kw))).run()
    _rewrite(resume_path(out), resume_path(out), meta_edit=edit)
    resumed = Trainer(*with_data(tiny_config(corpus_path, out, **{**kw, "max_steps": 15})))
    if fails:
        with pytest.raises(UserError) as caught:
            resumed.run(resume=True)
        assert "\n" not in str(caught.value)
    else:
        assert resumed.run(resume=True).step == 15


def test_nothing_is_written_into_the_current_directory(tiny_gru, tmp_path, monkeypatch, capsys):
    """Results without --out go to the per-user results folder under a free name; recordings to the cache."""
    from tui_neuron.paths import cache_dir, results_dir

    monkeypatch.chdir(tmp_path)
    args = ["analyze", "functions", tiny_gru.path, "--n-tokens", "3", "--positions", "1-3", "--per-cell", "3"]
    for _ in range(2):
        code, out, err = run_main(*args, capsys=capsys)
        assert code == 0, err
    assert list(tmp_path.iterdir()) == []
    stem = tiny_gru.path.stem
    assert (results_dir() / f"functions-{stem}.json").exists() and (results_dir() / f"functions-{stem}-2.json").exists()
    assert any(cache_dir().glob("recording-*.npz"))
    code, out, err = run_main("analyze", "table", tiny_gru.path, capsys=capsys)  # finds the newest results
    assert code == 0 and "Table 1" in out and f"functions-{stem}-2.json" in err


def test_a_field_name_with_a_newline_is_still_one_line(tiny_gru, tmp_path, capsys):
    """Field names and values from a file are escaped in errors (a fuzz case: an unknown key 'versio\\n')."""
    path = _session(tmp_path, interventions=[{"spec": "zero:all@T", "bad\nkey" + "x" * 500: 1}])
    code, _, err = run_main("decode", tiny_gru.path, "--session", path, capsys=capsys)
    assert code == 2 and "unknown field bad\\nkey" in err and len(err.strip().splitlines()) == 1, err
    assert len(err) < 400


# ----------------------------------------------------------------------------- round two (issue 26)


def _binary() -> str:
    import shutil
    import sys
    from pathlib import Path

    beside = Path(sys.executable).parent / "tui-neuron"
    found = str(beside) if beside.exists() else shutil.which("tui-neuron")
    if found is None:
        pytest.skip("the tui-neuron binary is not installed")
    return found


def test_sigint_half_a_second_after_start_is_one_line_at_most(shipped):
    """Ctrl-C while the CLI is still importing ends it with exit 130 and at most one line, never a traceback (a
    KeyboardInterrupt inside torch's C++ imports used to abort the process, or print 26 lines)."""
    import signal
    import subprocess
    import time

    for command in (["info", str(shipped.path)], ["decode", str(shipped.path), "the king is here", "-c", "king@2"]):
        proc = subprocess.Popen([_binary(), *command], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode in (0, 130), (proc.returncode, err)
        assert "Traceback" not in err and len(err.strip().splitlines()) <= 1, err


def test_a_hypothesis_file_that_exits_is_one_line(tiny_gru, tmp_path, capsys):
    hyp = tmp_path / "h.py"
    hyp.write_text("import sys\nsys.exit(0)\n")
    code, out, err = run_main("analyze", "probe", tiny_gru.path, "--hypothesis", str(hyp), "--sentences", "50",
                              capsys=capsys)
    assert code == 2 and "called sys.exit(0)" in err and str(hyp) in err and len(err.strip().splitlines()) == 1


def test_functions_and_figures_never_replace_a_file_unasked(tiny_gru, results, tmp_path, capsys):
    existing = tmp_path / "f.json"
    existing.write_text("mine")
    code, _, err = run_main("analyze", "functions", tiny_gru.path, "--out", existing, capsys=capsys)
    assert code == 2 and "--force" in err and existing.read_text() == "mine"
    res = tmp_path / "res.json"
    res.write_text(json.dumps(results))
    (tmp_path / "figs").mkdir()
    (tmp_path / "figs" / "figure3.csv").write_text("mine")
    code, _, err = run_main("analyze", "figures", "--results", res, "--out-dir", tmp_path / "figs", capsys=capsys)
    assert code == 2 and "--force" in err and (tmp_path / "figs" / "figure3.csv").read_text() == "mine"
    code, _, _ = run_main("analyze", "figures", "--results", res, "--out-dir", tmp_path / "figs", "--force",
                          capsys=capsys)
    assert code == 0 and (tmp_path / "figs" / "figure3.csv").read_text() != "mine"


def test_errors_come_before_any_progress_bar(tiny_gru, corpus_path, tmp_path, capsys):
    code, _, err = run_main("analyze", "memory", tiny_gru.path, "--state", "c", capsys=capsys)
    assert code == 2 and err.strip().splitlines() == ["error: --state c needs an LSTM checkpoint"]
    code, _, err = run_main("train", tmp_path / "empty.txt", "--out", tmp_path / "m.safetensors", "--steps", "3",
                            capsys=capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1
