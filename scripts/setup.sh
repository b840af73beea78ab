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
# spandrel (upscale models) needs torchvision, which pins one torch release: take the one made for this torch
# (torch 2.N pairs with torchvision 0.N+15), or pip would upgrade torch (to a multi-GB CUDA build) to satisfy it.
if ! "$PY" -m pip show -q torchvision >/dev/null 2>&1; then
  vision=$("$PY" -c "import torch; minor = int(torch.__version__.split('.')[1]); print(f'0.{minor + 15}.*')")
  "$PY" -m pip install -q "torchvision==$vision"
fi
"$PY" -m pip install -q -e ".[gui,dev]"
# The example plugin is installed like a third-party one (its entry point), so CI tests discovery for real.
"$PY" -m pip install -q -e "$example_plugin"
touch "$stamp"
