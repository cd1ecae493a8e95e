"""Rates of two foundation interventions on held-out examples (numbers quoted in the README).

- copy:all@T-1<T-2: on examples positioned correctly, how often the token then lands at T+1.
- zero:all@T-1: how often the output changes, and the positioning accuracy left.
"""

from __future__ import annotations

import sys
from pathlib import Path

from tui_neuron.checkpoint.format import load_checkpoint
from tui_neuron.model.stepper import decode_examples
from tui_neuron.model.syntax import parse_intervention
from tui_neuron.training.evaluate import heldout_examples, landed

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    path = sys.argv[1] if len(sys.argv) > 1 else str(ROOT / "checkpoints" / "gru-positioning.safetensors")
    ckpt = load_checkpoint(path)
    _, exs = heldout_examples(ckpt, n=3000, seed=11)
    exs = [e for e in exs if e.controls[0][1] >= 2]  # T-2 must exist as a decoding step... or t=0 for T=2
    outs = decode_examples(ckpt.model, ckpt.vocab, exs)
    correct = [(e, o) for e, o in zip(exs, outs) if landed(o, *e.controls[0])]
    ok = [e for e, _ in correct]
    shifted = decode_examples(ckpt.model, ckpt.vocab, ok, [parse_intervention("copy:all@T-1<T-2")])
    delayed = sum(landed(o, e.controls[0][0], e.controls[0][1] + 1) for e, o in zip(ok, shifted))
    zeroed = decode_examples(ckpt.model, ckpt.vocab, ok, [parse_intervention("zero:all@T-1")])
    changed = sum(z != o for z, (_, o) in zip(zeroed, correct))
    still = sum(landed(z, *e.controls[0]) for z, e in zip(zeroed, ok))
    n = len(ok)
    print(f"{path}: {n} correctly positioned held-out examples with T >= 2 (of {len(exs)})")
    print(f"copy:all@T-1<T-2  token delayed to T+1 in {delayed}/{n} = {delayed / n:.1%}")
    print(f"zero:all@T-1      output changed in {changed}/{n} = {changed / n:.1%}; still at T in {still / n:.1%}")


if __name__ == "__main__":
    main()
