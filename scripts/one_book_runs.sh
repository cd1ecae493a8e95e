#!/usr/bin/env bash
# The one-book runs of the training recipe: each book trained alone with the default options for --minutes 20,
# then scored with `tui-neuron eval` (3,000 held-out examples). Usage:
#   bash scripts/one_book_runs.sh OUT_DIR [PARALLEL] [THREADS] BOOK.txt...
# PARALLEL runs at a time (default 1) with THREADS torch threads each (default: all cores); results land in
# OUT_DIR/<book>.safetensors, .log and .eval.json; a finished book is skipped, an interrupted one resumed.
set -euo pipefail
out=$1; parallel=${2:-1}; threads=${3:-0}; shift 3
mkdir -p "$out"
TN=${TN:-tui-neuron}
run_one() {
  book=$1; name=$(basename "$book" .txt); ckpt="$out/$name.safetensors"
  [ -f "$out/$name.eval.json" ] && return 0
  extra=(); [ "$threads" != 0 ] && extra+=(--threads "$threads")
  if [ -f "${ckpt%.safetensors}.resume.safetensors" ]; then extra+=(--resume); fi
  "$TN" train "$book" --out "$ckpt" --minutes 20 "${extra[@]}" >"$out/$name.log" 2>&1 || true
  "$TN" eval "$ckpt" --json >"$out/$name.eval.json.tmp" 2>>"$out/$name.log" && mv "$out/$name.eval.json.tmp" "$out/$name.eval.json"
}
export -f run_one; export out threads TN
printf '%s\n' "$@" | xargs -P "$parallel" -I{} bash -c 'run_one "$@"' _ {}
