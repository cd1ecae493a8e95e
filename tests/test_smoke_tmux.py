"""Drive the real installed `tui-neuron open` in tmux: it renders, steps, shows help, quits cleanly."""

import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

BIN = Path(sys.executable).with_name("tui-neuron")


def tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], capture_output=True, text=True, timeout=30).stdout


def wait_for(session: str, needle: str, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    screen = ""
    while time.monotonic() < deadline:
        screen = tmux("capture-pane", "-t", session, "-p")
        if needle in screen:
            return screen
        time.sleep(0.2)
    raise AssertionError(f"{needle!r} never appeared; screen was:\n{screen}")


def launch(tmp_path: Path, args: str, term: str = "") -> tuple[str, Path]:
    """Start `tui-neuron open ARGS` in a detached 120x40 tmux session; its exit code lands in the status file."""
    assert BIN.exists(), f"{BIN} is not installed; pip install -e . first"
    session = f"tn-{uuid.uuid4().hex[:8]}"
    status = tmp_path / "status"
    cmd = f"cd {tmp_path} && {term} {BIN} open {args}; echo $? > {status}"
    env = {**os.environ, "TERM": "xterm-256color"}
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "120", "-y", "40", cmd], check=True, env=env)
    return session, status


def replace_prompt_text(session: str, text: str) -> None:
    """Clear the open prompt's box and type `text`, until the box shows it: on a busy machine keys sent while the
    prompt is still being set up can be lost, so the typing is repeated (at most three times)."""
    for _ in range(3):
        tmux("send-keys", "-t", session, "End")
        tmux("send-keys", "-t", session, "C-u")
        tmux("send-keys", "-t", session, "-l", text)
        try:
            wait_for(session, f"▊  {text} ", timeout=10)
            return
        except AssertionError:
            continue
    wait_for(session, f"▊  {text} ", timeout=1)


def assert_quit(status: Path) -> None:
    """The explorer ended, with exit code 0 (written by the launch command into `status`)."""
    deadline = time.monotonic() + 30
    while not status.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert status.exists(), "the explorer did not quit"
    assert status.read_text().strip() == "0"


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed (scripts/test.sh installs it)")
@pytest.mark.parametrize("term", ["TERM=xterm-256color", "TERM=xterm NO_COLOR=1"], ids=["256-colour", "plain"])
def test_open_in_tmux(tmp_path, term):
    session, status = launch(tmp_path, "", term)
    try:
        wait_for(session, "ready")
        wait_for(session, "esc Keys")  # the source box has the keys at launch; the footer says how to leave it
        tmux("send-keys", "-t", session, "Escape")
        screen = wait_for(session, "Forward")  # the footer
        assert "output" in screen  # the timeline
        assert any(g in screen for g in "▂▃▄▅▆▇█")  # the neuron strips' height glyphs, colour or not
        tmux("send-keys", "-t", session, "Home")
        screen = wait_for(session, "encoding step")
        tmux("send-keys", "-t", session, "Right", "Right", "t")
        screen = wait_for(session, "next token at t=")
        tmux("send-keys", "-t", session, "?")
        wait_for(session, "tui-neuron keys")
        tmux("send-keys", "-t", session, "Escape")
        time.sleep(0.5)
        tmux("send-keys", "-t", session, "q")
        wait_for(session, "unsaved changes")  # the step moved: that is saved too, so q asks
        tmux("send-keys", "-t", session, "d")
        deadline = time.monotonic() + 30
        while not status.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert status.exists(), "the explorer did not quit on q"
        assert status.read_text().strip() == "0"
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
    leftover = subprocess.run(["pgrep", "-f", f"{BIN} open"], capture_output=True, text=True).stdout.strip()
    assert leftover == "", f"processes left behind: {leftover}"


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed (scripts/test.sh installs it)")
def test_open_imported_two_layer_model_in_tmux(tmp_path, capsys):
    """Bring your own model: import a 2-layer GRU, open it, step, switch layer, intervene on layer 0, quit."""
    from conftest import run_main
    from test_import import _export

    _, state, vocab = _export(tmp_path, "gru")
    model = tmp_path / "imported.safetensors"
    code, _, err = run_main("import", state, "--vocab", vocab, "--out", model, "--rename", "fc.=output.", "--bos",
                            "<sos>", capsys=capsys)
    assert code == 0, err
    session, status = launch(tmp_path, str(model))
    try:
        wait_for(session, "ready")
        wait_for(session, "layer 1 (0..1)")
        tmux("send-keys", "-t", session, "Escape")
        time.sleep(0.3)
        tmux("send-keys", "-t", session, "Right", "Left", "l")
        wait_for(session, "layer 0 (0..1)")
        tmux("send-keys", "-t", session, "i")
        wait_for(session, "/l0")
        tmux("send-keys", "-t", session, "Enter")
        screen = wait_for(session, "changed ")
        assert "1. zero:" in screen and "/l0" in screen
        tmux("send-keys", "-t", session, "q")
        wait_for(session, "unsaved changes")  # an intervention was added: q asks first
        tmux("send-keys", "-t", session, "d")
        assert_quit(status)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed (scripts/test.sh installs it)")
def test_open_imported_attention_model_in_tmux(tmp_path, capsys):
    """An imported Bahdanau model (bidirectional encoder, two vocabularies): type a source, step to a decoding
    step, read the attention row, force the attention onto one source token, see the changed run, quit."""
    from conftest import run_main
    from test_byom_layouts import _notebook3

    import_args, _ = _notebook3(tmp_path)
    model = tmp_path / "imported.safetensors"
    code, _, err = run_main("import", *import_args, "--out", model, capsys=capsys)
    assert code == 0, err
    session, status = launch(tmp_path, str(model))
    try:
        wait_for(session, "ready")
        tmux("send-keys", "-t", session, "-l", "w1 w2 w3 w4")
        tmux("send-keys", "-t", session, "Enter")
        time.sleep(1.0)
        tmux("send-keys", "-t", session, "Escape")
        time.sleep(0.3)
        tmux("send-keys", "-t", session, "Home")
        wait_for(session, "no attention yet")
        tmux("send-keys", "-t", session, "Right", "Right", "Right", "Right")
        wait_for(session, "attention at t=1")
        tmux("send-keys", "-t", session, "i")
        wait_for(session, "Intervention (")  # the prompt
        replace_prompt_text(session, "attend:2@1")
        tmux("send-keys", "-t", session, "Enter")
        wait_for(session, "1. attend:2@1")
        wait_for(session, " changed      ")  # the timeline's changed row: the changed run is there
        tmux("send-keys", "-t", session, "v")
        screen = wait_for(session, "(changed run)")
        assert "w3 1.00" in screen
        tmux("send-keys", "-t", session, "q")
        wait_for(session, "unsaved changes")
        tmux("send-keys", "-t", session, "d")
        assert_quit(status)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
