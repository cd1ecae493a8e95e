"""Explorer benchmarks, each against a baseline in the same run.

1. Key latency: from a key (Pilot) to the frame that shows it, median and p95, on the shipped checkpoint at
   120x40: 200 steps (target: median <= 16 ms, p95 <= 33 ms); cycling the changed view with `v` (an
   intervention applied) and switching A / B / A − B with `w` (a second source set), 60 presses each
   (target: p95 <= 33 ms).
2. Launch: from process start to the first frame with the decode shown, vs from process start to the end of
   `import torch, textual` in a bare process (target <= 1.3x); each child prints the moment it gets there, so
   neither side counts its exit (the app's shutdown is not part of its launch). Both sides run with Python's
   compiled bytecode, as on a user's machine: torch's and textual's were compiled when pip installed them, and
   the children may write tui_neuron's (to its gitignored __pycache__) even where PYTHONDONTWRITEBYTECODE is set
   in this environment, which would otherwise recompile the project's sources at every launch. One launch of
   each side is made and dropped first, so both start with their bytecode written and files in the OS cache.
   The ratio is of the fastest launch of each side, as timeit reports its minimum: interference from other
   processes only adds time, and on a shared 2-core machine it adds a lot (a launch here takes either ~1.2 s
   or ~1.9 s for the same bare import); the ratio of the medians is printed beside it.

Usage: python scripts/bench_explorer.py [CHECKPOINT] [--steps 200] [--launches 9] [--launch-only]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = ROOT / "checkpoints" / "gru-positioning.safetensors"

FIRST_FRAME = """
import sys, time, asyncio
from tui_neuron.checkpoint.format import load_checkpoint
from tui_neuron.app.explorer import ExplorerApp
app = ExplorerApp(load_checkpoint(sys.argv[1]))
shown = asyncio.Event()
orig = app._display
def display(screen, renderable):
    orig(screen, renderable)
    if app.view is not None and not shown.is_set():
        print(time.time(), flush=True)  # the moment the first frame with the decode is shown
        shown.set()
app._display = display
async def main():
    async with app.run_test(size=(120, 40)) as pilot:
        while not shown.is_set():
            await asyncio.sleep(0.001)
asyncio.run(main())
"""

BARE = "import time, torch, textual; print(time.time(), flush=True)"


async def key_latency(checkpoint: str, presses: int, mode: str) -> list[float]:
    """Milliseconds from each key to the next frame. mode: step (left/right), view (v) or compare (w)."""
    from tui_neuron.analysis.decoding import decode_one
    from tui_neuron.analysis.session import Session
    from tui_neuron.app.explorer import ExplorerApp
    from tui_neuron.app.viewmodel import build_view
    from tui_neuron.checkpoint.format import load_checkpoint

    ckpt = load_checkpoint(checkpoint)
    source, controls = "the king and the queen went to the castle .", ["king@4"]
    ivs = [{"spec": "zero:0-99@T-1", "enabled": True}] if mode == "view" else []
    app = ExplorerApp(ckpt, session=Session(source, controls, interventions=ivs))
    frames: list[float] = []
    orig = app._display

    def display(screen, renderable):
        frames.append(time.perf_counter())
        return orig(screen, renderable)

    app._display = display
    out = []
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.press("escape", "t")  # the source box has the keys at launch: hand them to the view
        if mode == "compare":
            b = decode_one(ckpt, source, ["queen@6"], [])
            app.compare = build_view(b, ckpt.config.hidden, ckpt.config.gate_names)
        await pilot.pause(0.2)
        n_steps = len(app.view.clean.times)
        direction = "right"
        for _ in range(presses):
            key = {"view": "v", "compare": "w"}.get(mode, direction)
            if mode == "step":
                if app.step == n_steps - 1:
                    direction = "left"
                elif app.step == 0:
                    direction = "right"
                key = direction
            n0 = len(frames)
            t0 = time.perf_counter()
            await pilot.press(key)
            while len(frames) == n0:
                await asyncio.sleep(0.0002)
            out.append((frames[n0] - t0) * 1000)
            await pilot.pause(0.01)
    return out


def report(name: str, lat: list[float], target: str) -> None:
    lat = sorted(lat)
    med, p95 = statistics.median(lat), lat[int(0.95 * (len(lat) - 1))]
    print(f"{name:<14}  median {med:6.1f} ms   p95 {p95:6.1f} ms   over {len(lat)} presses ({target})")


def launch_to(args: list[str]) -> float:
    """Seconds from starting the process to the moment it prints (its exit, and the app's shutdown, not counted)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    t0 = time.time()
    out = subprocess.run(args, check=True, capture_output=True, text=True, env=env).stdout.split()
    return float(out[0]) - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("checkpoint", nargs="?", default=str(DEFAULT))
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--launches", type=int, default=9)
    ap.add_argument("--launch-only", action="store_true", help="time the launch only, not the keys")
    args = ap.parse_args()
    if not args.launch_only:
        keys(args)
    launch(args)


def keys(args: argparse.Namespace) -> None:
    report("step -> frame", asyncio.run(key_latency(args.checkpoint, args.steps, "step")),
           "target median <= 16 ms, p95 <= 33 ms")
    report("v (changed)", asyncio.run(key_latency(args.checkpoint, 60, "view")), "target p95 <= 33 ms")
    report("w (A/B)", asyncio.run(key_latency(args.checkpoint, 60, "compare")), "target p95 <= 33 ms")


def launch(args: argparse.Namespace) -> None:
    bare, ours = [], []
    launch_to([sys.executable, "-c", BARE])  # dropped: bytecode written, files cached
    launch_to([sys.executable, "-c", FIRST_FRAME, args.checkpoint])
    for _ in range(args.launches):  # interleaved, so load hits both alike
        bare.append(launch_to([sys.executable, "-c", BARE]))
        ours.append(launch_to([sys.executable, "-c", FIRST_FRAME, args.checkpoint]))
    b, o = min(bare), min(ours)
    mb, mo = statistics.median(bare), statistics.median(ours)
    print(f"launch          first frame {o:5.2f} s   bare 'import torch, textual' {b:5.2f} s   ratio {o / b:.2f}x "
          f"(fastest of {args.launches} each; target <= 1.3x)\n"
          f"                medians {mo:5.2f} s / {mb:5.2f} s = {mo / mb:.2f}x (each launch here "
          f"{min(ours + bare):.2f}..{max(ours + bare):.2f} s)")


if __name__ == "__main__":
    main()
