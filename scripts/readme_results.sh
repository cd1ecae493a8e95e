#!/usr/bin/env bash
# Re-creates every result quoted in the README from the shipped checkpoint (writes docs/results/).
set -euo pipefail
cd "$(dirname "$0")/.."
CK=checkpoints/gru-positioning.safetensors
POS=${POS:-../shared/data/gutenberg_pos}
OUT=docs/results
mkdir -p "$OUT"
export COLUMNS=${COLUMNS:-150}
TN=.venv/bin/tui-neuron
$TN eval $CK --json > $OUT/eval.json
$TN eval $CK
.venv/bin/python scripts/intervention_rates.py $CK
$TN analyze functions $CK --n-tokens 50 --positions 1-13 --out $OUT/functions.json
for h in pos position token steps-remaining is-control; do
  $TN analyze probe $CK --hypothesis $h --tagged "$POS" --out $OUT/probe-$h.json
done
$TN analyze rank $CK --hypothesis pos --tagged "$POS" --out $OUT/rank-pos.json
$TN analyze rank $CK --hypothesis is-control --ablate --out $OUT/rank-is-control.json
$TN analyze memory $CK --part encoder --max-delay 20 --tagged "$POS" --out $OUT/memory-encoder.json
