"""The recipe study's table (docs/recipe-study.md) from the runs of scripts/recipe_study.sh.

Usage: python scripts/recipe_table.py [RUNS_DIR]   (default runs/recipe; docs/results/recipe-study keeps a copy of
each finished variant's eval and legibility files, so the table reruns from the repository too)

A ⚠ marks a model whose legibility file carries warnings (below 90% positioning, or tokens below it).

One row per trained variant and corpus: held-out positioning (tui-neuron eval, 3,000 examples) and the legibility
measures (tui-neuron analyze legibility), each as the set's rate with its 95% interval and, in parentheses, the
random sets' rate. A variant that has not finished shows what it has.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

COUNTING = [f"counting: every h[t] <- h[t-{k}] (token {k} later)" for k in (1, 2, 3)]
COUNTING_ONCE = [f"counting: h[T-1] <- h[T-1-{k}] (token {k} later)" for k in (1, 2, 3)]
TRIGGERING = [f"triggering: h[T-1-{k}] <- h[T-1] (token {k} earlier)" for k in (1, 2, 3, 4)]


def pct(x: float) -> str:
    return f"{100 * x:.1f}"


def cell(row: dict | None) -> str:
    if not row or not row["set"]["n"]:
        return "·"
    lo, hi = row["set"]["ci95"]
    rand = row.get("random")
    return f"{pct(row['set']['rate'])} [{pct(lo)}, {pct(hi)}]" + (f" ({pct(rand['rate'])})" if rand else "")


def rates(rows: dict, names: list[str]) -> str:
    return " / ".join(pct(rows[n]["set"]["rate"]) if n in rows and rows[n]["set"]["n"] else "·" for n in names)


def main(folder: Path) -> None:
    print("| variant | corpus | held-out positioning | outputting: smallest top-k stopping 95% (random at that k) | "
          "storing: zero at T-1 (random) | counting k=1/2/3, held back every step | counting k=1/2/3, once at T-1 | "
          "triggering k=1..4 | random decoder inputs | n | command |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for ev in sorted(folder.glob("*.eval.json")):
        name = ev.name.removesuffix(".eval.json")
        variant, corpus = name.rsplit("-", 1)
        acc = json.loads(ev.read_text())["report"]["overall"]
        leg_path = folder / f"{name}.legibility.json"
        leg = json.loads(leg_path.read_text()) if leg_path.exists() else None
        cmd = f"`bash scripts/recipe_study.sh runs/recipe {variant}`"
        if leg is None:
            print(f"| {variant} | {corpus} | {pct(acc['accuracy'])} | (legibility not run yet) | | | | | | | {cmd} |")
            continue
        rows = leg["rows"]
        size = leg["outputting_size"]["smallest"]
        flag = " ⚠" if leg.get("warnings") else ""  # the model positions too few examples to vouch for its roles
        out = "none ≤ all of h" if size is None else (
            f"{size['share_of_h']:.0%} of h: {pct(size['set']['rate'])} ({pct(size['random']['mean'])})")
        print(f"| {variant} | {corpus} | {pct(acc['accuracy'])}{flag} | {out} | {cell(rows.get('storing: zero at T-1'))} | "
              f"{rates(rows, COUNTING)} | {rates(rows, COUNTING_ONCE)} | {rates(rows, TRIGGERING)} | "
              f"{cell(rows.get('all: random decoder inputs'))} | {leg['n_examples']} | {cmd} |")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("runs/recipe"))
