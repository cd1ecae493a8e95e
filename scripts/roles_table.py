"""The README's Table 1 on the default model beside the generalising model, the previous model and the paper.

Usage: python scripts/roles_table.py   (reads docs/results/functions-roles-wd15.json,
functions-roles-cw3.json, functions-roles.json, functions.json, v1-shipped/functions.json)
"""

from __future__ import annotations

import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parent.parent / "docs" / "results"
COLUMNS = [("default (gru-roles-wd15)", "functions-roles-wd15.json"),
           ("gru-roles-cw3", "functions-roles-cw3.json"), ("gru-roles", "functions-roles.json"),
           ("generalising (gru-positioning)", "functions.json"), ("previous model", "v1-shipped/functions.json")]
WITH_CI = (0, 1, 2)  # the columns printed with their 95% intervals
ROWS = {
    "storing: zero at T-1": "10.7",
    "counting: every h[t] <- h[t-1] (token 1 later)": "99.9",
    "counting: every h[t] <- h[t-2] (token 2 later)": "99.9",
    "counting: every h[t] <- h[t-3] (token 3 later)": "99.3",
    "triggering: h[T-1-1] <- h[T-1] (token 1 earlier)": "99.8",
    "triggering: h[T-1-2] <- h[T-1] (token 2 earlier)": "96.4",
    "triggering: h[T-1-3] <- h[T-1] (token 3 earlier)": "91.2",
    "triggering: h[T-1-4] <- h[T-1] (token 4 earlier)": "84.1",
    "outputting: zero at T": "≈ 0",
    "all: random decoder inputs": "98.0",
}


def cell(row: dict | None, with_ci: bool) -> str:
    if row is None:
        return "·"
    s = row["set"]
    text = f"{100 * s['rate']:.1f}"
    if with_ci and "ci95" in s:
        text += f" [{100 * s['ci95'][0]:.1f}, {100 * s['ci95'][1]:.1f}]"
    if row.get("random") and "rate" in row["random"]:
        text += f" ({100 * row['random']['rate']:.1f})"
    return text


def main() -> None:
    docs = [json.loads((RESULTS / f).read_text()) for _, f in COLUMNS]
    print("| manipulation (% of tokens where the paper's effect holds; random sets in parentheses) | "
          + " | ".join(name for name, _ in COLUMNS) + " | paper |")
    print("|---|" + "---:|" * (len(COLUMNS) + 1))
    print("| examples (positioning) | " + " | ".join(f"{d['n_examples']:,} ({100 * d['positioning_accuracy']:.1f}%)"
                                                  for d in docs) + " | |")
    for name, paper in ROWS.items():
        print(f"| {name} | " + " | ".join(cell(d["table"].get(name), i in WITH_CI) for i, d in enumerate(docs))
              + f" | {paper} |")


if __name__ == "__main__":
    main()
