"""≥200 bad argument sets through the real entry point (in-process), and a handful through the installed binary.

Every one must end with exit code 2 and exactly one `error:` line on stderr: never a traceback, never exit 0.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tui_neuron.errors import UserError

from .helpers import tiny_checkpoint

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from conftest import run_main  # noqa: E402

BAD_INTS = ["abc", "-5", "0", "1.5", "", "9" * 30, "nan"]
BAD_CONTROLS = ["w1", "@3", "w1@", "w1@0", "w1@99", "w1@-1", "zz@2", "w1@abc", "<pos_1>@2", "w1@2@3", "@"]
BAD_INTERVENTIONS = ["zero", "zero:@T", "zero:all@", "set:1@T", "keep:a-b@T", "copy:1@T", "zero:all@T+9999999",
                     "zero:0-99999999@T", "zero:9999@T", "zero:all@50", "swap:all@0<", "randin@x", "zero.c:1@T", "x:y@z"]


def _cases(ckpt: Path, tmp: Path, rng: random.Random) -> list[list[str]]:
    text_file = tmp / "not-a-model.safetensors"
    text_file.write_text("hello")
    missing = str(tmp / "missing.safetensors")
    bad_ckpts = [missing, str(tmp), str(text_file)]
    bad_json = tmp / "bad.json"
    bad_json.write_text('{"source": 5}')
    c = str(ckpt)
    cases: list[list[str]] = []
    for _ in range(230):
        kind = rng.choice(["ckpt", "control", "intervene", "int", "option", "train", "results", "session", "missing"])
        if kind == "ckpt":
            cmd = rng.choice([["info"], ["eval"], ["decode", "_", "w1 w2", "-c", "w1@2"], ["open"],
                              ["analyze", "top-words", "_", "--neuron", "1"], ["analyze", "memory"]])
            cmd = [rng.choice(bad_ckpts) if a == "_" else a for a in cmd]
            if "_" not in cmd and cmd[0] in ("info", "eval", "open") or cmd == ["analyze", "memory"]:
                cmd = [*cmd, rng.choice(bad_ckpts)]
            cases.append(cmd)
        elif kind == "control":
            cases.append(["decode", c, "w1 w2 w3", "-c", rng.choice(BAD_CONTROLS)])
        elif kind == "intervene":
            cases.append(["decode", c, "w1 w2 w3 w4", "-c", "w2@2", "-i", rng.choice(BAD_INTERVENTIONS)])
        elif kind == "int":
            cmd, opt = rng.choice([(["eval", c], "--examples"), (["eval", c], "--signals"),
                                   (["analyze", "probe", c, "--hypothesis", "position"], "--sentences"),
                                   (["analyze", "top-words", c], "--neuron"), (["eval", c], "--seed")])
            value = rng.choice(BAD_INTS if opt not in ("--seed", "--neuron") else ["abc", "1.5", "", "9" * 30])
            if opt == "--neuron" and rng.random() < 0.5:
                value = rng.choice(["-1", "99999"])
            cases.append([*cmd, opt, value])
        elif kind == "option":
            cases.append([rng.choice(["info", "eval", "decode", "train"]), "--" + rng.choice(["bogus", "x", "json2"])])
        elif kind == "train":
            bad = rng.choice([["--lr", rng.choice(["-1", "nan", "inf", "0", "x"])], ["--steps", rng.choice(BAD_INTS)],
                              ["--minutes", rng.choice(["-1", "0", "x", "nan"])], ["--cell", "rnn"],
                              ["--mode", "words"], ["--dropout", "2"], ["--max-position", "0"],
                              ["--signals", "99"], ["--hidden", "0"], ["--device", "tpu"], ["--threads", "-2"]])
            budget = [] if bad[0] in ("--steps", "--minutes") else ["--steps", "3"]
            cases.append(["train", rng.choice([str(tmp / "none.txt"), str(text_file)]) if rng.random() < 0.2
                          else str(text_file), "--out", str(tmp / "t" / "m.safetensors") if rng.random() < 0.2
                          else str(tmp / "m.safetensors"), *budget, *bad])
        elif kind == "results":
            cmd = rng.choice([["analyze", "table", c, "--results"], ["analyze", "figures", "--results"],
                              ["open", c, "--results"]])
            cases.append([*cmd, rng.choice([missing, str(bad_json), str(tmp), str(text_file)])])
        elif kind == "session":
            cases.append([rng.choice(["decode", "open"]), c, "--session", rng.choice([missing, str(bad_json), str(tmp)])])
        else:
            cases.append(rng.choice([["decode", c], ["decode", c, "   ", "-c", "w1@2"], ["analyze", "probe", c],
                                     ["analyze", "crossmodel", c], ["train"], ["decode", c, "w1 w2"]]))
    return cases


def test_bad_cli_arguments_in_process(tmp_path, tally, capsys):
    ckpt = tmp_path / "m0.safetensors"
    tiny_checkpoint(ckpt)
    rng = random.Random(99)
    for i, args in enumerate(_cases(ckpt, tmp_path, rng)):
        def once(args=args):
            code, out, err = run_main(*args, capsys=capsys)
            lines = err.strip().splitlines()
            assert code == 2, f"exit {code}: {args} -> {err[-300:]!r} {out[-200:]!r}"
            assert len(lines) == 1 and lines[0].startswith("error:"), f"{args} -> {err[-300:]!r}"
            raise UserError(lines[0])  # what the CLI printed: a clean rejection (an AssertionError is a failure)
        tally.run(f"argv {i} {args[:6]}", once)
    assert tally.counts["tried"] >= 200 and tally.counts["clean rejection"] == tally.counts["tried"]


@pytest.mark.skipif(shutil.which("tui-neuron") is None and not (Path(sys.executable).parent / "tui-neuron").exists(),
                    reason="the tui-neuron binary is not installed")
def test_bad_cli_arguments_through_the_binary(tmp_path):
    binary = shutil.which("tui-neuron") or str(Path(sys.executable).parent / "tui-neuron")
    ckpt = tmp_path / "m.safetensors"
    tiny_checkpoint(ckpt)
    env = {**os.environ, "COLUMNS": "200"}
    for args in (["decode", ckpt, "w1 w2", "-c", "zz@2"], ["info", tmp_path], ["train", ckpt, "--out", tmp_path],
                 ["decode", ckpt, "w1 w2 w3", "-c", "w1@2", "-i", "zero:all@T+99999999999999999999"],
                 ["eval", ckpt, "--signals", "0"], ["nope"]):
        r = subprocess.run([binary, *map(str, args)], capture_output=True, text=True, env=env, timeout=60)
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 2 and len(lines) == 1 and lines[0].startswith("error:"), (args, r.stderr)
