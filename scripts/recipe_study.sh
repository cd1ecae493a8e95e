#!/usr/bin/env bash
# The recipe study (docs/recipe-study.md): which training choices keep the four neuron roles legible.
# Each variant is trained for a fixed step budget (reproducible, unlike a time budget) on the shared corpus and on
# one book alone, scored with `tui-neuron eval`, then measured with `tui-neuron analyze legibility`.
# Usage: bash scripts/recipe_study.sh [OUT_DIR] [VARIANT...]   (default OUT_DIR runs/recipe, all variants)
# A finished step is skipped and an interrupted training resumed, so rerunning continues where it stopped.
# THREADS sets torch threads per training (default 1), DATA the data folder (default ../shared/data),
# CORPORA the corpora to run (default "shared book").
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-runs/recipe}; shift || true
DATA=${DATA:-../shared/data}
TN=${TN:-.venv/bin/tui-neuron}
STEPS=${STEPS:-8000}
mkdir -p "$out"
# name: the recipe options that differ from the paper's (plain cross-entropy, no dropout, no weight decay)
declare -A VARIANTS=(
  [paper]="--dropout 0 --word-dropout 0 --control-weight 1 --weight-decay 0"
  [dropout0.1]="--dropout 0.1 --word-dropout 0 --control-weight 1 --weight-decay 0"
  [dropout0.3]="--dropout 0.3 --word-dropout 0 --control-weight 1 --weight-decay 0"
  [worddrop0.25]="--dropout 0 --word-dropout 0.25 --control-weight 1 --weight-decay 0"
  [worddrop0.5]="--dropout 0 --word-dropout 0.5 --control-weight 1 --weight-decay 0"
  [control2]="--dropout 0 --word-dropout 0 --control-weight 2 --weight-decay 0"
  [control5]="--dropout 0 --word-dropout 0 --control-weight 5 --weight-decay 0"
  [decay0.01]="--dropout 0 --word-dropout 0 --control-weight 1 --weight-decay 0.01"
  [robust]="--dropout 0.3 --word-dropout 0.5 --control-weight 5 --weight-decay 0.01"
)
ORDER=(paper robust worddrop0.5 dropout0.3 control5 worddrop0.25 dropout0.1 control2 decay0.01)
read -r -a CORPORA <<<"${CORPORA:-shared book}"  # CORPORA="book" runs one corpus only
corpus_args() {
  case $1 in
    shared) echo "$DATA/tinyshakespeare.txt $DATA/gutenberg" ;;
    book) echo "$DATA/gutenberg/austen-sense.txt" ;;
  esac
}
[ $# -gt 0 ] && ORDER=("$@")
for variant in "${ORDER[@]}"; do
  for corpus in "${CORPORA[@]}"; do
    name="$variant-$corpus"; ckpt="$out/$name.safetensors"
    if [ ! -f "$out/$name.trained" ]; then
      extra=(); [ -f "$out/$name.resume.safetensors" ] && extra+=(--resume)
      # shellcheck disable=SC2046,SC2086
      "$TN" train $(corpus_args "$corpus") --out "$ckpt" --cell gru --emb 128 --hidden 256 --vocab-words 2000 \
        --max-position 13 --signals 1 --seed 0 --steps "$STEPS" --threads "${THREADS:-1}" --eval-every 500 \
        --eval-examples 2000 --patience 40 ${VARIANTS[$variant]} "${extra[@]}" >>"$out/$name.log" 2>&1
      touch "$out/$name.trained"
    fi
    if [ ! -f "$out/$name.eval.json" ]; then
      "$TN" eval "$ckpt" --json >"$out/$name.eval.json.tmp" && mv "$out/$name.eval.json.tmp" "$out/$name.eval.json"
    fi
    if [ ! -f "$out/$name.legibility.json" ] && "$TN" analyze legibility --help >/dev/null 2>&1; then
      "$TN" analyze legibility "$ckpt" --out "$out/$name.legibility.json" >>"$out/$name.log" 2>&1 || true
    fi
  done
done
