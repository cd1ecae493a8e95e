"""Hardening, round two, as generators: header structure and dtype mutations, metadata bit flips (which the
metadata digest must now catch), every numeric option of every subcommand at its edges, and save-as names.

Each case is a one-line UserError (or exit 2 with one `error:` line), or an accepted value that works; never a
traceback, a hang (5 s a case) or a wrong success.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import typer

from tui_neuron.analysis.session import session_file
from tui_neuron.checkpoint.format import load_checkpoint
from tui_neuron.checkpoint.metadata import DIGESTED, metadata_digest
from tui_neuron.cli.common import app as cli_app
from tui_neuron.errors import UserError

from .helpers import join_safetensors, split_safetensors, tiny_checkpoint

EDGES = ["-1", "0", str(2**70), "1e12", "nan", "inf"]


_split, _join = split_safetensors, join_safetensors


# ----------------------------------------------------------------------------- header structure


def header_mutation(header: dict, rng: random.Random) -> dict:
    """Names, dtypes and structure of the tensor entries, changed where the tensor data is not read."""
    header = json.loads(json.dumps(header))
    names = [k for k in header if k != "__metadata__"]
    name = rng.choice(names)
    kind = rng.choice(["dtype", "name", "long_name", "many", "entry", "root"])
    if kind == "dtype":
        header[name]["dtype"] = rng.choice([["F32"], {"F": 32}, None, 32, "f32", "F32 ", "", "\n", True])
    elif kind == "name":
        header[rng.choice(["name\nwith newline", "\x00", "é" * 3, "decoder.x", " ", "a" * 300])] = header.pop(name)
    elif kind == "long_name":
        header["x" * rng.choice([5000, 100_000])] = {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]}
    elif kind == "many":
        for i in range(rng.choice([10_001, 20_000])):
            header[f"extra.{i}"] = {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]}
    elif kind == "entry":
        header[name] = rng.choice([[], "F32", 5, None, {"dtype": "F32"}])
    else:
        header = {"__metadata__": header["__metadata__"], **{n: header[n] for n in names}, "__metadata__x": 1}
    return header


def test_header_mutations(tmp_path, tally):
    ckpt = tiny_checkpoint(tmp_path / "m.safetensors")
    raw = (tmp_path / "m.safetensors").read_bytes()
    header, data = _split(raw)
    rng = random.Random(26)
    path = tmp_path / "mutant.safetensors"
    for i in range(300):
        path.write_bytes(_join(header_mutation(header, rng), data))
        tally.run(f"header {i}", lambda: load_checkpoint(path), check_accepted=lambda c: c.config == ckpt.config)
    assert tally.counts["clean rejection"] >= 250


def test_a_million_empty_tensors_are_refused_from_the_header(tmp_path):
    """The header is checked (count, names, dtypes) before any tensor is read: 1,000,000 zero-size entries (about
    60 MB of header) are one line, quickly."""
    import time

    tiny_checkpoint(tmp_path / "m.safetensors")
    header, data = _split((tmp_path / "m.safetensors").read_bytes())
    for i in range(1_000_000):
        header[f"extra.{i}"] = {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]}
    path = tmp_path / "million.safetensors"
    path.write_bytes(_join(header, data))
    start = time.monotonic()
    with pytest.raises(UserError, match="more than the 10,000"):
        load_checkpoint(path)
    assert time.monotonic() - start < 5.0


# ----------------------------------------------------------------------------- metadata bit flips


def flip_one_bit(text: str, rng: random.Random) -> str:
    """One bit of one character, kept a valid character (the header stays valid JSON after json.dumps)."""
    i = rng.randrange(len(text))
    code = ord(text[i]) ^ (1 << rng.randrange(7))
    return text[:i] + chr(code) + text[i + 1 :]


def test_metadata_bit_flips_are_caught(tmp_path, tally):
    """Every flip in what decides behaviour (vocabulary, specials, tokenizer, config, held-out record) is refused;
    a flip in the free-form training record is allowed and changes nothing the model does."""
    ckpt = tiny_checkpoint(tmp_path / "m.safetensors")
    raw = (tmp_path / "m.safetensors").read_bytes()
    header, data = _split(raw)
    assert header["__metadata__"]["metadata_sha256"] == metadata_digest(header["__metadata__"])
    rng = random.Random(2026)
    path = tmp_path / "flipped.safetensors"
    for i in range(400):
        h = json.loads(json.dumps(header))
        field = rng.choice([*DIGESTED, "training"])
        h["__metadata__"][field] = flip_one_bit(h["__metadata__"][field], rng)
        path.write_bytes(_join(h, data))

        def accepted(c, field=field) -> bool:
            return field == "training" and c.vocab.itos == ckpt.vocab.itos and c.config == ckpt.config
        tally.run(f"flip {i} in {field}", lambda: load_checkpoint(path), check_accepted=accepted)
    assert tally.counts["clean rejection"] >= 300


def test_consistency_checks_hold_even_with_a_recomputed_digest(tmp_path):
    """A file written elsewhere with a matching digest is still checked: position tokens against max_position."""
    tiny_checkpoint(tmp_path / "m.safetensors")
    header, data = _split((tmp_path / "m.safetensors").read_bytes())
    meta = header["__metadata__"]
    config = json.loads(meta["config"])
    config["max_position"] = 0
    meta["config"] = json.dumps(config)
    meta["metadata_sha256"] = metadata_digest(meta)
    path = tmp_path / "positions.safetensors"
    path.write_bytes(_join(header, data))
    with pytest.raises(UserError, match="position tokens for T = 1..4 but config max_position is 0"):
        load_checkpoint(path)


def test_heldout_start_is_checked_against_the_file(tmp_path):
    from tui_neuron.training.corpus import Corpus, sha256_file

    text = "\n".join(f"w{i} w{i + 1} w{i + 2}" for i in range(40))
    corpus = tmp_path / "c.txt"
    corpus.write_text(text)
    record = Corpus.load([corpus]).heldout_record(tmp_path)
    entry = record["files"][0]
    assert entry["sha256"] == sha256_file(corpus)
    Corpus.from_heldout_record(record, base=tmp_path)  # as recorded: fine
    for start in (0, entry["heldout_start"] - 1, 10**6):
        bad = {"files": [{**entry, "heldout_start": start}]}
        with pytest.raises(UserError, match="held-out"):
            Corpus.from_heldout_record(bad, base=tmp_path)


# ----------------------------------------------------------------------------- numeric options at their edges


class Reached(Exception):
    """The command got past its checks to the work itself (stubbed here, so a valid value costs nothing)."""


WORK = ["tui_neuron.analysis.jobs.run_functions", "tui_neuron.analysis.jobs.run_probe",
        "tui_neuron.analysis.jobs.run_rank", "tui_neuron.analysis.jobs.run_memory", "tui_neuron.analysis.jobs.run_match",
        "tui_neuron.analysis.curves.run_curves", "tui_neuron.analysis.storing.run_storing",
        "tui_neuron.analysis.legibility.run_legibility", "tui_neuron.training.evaluate.evaluate_checkpoint",
        "tui_neuron.training.trainer.Trainer.run", "tui_neuron.analysis.neurox.cross_model_correlation",
        "tui_neuron.analysis.neurox.top_activating", "tui_neuron.analysis.decoding.decode_one",
        "tui_neuron.analysis.jobs.positioning_recording", "textual_serve.server.Server.serve"]


def numeric_options() -> list[tuple[list[str], str]]:
    """(command path, option flag) for every int or float option of every subcommand."""
    root = typer.main.get_command(cli_app)
    out = []

    def walk(cmd, path: list[str]) -> None:  # typer vendors click: its classes are not click's
        if hasattr(cmd, "commands"):
            for name, sub in cmd.commands.items():
                walk(sub, [*path, name])
            return
        for p in cmd.params:
            descriptor = getattr(p, "type_descriptor", None)
            if p.param_type_name == "option" and getattr(descriptor, "annotation", None) in (int, float):
                out.append((path, p.opts[0]))
    walk(root, [])
    return out


def required_args(path: list[str], ckpt: str, corpus: str, tmp: Path) -> list[str]:
    """The least each command needs to reach its work."""
    command = " ".join(path)
    if command == "train":
        return [corpus, "--out", str(tmp / "t.safetensors"), "--force", "--steps", "3"]
    if command == "decode":
        return [ckpt, "w1 w2 w3", "-c", "w2@2"]
    if command == "analyze top-words":
        return [ckpt, "--neuron", "1"]
    if command == "analyze match":
        return [ckpt, "--neurons", "1"]
    if command == "analyze crossmodel":
        return [ckpt, ckpt]
    if command in ("analyze figures", "serve", "import"):
        return []
    return [ckpt]


def test_every_numeric_option_at_its_edges(tmp_path, tally, capsys, monkeypatch):
    from conftest import run_main

    tiny_checkpoint(tmp_path / "m.safetensors")
    ckpt = str(tmp_path / "m.safetensors")
    corpus = tmp_path / "c.txt"
    corpus.write_text("\n".join("w1 w2 w3 w4 w5 w6" for _ in range(50)))

    def reached(*args, **kwargs):
        raise Reached()
    for target in WORK:
        module, _, name = target.rpartition(".")
        try:
            owner = __import__(module, fromlist=["x"])
        except ImportError:  # a class path (Trainer.run, Server.serve)
            mod, _, cls = module.rpartition(".")
            owner = getattr(__import__(mod, fromlist=["x"]), cls)
        if hasattr(owner, name):
            monkeypatch.setattr(owner, name, reached)
    cases = numeric_options()
    assert len(cases) >= 40
    for path, flag in cases:
        for value in EDGES:
            args = [*path, *required_args(path, ckpt, str(corpus), tmp_path), flag, value]

            def once(args=args) -> str:
                try:
                    code, _, err = run_main(*args, capsys=capsys)
                except Reached:
                    capsys.readouterr()  # what it printed before the work: not the next case's
                    return "accepted"
                lines = err.strip().splitlines()
                if code == 2 and len(lines) == 1 and lines[0].startswith("error:"):
                    raise UserError(lines[0])
                if code == 0:
                    return "accepted"
                raise AssertionError(f"exit {code}: {err[-300:]!r}")
            tally.run(f"{' '.join(path)} {flag} {value}", once)
    assert tally.counts["tried"] == len(cases) * len(EDGES)


# ----------------------------------------------------------------------------- save-as names


NAME_PARTS = ["..", ".", "/", "\\", "\x00", "\n", "\t", "a", "king", "é", " ", "-", "~", "$HOME", "%s", "{}", "*",
              "session.json", ".json", "CON", "a" * 150]


def test_save_as_names(tmp_path, tally):
    """A save-as name is a single file name inside the sessions folder, or one line saying why not."""
    folder = tmp_path / "sessions"
    folder.mkdir()
    rng = random.Random(7)
    names = ["../../escaped_session", ".", "..", "x" * 300, "a\x00b", "/etc/passwd", "a/b", "a\\b", "", " ",
             "ok-name", "name.json", ".hidden"]
    names += ["".join(rng.choice(NAME_PARTS) for _ in range(rng.randint(1, 4))) for _ in range(300)]
    for i, name in enumerate(names):
        def once(name=name) -> Path:
            path = session_file(folder, name)
            path.write_text("{}")  # what save_session does, atomically; it must land inside the folder
            return path

        def inside(path: Path) -> bool:
            return path.parent == folder and path.resolve().parent == folder.resolve() and len(path.name) <= 205
        tally.run(f"name {i} {name[:30]!r}", once, check_accepted=inside)
    assert all(p.parent == folder for p in tmp_path.rglob("*") if p.is_file())  # nothing written elsewhere
