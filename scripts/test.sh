#!/usr/bin/env bash
# Installs tui-neuron with its test extras into .venv (CPU torch first) and runs the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check torch==2.13.0
.venv/bin/pip install -q --disable-pip-version-check -e '.[test]'
missing=""
command -v tmux >/dev/null 2>&1 || missing="$missing tmux"
command -v chromium >/dev/null 2>&1 || missing="$missing chromium"  # the browser test of `tui-neuron serve`
if [ -n "$missing" ]; then
  (apt-get update -qq && apt-get install -y -qq $missing) >/dev/null 2>&1 \
    || echo "could not install$missing; the tmux smoke test / the serve browser test will fail"
fi
.venv/bin/ruff check tui_neuron tests scripts
.venv/bin/lint-imports
.venv/bin/mypy
.venv/bin/pytest "$@"
