"""Print the README's science tables as Markdown from the results files in docs/results/.

Usage: python scripts/readme_tables.py KIND FILE [FILE ...]
KIND: table1 (analyze functions; two files print side by side), by-t (per-T rows of one functions file),
curves, curve-ci (one role's curve with its intervals: FILE ROLE [MAX_NEURONS]), storing, rank, crossmodel.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

PAPER = {"storing: zero at T-1": "10.7%", "outputting: zero at T": "near 0%",
         "outputting: keep only at T": "near 99.9%", "all: random decoder inputs": "98.0% (GRU)"}


def pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def cell(r: dict, unit: str = "%") -> str:
    lo, hi = (f"{100 * x:.1f}{unit}" for x in r["ci95"])
    return f"{100 * r['rate']:.1f}{unit} [{lo}, {hi}]"


def rand(r: dict | None) -> str:
    if not r:
        return "-"
    sp = r["spread"]
    return f"{pct(sp['mean'])} ± {pct(sp['sd'])} ({pct(sp['min'])}–{pct(sp['max'])})"


def table1(paths: list[str]) -> None:
    docs = [json.loads(Path(p).read_text()) for p in paths]
    head = "| manipulation |" + "".join(f" {Path(p).stem}: n | set [95% CI] | random, 10 draws: mean ± sd (range) |"
                                        for p in paths) + " paper |"
    print(head)
    print("|---|" + "---:|---:|---:|" * len(paths) + "---:|")
    for name in docs[0]["table"]:
        row = f"| {name} |"
        for d in docs:
            r = d["table"].get(name)
            row += f" {r['set']['n']} | {cell(r['set'])} | {rand(r['random'])} |" if r else " - | - | - |"
        print(row + f" {PAPER.get(name, '')} |")


def by_t(paths: list[str]) -> None:
    d = json.loads(Path(paths[0]).read_text())
    Ts = sorted({int(T) for r in d["table"].values() for T in r["set"]["by_T"]})
    print("| manipulation | " + " | ".join(f"T={T}" for T in Ts) + " |")
    print("|---|" + "---:|" * len(Ts))
    for name, r in d["table"].items():
        cells = []
        for T in Ts:
            c = r["set"]["by_T"].get(str(T))
            cells.append(f"{100 * c['rate']:.0f}" if c and c["n"] else "·")
        print(f"| {name} | " + " | ".join(cells) + " |")


def curves(paths: list[str]) -> None:
    for p in paths:
        d = json.loads(Path(p).read_text())
        sizes = [pt["neurons"] for pt in next(iter(d["curves"].values()))["points"]]
        print(f"\n{Path(p).stem} ({d['state']}; {len(d['tokens'])} tokens, {d['n_examples']} examples): "
              "% success with the top-k neurons by |IG| / random k-sets (mean of 10 draws)\n")
        print("| manipulation (role) | " + " | ".join(f"k={k}" for k in sizes) + " |")
        print("|---|" + "---:|" * len(sizes))
        for c in d["curves"].values():
            cells = [f"{100 * pt['set']['rate']:.0f} / {100 * pt['random']['mean']:.0f}" for pt in c["points"]]
            print(f"| {c['manipulation']} | " + " | ".join(cells) + " |")


def curve_ci(args: list[str]) -> None:
    """One role's dose-response curve, each size with its 95% interval and its random sets' mean ± sd."""
    d = json.loads(Path(args[0]).read_text())
    curve = d["curves"][args[1]]
    points = [pt for pt in curve["points"] if len(args) < 3 or pt["neurons"] <= int(args[2])]
    print(f"| {curve['manipulation']}: neurons (share of h) | "
          + " | ".join(f"{pt['neurons']} ({pt['percent']:.0f}%)" for pt in points) + " |")
    print("|---|" + "---:|" * len(points))
    print(f"| top by integrated gradients, n = {points[0]['set']['n']:,} | "
          + " | ".join(cell(pt["set"], unit="") for pt in points) + " |")
    print(f"| random sets, mean ± sd of {points[0]['random']['draws']} | "
          + " | ".join(f"{100 * pt['random']['mean']:.1f} ± {100 * pt['random']['sd']:.1f}" for pt in points) + " |")


def storing(paths: list[str]) -> None:
    for p in paths:
        d = json.loads(Path(p).read_text())
        print(f"\n{Path(p).stem}: {len(d['tokens'])} tokens, {d['n_examples']} examples\n")
        for states, r in d["states"].items():
            ks = [g["neurons"] for g in r["growth"]]
            print(f"| zero at T-1 ({states}), % still at T | " + " | ".join(f"k={k}" for k in ks) + " |")
            print("|---|" + "---:|" * len(ks))
            for name in ("IG at T-1", "IG over t in [-1, T-1]"):
                print(f"| {name} | " + " | ".join(f"{100 * g[name]['rate']:.0f}" for g in r["growth"]) + " |")
            print("| random (mean of 10) | " + " | ".join(f"{100 * g['random']['mean']:.0f}" for g in r["growth"]) + " |")
            red = r["redundancy"]
            print(f"\nredundancy, k = {red['k']} (random 2k: {pct(red['random 2k']['mean'])} ± "
                  f"{pct(red['random 2k']['sd'])}):\n")
            print("| order | A: ranks 1..k | B: ranks k+1..2k | A and B |")
            print("|---|---:|---:|---:|")
            for name in ("IG at T-1", "IG over t in [-1, T-1]"):
                sets = red[name]
                print(f"| {name} | {pct(sets['A: ranks 1..k']['rate'])} | {pct(sets['B: ranks k+1..2k']['rate'])} | "
                      f"{pct(sets['A and B together']['rate'])} |")
            print()
        for line in d["conclusion"]:
            print(f"- {line}")


def rank(paths: list[str]) -> None:
    for p in paths:
        d = json.loads(Path(p).read_text())
        st = d["stability"]
        print(f"{Path(p).stem}: accuracy {d['accuracy']:.3f}, objective {d['objective']}, converged {d['converged']} "
              f"({d['iterations']} iterations); top-10% Jaccard: starts {st['seeds']['top10%']['min']:.2f} (min of "
              f"{st['n_seeds']}), 80% resamples mean {st['resamples']['top10%']['mean']:.2f} / min "
              f"{st['resamples']['top10%']['min']:.2f}; top-20%: resamples mean {st['resamples']['top20%']['mean']:.2f}; "
              f"top 10: {d['ranking'][:10]}")


def crossmodel(paths: list[str]) -> None:
    for p in paths:
        d = json.loads(Path(p).read_text())
        for i, m in enumerate(d["models"]):
            print(f"model {i}: {pct(m['share_at_least_0.8'])} of neurons at max |r| >= 0.8")
        for role, r in (d.get("roles") or {}).items():
            print(f"| {role} | {r['neurons']} | {r['mean_score']:.2f} | {r['others_mean']:.2f} | "
                  f"{100 * r['share_in_top_20%']:.0f}% |")
        if "ablation" in d:
            a = d["ablation"]
            for i, row in enumerate(a["ranking"]):
                r = a["random"][i]
                sd = r.get("spread", {}).get("sd", 0.0)
                print(f"| {row['percent']} | {pct(row['accuracy'])} | {pct(a['reverse'][i]['accuracy'])} | "
                      f"{pct(r['accuracy'])} ± {pct(sd)} |")


if __name__ == "__main__":
    kinds = {"table1": table1, "by-t": by_t, "curves": curves, "curve-ci": curve_ci, "storing": storing, "rank": rank,
             "crossmodel": crossmodel}
    if len(sys.argv) < 3 or sys.argv[1] not in kinds:
        sys.exit(__doc__)
    kinds[sys.argv[1]](sys.argv[2:])
