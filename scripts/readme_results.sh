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
LSTM=checkpoints/lstm-positioning.safetensors
SEED1=checkpoints/gru-positioning-seed1.safetensors
# Table 1 (n, 95% CI, ten random draws per cell), Section 5, per-T rows: GRU and LSTM
$TN analyze functions $CK --n-tokens 50 --positions 1-13 --out $OUT/functions.json
$TN analyze functions $LSTM --n-tokens 50 --positions 1-13 --out $OUT/functions-lstm.json
# dose-response curves (the LSTM's also on its cell state) and the storing question
$TN analyze curves $CK --out $OUT/curves.json --force
$TN analyze curves $LSTM --out $OUT/curves-lstm.json --force
$TN analyze curves $LSTM --cell-state --out $OUT/curves-lstm-c.json --force
$TN analyze storing $CK --out $OUT/storing.json --force
$TN analyze storing $LSTM --out $OUT/storing-lstm.json --force
# cross-model correlation of the decoder on the two real seeds, with the role neurons placed
$TN analyze crossmodel $CK $SEED1 --part decoder --results $OUT/functions.json --ablate --out $OUT/crossmodel-decoder.json
$TN analyze crossmodel $CK $SEED1 --ablate --out $OUT/crossmodel-seeds.json
for h in pos position token steps-remaining is-control; do
  $TN analyze probe $CK --hypothesis $h --tagged "$POS" --out $OUT/probe-$h.json
done
$TN analyze rank $CK --hypothesis pos --tagged "$POS" --out $OUT/rank-pos.json
$TN analyze rank $CK --hypothesis pos --tagged "$POS" --l1 1e-3 --stability-seeds 2 --resamples 3 --out $OUT/rank-pos-l1e-3.json
$TN analyze rank $CK --hypothesis is-control --ablate --out $OUT/rank-is-control.json
$TN analyze memory $CK --part encoder --max-delay 20 --tagged "$POS" --out $OUT/memory-encoder.json
# the README's Markdown tables and the curves figure, from the files above
.venv/bin/python scripts/readme_tables.py table1 $OUT/functions.json $OUT/functions-lstm.json
.venv/bin/python scripts/readme_tables.py by-t $OUT/functions.json
.venv/bin/python scripts/readme_tables.py curves $OUT/curves.json $OUT/curves-lstm.json $OUT/curves-lstm-c.json
.venv/bin/python scripts/readme_tables.py storing $OUT/storing.json $OUT/storing-lstm.json
.venv/bin/python scripts/readme_tables.py rank $OUT/rank-pos.json $OUT/rank-pos-l1e-3.json
.venv/bin/python scripts/readme_tables.py crossmodel $OUT/crossmodel-decoder.json $OUT/crossmodel-seeds.json
$TN analyze figures --results $OUT/curves.json --width 100 --no-color
