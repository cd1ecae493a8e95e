#!/usr/bin/env bash
# Every figure the README quotes for the model `tui-neuron open` opens: held-out positioning, Table 1, the
# legibility row, the dose-response curves, the storing curve and the causal-tracing figures.
# Usage: bash scripts/default_model_figures.sh CHECKPOINT
#   (writes docs/results/; 28.5 minutes beside one training on the 2-core machine)
#   e.g. bash scripts/default_model_figures.sh checkpoints/gru-roles-cw3.safetensors
# Files: STEM.eval.json, STEM.legibility.json, functions-TAG.json, curves-TAG.json(.csv), storing-TAG.json and
# docs/results/patch/, where STEM is the checkpoint's file name and TAG the same without its leading "gru-".
set -euo pipefail
cd "$(dirname "$0")/.."
ck=${1:?usage: bash scripts/default_model_figures.sh CHECKPOINT}
TN=${TN:-.venv/bin/tui-neuron}
PY=${PY:-.venv/bin/python}
out=docs/results
stem=$(basename "$ck" .safetensors)
tag=${stem#gru-}
export COLUMNS=${COLUMNS:-150}
"$TN" eval "$ck" --json > "$out/$stem.eval.json"
"$PY" - "$out/$stem.eval.json" <<'PY'  # the README's figure from the file just written (no second evaluation)
import json, sys
report = json.load(open(sys.argv[1]))["report"]
worst = min(report["per_position"].items(), key=lambda kv: kv[1]["accuracy"])
print(f"positioning {100 * report['overall']['accuracy']:.2f}% of {report['overall']['n']:,}; "
      f"lowest T = {worst[0]}: {100 * worst[1]['accuracy']:.1f}%")
PY
"$TN" analyze functions "$ck" --n-tokens 50 --positions 1-13 --out "$out/functions-$tag.json" --force
"$TN" analyze legibility "$ck" --out "$out/$stem.legibility.json" --force
"$TN" analyze curves "$ck" --out "$out/curves-$tag.json" --force
"$TN" analyze storing "$ck" --out "$out/storing-$tag.json" --force
bash scripts/patch_figures.sh "$ck" "$out/functions-$tag.json"
# the README's tables from the files above
"$PY" scripts/roles_table.py
"$PY" scripts/readme_tables.py curves "$out/curves-$tag.json"
"$PY" scripts/readme_tables.py storing "$out/storing-$tag.json"
