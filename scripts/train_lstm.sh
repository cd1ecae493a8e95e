#!/usr/bin/env bash
# The LSTM: the same command as the shipped GRU with --cell lstm. Writes runs/lstm-positioning.safetensors.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/data}
mkdir -p runs
.venv/bin/tui-neuron train "$DATA/tinyshakespeare.txt" "$DATA/gutenberg" \
  --out "${OUT:-runs/lstm-positioning.safetensors}" \
  --cell lstm --emb 128 --hidden 256 --vocab-size 2000 --max-position 13 --signals 1 --seed 0 \
  --minutes 60 --threads "${THREADS:-2}" --eval-every 500 --eval-examples 2000 --patience 40 "$@"
