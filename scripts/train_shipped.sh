#!/usr/bin/env bash
# Trains the GRU checkpoint shipped in checkpoints/ on ../shared/data (Tiny Shakespeare + 16 Gutenberg books).
# Resumable: run it again with --resume appended after an interruption.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/data}
.venv/bin/tui-neuron train "$DATA/tinyshakespeare.txt" "$DATA/gutenberg" \
  --out "${OUT:-checkpoints/gru-positioning.safetensors}" \
  --cell gru --emb 128 --hidden 256 --vocab-size 2000 --max-position 13 --signals 1 \
  --mode spans --min-len 4 --max-len 16 --batch-size 128 --lr 2e-3 --seed 0 \
  --minutes 55 --threads 2 --eval-every 250 --eval-examples 2000 --patience 24 \
  --curriculum-steps 1500 --curriculum-len 6 "$@"
