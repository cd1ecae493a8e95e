#!/usr/bin/env bash
# The paper's generality check: the same command as the shipped GRU with --cell lstm (not shipped).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/data}
.venv/bin/tui-neuron train "$DATA/tinyshakespeare.txt" "$DATA/gutenberg" \
  --out runs/lstm-positioning.safetensors \
  --cell lstm --emb 128 --hidden 256 --vocab-size 2000 --max-position 13 --signals 1 \
  --mode spans --min-len 4 --max-len 16 --batch-size 128 --lr 2e-3 --seed 0 \
  --minutes 20 --eval-every 250 --eval-examples 1000 --patience 16 \
  --curriculum-steps 1500 --curriculum-len 6 --threads 1 "$@"
