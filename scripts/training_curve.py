"""Print a checkpoint's training curve (from its recorded history) as a markdown table and a plotext plot."""

from __future__ import annotations

import re
import sys

import plotext as plt

from tui_neuron.checkpoint.format import load_checkpoint


def main() -> None:
    ckpt = load_checkpoint(sys.argv[1])
    every = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    hist = ckpt.training.get("history", [])
    print("| step | minutes | held-out loss | held-out positioning | lr |")
    print("|---:|---:|---:|---:|---:|")
    for h in hist:
        if h["step"] % every == 0 or h is hist[-1]:
            print(f"| {h['step']} | {h['seconds'] / 60:.1f} | {h['heldout_loss']:.3f} | "
                  f"{h['heldout_accuracy']:.1%} | {h['lr']:.2g} |")
    plt.plotsize(80, 18)
    plt.theme("clear")
    plt.plot([h["step"] for h in hist], [100 * h["heldout_accuracy"] for h in hist], marker="dot")
    plt.title("held-out positioning accuracy (%) by step")
    plt.ylim(0, 100)
    print("\n```")
    print(re.sub(r"\x1b\[[0-9;]*m", "", plt.build()))
    print("```")


if __name__ == "__main__":
    main()
