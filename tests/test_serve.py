"""`tui-neuron serve` in a real browser: headless Chromium (the Debian package) opens the page, the explorer
renders, and the page's terminal receives the source box and the footer (read from the page's websocket frames
through the Chrome DevTools protocol: the terminal draws on a canvas, so its text is not in the DOM)."""

import asyncio
import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from conftest import SHIPPED

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout: float) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise AssertionError(f"nothing listens on port {port} after {timeout} s")


def stop_all(*procs) -> None:
    """End each started process group (a browser, a server and their children): TERM, then KILL after 10 s."""
    for proc in procs:
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


async def page_terminal_text(debug_port: int, url: str, wanted: list[str], timeout: float) -> tuple[str, bool]:
    """Open `url` in the browser's page; collect what its websockets receive until every `wanted` text came."""
    import aiohttp

    with urllib.request.urlopen(f"http://127.0.0.1:{debug_port}/json/list") as r:
        page = next(t for t in json.load(r) if t["type"] == "page")
    received, started = "", False
    async with aiohttp.ClientSession() as session, session.ws_connect(page["webSocketDebuggerUrl"],
                                                                       max_msg_size=0) as ws:
        ids = iter(range(1, 10_000))

        async def call(method: str, **params) -> int:
            n = next(ids)
            await ws.send_json({"id": n, "method": method, "params": params})
            return n

        await call("Network.enable")
        await call("Page.navigate", url=url)
        end = time.monotonic() + timeout
        while time.monotonic() < end and not all(w in received for w in wanted):
            try:
                msg = await asyncio.wait_for(ws.receive_json(), timeout=1.0)
            except asyncio.TimeoutError:
                continue
            if msg.get("method") == "Network.webSocketFrameReceived":
                frame = msg["params"]["response"]
                data = frame["payloadData"]
                raw = base64.b64decode(data) if frame.get("opcode") == 2 else data.encode()
                received += raw.decode("utf-8", "replace")
        probe = await call("Runtime.evaluate", expression="document.body.classList.contains('-first-byte')")
        while True:
            msg = await asyncio.wait_for(ws.receive_json(), timeout=10)
            if msg.get("id") == probe:
                started = bool(msg["result"]["result"].get("value"))
                break
    return received, started


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (scripts/test.sh installs Debian's package)")
def test_serve_renders_the_explorer_in_headless_chromium(tmp_path):
    port, debug_port = free_port(), free_port()
    env = {**os.environ, "TUI_NEURON_HOME": str(tmp_path / "home")}
    server = subprocess.Popen([sys.executable, "-m", "tui_neuron.cli", "serve", str(SHIPPED), "--port", str(port)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=tmp_path, env=env,
                              start_new_session=True)
    browser = None
    try:
        wait_for_port(port, 60)
        browser = subprocess.Popen([CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu",
                                    f"--remote-debugging-port={debug_port}", f"--user-data-dir={tmp_path / 'chrome'}",
                                    "--window-size=1600,1000", "about:blank"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        wait_for_port(debug_port, 60)
        wanted = ["old man sat by the fire", "Quit", "Help"]  # the source box (its first sentence), footer keys
        text, started = asyncio.run(page_terminal_text(debug_port, f"http://127.0.0.1:{port}", wanted, 120))
        assert started, "the page's terminal never received the app's first bytes"
        missing = [w for w in wanted if w not in text]
        assert not missing, f"the page never showed {missing}"
    finally:
        stop_all(browser, server)
    assert not any((tmp_path).glob("*.json")), "serving wrote into the current folder"


def test_serve_refuses_a_port_in_use_and_warns_off_localhost(capsys):
    from conftest import run_main

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        code, _, stderr = run_main("serve", SHIPPED, "--port", busy.getsockname()[1], capsys=capsys)
    assert code == 2 and "cannot listen" in stderr and len(stderr.strip().splitlines()) == 1
    code, _, stderr = run_main("serve", SHIPPED, "--port", "70000", capsys=capsys)
    assert code == 2


async def _open_visitor(port: int) -> object:
    """A visitor's websocket, as the page opens it: the server starts an explorer process for it."""
    import aiohttp

    session = aiohttp.ClientSession()
    ws = await session.ws_connect(f"http://127.0.0.1:{port}/ws?width=140&height=45")
    return session, ws


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_stopping_serve_by_any_signal_ends_every_explorer_it_started(tmp_path, sig):
    from tui_neuron.cli.children import descendants

    port = free_port()
    env = {**os.environ, "TUI_NEURON_HOME": str(tmp_path / "home")}
    server = subprocess.Popen([sys.executable, "-m", "tui_neuron.cli", "serve", str(SHIPPED), "--port", str(port)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path, env=env,
                              start_new_session=True)
    loop = asyncio.new_event_loop()
    try:
        wait_for_port(port, 60)
        session, ws = loop.run_until_complete(_open_visitor(port))
        deadline = time.monotonic() + 60
        kids: list[int] = []
        while time.monotonic() < deadline and not any("tui_neuron" in _cmdline(k) for k in kids):
            time.sleep(0.2)
            kids = descendants(server.pid)
        assert any("tui_neuron" in _cmdline(k) for k in kids), "no explorer started for the visitor"
        os.kill(server.pid, sig)
        loop.run_until_complete(_read_until_closed(ws, 30))  # a browser answers the server's close
        _, err = server.communicate(timeout=30)
        loop.run_until_complete(session.close())
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
        loop.close()
    time.sleep(0.5)
    survivors = [k for k in kids if os.path.exists(f"/proc/{k}") and _state(k) != "Z"]
    for k in survivors:
        os.kill(k, signal.SIGKILL)
    assert not survivors, f"explorers left running after {sig.name}: {survivors}"
    text = err.decode(errors="replace")
    assert "Traceback" not in text and "Exception ignored" not in text, text


async def _read_until_closed(ws, timeout: float) -> None:
    """Read the visitor's socket, as a browser does, until the server closes it (the client answers its close)."""

    async def drain() -> None:
        async for _ in ws:
            pass

    await asyncio.wait_for(drain(), timeout)


def _cmdline(pid: int) -> str:
    try:
        return open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _state(pid: int) -> str:
    try:
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[-1].split()[0]
    except (OSError, IndexError):
        return "Z"


def test_served_page_fills_the_window_and_fetches_nothing_outside(tmp_path):
    """The page's terminal is fixed to the whole window on the app's background (the stock page left its bottom
    empty, in another colour), and it loads no font from outside this machine."""
    import urllib.request

    port = free_port()
    env = {**os.environ, "TUI_NEURON_HOME": str(tmp_path / "home")}
    server = subprocess.Popen([sys.executable, "-m", "tui_neuron.cli", "serve", str(SHIPPED), "--port", str(port)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path, env=env,
                              start_new_session=True)
    try:
        wait_for_port(port, 60)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/") as r:
            page = r.read().decode()
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.communicate(timeout=30)
    assert "#terminal {\n        position: fixed;\n        inset: 0;" in page
    assert "overflow: hidden" in page and "background: #121212" in page
    assert "fonts.googleapis.com" not in page and 'id="terminal"' in page
