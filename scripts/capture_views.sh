#!/usr/bin/env bash
# The README's tmux captures of the compare view and the match screen: the real binary in tmux at 120x40 on the
# shipped checkpoint, keys sent as a user types them. Prints both captures. Writes only under a temporary folder.
#   bash scripts/capture_views.sh
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin/tui-neuron}
WORK=$(mktemp -d)
trap 'tmux kill-session -t tnc-$$ 2>/dev/null || true; rm -rf "$WORK"' EXIT
export TUI_NEURON_HOME="$WORK/home"
cat > "$WORK/session.json" <<'JSON'
{"source": "the king and the queen went to the castle .", "controls": ["king@4"]}
JSON
wait_for() {  # text to wait for on the screen, seconds
  for _ in $(seq 1 $(( $2 * 5 ))); do
    tmux capture-pane -p -t "tnc-$$" | grep -q -- "$1" && return 0
    sleep 0.2
  done
  echo "timed out waiting for: $1" >&2; tmux capture-pane -p -t "tnc-$$" >&2; return 1
}
tmux new-session -d -s "tnc-$$" -x 120 -y 40 "cd $WORK && $PWD/$BIN open $PWD/checkpoints/gru-positioning.safetensors --session session.json"
wait_for "next token" 60
tmux send-keys -t "tnc-$$" Escape
sleep 0.5  # an escape followed at once by a key reads as alt+key in a terminal
tmux send-keys -t "tnc-$$" t c
wait_for "Source B" 10
type_line() {  # into the prompt box: let it take focus, clear it, type, enter
  sleep 0.5; tmux send-keys -t "tnc-$$" C-u; sleep 0.2
  tmux send-keys -t "tnc-$$" "$1"; sleep 0.3; tmux send-keys -t "tnc-$$" Enter
}
type_line "the king and the queen went to the castle . queen@6"
wait_for "B output" 30
sleep 1
echo "== compare view: c, then B = the same sentence with queen@6 (A − B at A's T)"
tmux capture-pane -p -t "tnc-$$"
sleep 5  # the notification fades
tmux send-keys -t "tnc-$$" n
wait_for "Neurons:" 10
type_line 140
sleep 0.5
tmux send-keys -t "tnc-$$" S
wait_for "THRESHOLD" 10
sleep 0.5; tmux send-keys -t "tnc-$$" Enter
wait_for "places where" 120
sleep 0.5
echo "== match view: n 140, S, enter (0.5 window 3)"
tmux capture-pane -p -t "tnc-$$"
