#!/usr/bin/env bash
# Trains the shipped GRU on ../shared/data (Tiny Shakespeare + 16 Gutenberg books) with the default recipe.
# Writes runs/gru-positioning.safetensors (copy it into checkpoints/ once `tui-neuron eval` confirms it).
# SEED=1 trains the second seed; THREADS sets torch threads (default 2). Resumable: append --resume.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/data}
SEED=${SEED:-0}
mkdir -p runs
.venv/bin/tui-neuron train "$DATA/tinyshakespeare.txt" "$DATA/gutenberg" \
  --out "${OUT:-runs/gru-positioning-seed$SEED.safetensors}" \
  --cell gru --emb 128 --hidden 256 --vocab-size 2000 --max-position 13 --signals 1 --seed "$SEED" \
  --minutes 60 --threads "${THREADS:-2}" --eval-every 500 --eval-examples 2000 --patience 40 "$@"
