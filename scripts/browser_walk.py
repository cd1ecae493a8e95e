"""A walk through `tui-neuron serve` in headless Chromium, with screenshots to look at.

Starts `serve` on a free port, opens the page, waits for the explorer, presses keys (step, select, intervene)
through the Chrome DevTools protocol and saves a screenshot after each stage into OUT (default: a new folder
under the system's temporary folder; nothing is written into the current folder).

Usage: python scripts/browser_walk.py [CHECKPOINT] [--out DIR] [--size 1400x900]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from test_serve import free_port, stop_all, wait_for_port  # noqa: E402

KEYS = {"Escape": 27, "Enter": 13, "ArrowRight": 39, "ArrowLeft": 37, "Home": 36, "Tab": 9}


async def walk(debug_port: int, url: str, out: Path) -> list[Path]:
    import aiohttp

    with urllib.request.urlopen(f"http://127.0.0.1:{debug_port}/json/list") as r:
        page = next(t for t in json.load(r) if t["type"] == "page")
    shots: list[Path] = []
    async with aiohttp.ClientSession() as session, session.ws_connect(page["webSocketDebuggerUrl"],
                                                                       max_msg_size=0) as ws:
        ids = iter(range(1, 100_000))

        async def call(method: str, **params) -> dict:
            n = next(ids)
            await ws.send_json({"id": n, "method": method, "params": params})
            while True:
                msg = await ws.receive_json()
                if msg.get("id") == n:
                    return msg.get("result", {})

        async def key(name: str) -> None:
            code = KEYS.get(name, ord(name.upper()) if len(name) == 1 else 0)
            text = name if len(name) == 1 else ("\r" if name == "Enter" else "")
            await call("Input.dispatchKeyEvent", type="keyDown", key=name, windowsVirtualKeyCode=code, text=text)
            await call("Input.dispatchKeyEvent", type="keyUp", key=name, windowsVirtualKeyCode=code)
            await asyncio.sleep(0.3)

        async def shot(name: str) -> None:
            await asyncio.sleep(2.0)
            data = (await call("Page.captureScreenshot", format="png"))["data"]
            path = out / f"{len(shots) + 1:02d}-{name}.png"
            path.write_bytes(base64.b64decode(data))
            shots.append(path)

        await call("Page.enable")
        await call("Page.navigate", url=url)
        end = time.monotonic() + 120
        while time.monotonic() < end:  # the explorer has drawn once the page's terminal got its first bytes
            ready = await call("Runtime.evaluate", expression="document.body.classList.contains('-first-byte')")
            if ready.get("result", {}).get("value"):
                break
            await asyncio.sleep(1.0)
        await asyncio.sleep(8.0)  # the first decode
        await shot("opened")
        for kind in ("mousePressed", "mouseReleased"):  # focus the terminal (keys go to its text area)
            await call("Input.dispatchMouseEvent", type=kind, x=600, y=300, button="left", clickCount=1)
        for k in ("Escape", "Home", "ArrowRight", "ArrowRight", "t"):
            await key(k)
        await shot("stepped-to-T")
        await key("i")
        await key("Enter")
        await asyncio.sleep(4.0)
        await shot("intervened")
        await key("v")
        await shot("changed-view")
    return shots


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("checkpoint", nargs="?", default=None)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--size", default="1400x900")
    args = ap.parse_args()
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        sys.exit("chromium is not installed (apt-get install chromium)")
    out = args.out or Path(tempfile.mkdtemp(prefix="tui-neuron-browser-walk-"))
    out.mkdir(parents=True, exist_ok=True)
    port, debug_port = free_port(), free_port()
    home = Path(tempfile.mkdtemp(prefix="tui-neuron-walk-home-"))
    serve = [sys.executable, "-m", "tui_neuron.cli", "serve", *([args.checkpoint] if args.checkpoint else []),
             "--port", str(port)]
    server = subprocess.Popen(serve, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=home,
                              env={**os.environ, "TUI_NEURON_HOME": str(home)}, start_new_session=True)
    browser = None
    try:
        wait_for_port(port, 120)
        width, height = args.size.split("x")
        browser = subprocess.Popen([chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                                    "--no-first-run", "--disable-background-networking", "--disable-component-update",
                                    "--disable-sync", f"--remote-debugging-port={debug_port}",
                                    f"--user-data-dir={home / 'chrome'}", f"--window-size={width},{height}",
                                    "about:blank"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        wait_for_port(debug_port, 60)
        for path in asyncio.run(walk(debug_port, f"http://127.0.0.1:{port}", out)):
            print(path)
    finally:
        stop_all(browser, server)


if __name__ == "__main__":
    main()
