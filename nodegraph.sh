#!/usr/bin/env bash
# Runs the nodegraph command from the project's .venv, creating it first if needed.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bash "$here/scripts/setup.sh"
exec "$here/.venv/bin/nodegraph" "$@"
