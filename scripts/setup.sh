#!/usr/bin/env bash
# Creates .venv (once) with everything the product, the editor and the tests need.
# Uses a torch that is already importable; otherwise installs the CPU build 2.13.0, so that pip does
# not pull a multi-GB CUDA build on a machine without a GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
PY=.venv/bin/python
stamp=.venv/.nodegraph-setup
example_plugin=examples/plugins/nodegraph-imagetools
if [ -f "$stamp" ] && [ "$stamp" -nt pyproject.toml ] && [ "$stamp" -nt "$example_plugin/pyproject.toml" ]; then
  exit 0
fi
"$PY" -m pip install -q --upgrade pip >/dev/null
if ! "$PY" -c "import torch" 2>/dev/null; then
  "$PY" -m pip install -q "torch==2.13.0"
fi
"$PY" -m pip install -q -e ".[gui,dev,serve,ray]"
# The example plugin is installed like a third-party one (its entry point), so CI tests discovery for real.
"$PY" -m pip install -q -e "$example_plugin"
touch "$stamp"
