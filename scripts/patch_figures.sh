#!/usr/bin/env bash
# The patching figures of docs/patching.md and the README, from one model and its functions results.
# Usage: bash scripts/patch_figures.sh MODEL FUNCTIONS_JSON [OUT_DIR]   (default OUT_DIR docs/results/patch)
set -euo pipefail
cd "$(dirname "$0")/.."
TN=${TN:-.venv/bin/tui-neuron}
model=$1; functions=$2; out=${3:-docs/results/patch}
mkdir -p "$out"
one=(--clean "the old man sat by the fire and looked at his son . king@4"
     --corrupt "the old man sat by the fire and looked at his son . king@5")
"$TN" analyze patch "$model" "${one[@]}" --out "$out/one-pair.json" --force > "$out/one-pair.txt"
"$TN" analyze patch "$model" --pairs position --n-pairs 100 --out "$out/position-100.json" --force > "$out/position-100.txt"
"$TN" analyze patch "$model" --pairs token --n-pairs 100 --out "$out/token-100.json" --force > "$out/token-100.txt"
for kind in position token; do
  "$TN" analyze patch "$model" --pairs "$kind" --n-pairs 40 --block 1 --no-encoder --method exact \
    --roles "$functions" --out "$out/$kind-roles.json" --force > "$out/$kind-roles.txt"
done
echo "written to $out"
