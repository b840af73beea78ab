#!/usr/bin/env bash
# The test command: sets up .venv if needed, then runs ruff and the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export QT_QPA_PLATFORM=offscreen HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
.venv/bin/ruff check nodegraph nodes ui tests benchmarks scripts examples
exec .venv/bin/python -m pytest -q "$@"
