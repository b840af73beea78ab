#!/usr/bin/env bash
# Creates .venv (once) with everything the product, the editor and the tests need; quiet when it is up to date.
#
# Python: $PYTHON if set, else the first of python3, python3.13, python3.12, python3.11 that is 3.11 or newer.
# A .venv made by an older (or a missing) Python is recreated, not reused.
#
# torch, the one multi-GB dependency, is chosen by hardware unless NODEGRAPH_TORCH says otherwise:
#   - a torch already in .venv is kept (a CUDA build you installed stays);
#   - a system-wide torch (2.1 or newer) seen by that Python is used: the venv sees the system's packages;
#   - an NVIDIA GPU (nvidia-smi, or the driver in /proc): PyPI's default build of torch 2.13.0 (CUDA on Linux);
#   - otherwise the CPU build 2.13.0 from PyTorch's CPU wheel index; where that index cannot be reached, the
#     pinned version from the usual index (a CPU wheel where one is on disk, as on the project's CI machines).
# NODEGRAPH_TORCH=cpu | cuda | none overrides the choice (none: install no torch; bring your own), and
# NODEGRAPH_TORCH_INDEX=URL takes torch from that index (e.g. https://download.pytorch.org/whl/cu126).
# NODEGRAPH_SETUP_DRY_RUN=1 prints what would be done and changes nothing.
#
# Progress goes to stderr, one line per phase, so that `./nodegraph.sh run ... --events json` keeps stdout clean.
set -euo pipefail
cd "$(dirname "$0")/.."

TORCH_VERSION=2.13.0
CPU_INDEX=https://download.pytorch.org/whl/cpu
MIN_MINOR=11 # Python 3.11 or newer
stamp=.venv/.nodegraph-setup
example_plugin=examples/plugins/nodegraph-imagetools
dry_run=${NODEGRAPH_SETUP_DRY_RUN:-}

say() { echo "setup: $*" >&2; }
fail() { echo "setup: error: $*" >&2; exit 1; }

# "3 11" for a Python 3.11 interpreter; nothing when it does not run
py_version() { "$1" -c 'import sys; print(sys.version_info[0], sys.version_info[1])' 2>/dev/null || true; }
good_python() {
  local v
  v=$(py_version "$1")
  [ -n "$v" ] && [ "${v% *}" -eq 3 ] && [ "${v#* }" -ge "$MIN_MINOR" ]
}

if [ -f "$stamp" ] && [ "$stamp" -nt pyproject.toml ] && [ "$stamp" -nt "$example_plugin/pyproject.toml" ] \
  && good_python .venv/bin/python && [ -z "$dry_run" ]; then
  exit 0 # up to date
fi

# -- 1. Python -------------------------------------------------------------------------------------------
if [ -n "${PYTHON:-}" ]; then
  command -v "$PYTHON" >/dev/null || fail "PYTHON=$PYTHON is not a command"
  good_python "$PYTHON" || fail "PYTHON=$PYTHON is Python $(py_version "$PYTHON" | tr ' ' .); nodegraph needs 3.$MIN_MINOR or newer"
  python=$PYTHON
else
  python=
  tried=
  for candidate in python3 python3.13 python3.12 python3.11; do
    command -v "$candidate" >/dev/null || continue
    if good_python "$candidate"; then python=$candidate; break; fi
    tried="$tried $candidate ($(py_version "$candidate" | tr ' ' .))"
  done
  [ -n "$python" ] || fail "nodegraph needs Python 3.$MIN_MINOR or newer; found:${tried:- no python3 at all}. Install one (e.g. 'apt install python3.11 python3.11-venv') and run again, or set PYTHON=/path/to/python3.11"
fi
say "1/5 Python: $(command -v "$python") ($("$python" --version 2>&1))"

# -- 2. the virtual environment --------------------------------------------------------------------------
if [ -e .venv ] && ! good_python .venv/bin/python; then
  found=$(py_version .venv/bin/python | tr ' ' .)
  if [ -n "$found" ]; then maker="Python $found"; else maker="a Python that no longer runs"; fi
  say "2/5 .venv was made by $maker: recreating it"
  [ -n "$dry_run" ] || rm -rf .venv
fi
system_torch=
if [ ! -x .venv/bin/python ] || [ -n "$dry_run" ]; then
  # a system-wide torch is kept: the venv then sees the system's packages (torch 2.1+, the version required)
  system_torch=$("$python" -c 'import torch; v = tuple(int(x) for x in torch.__version__.split("+")[0].split(".")[:2]); print(torch.__version__ if v >= (2, 1) else "")' 2>/dev/null || true)
fi
if [ ! -x .venv/bin/python ]; then
  if [ -n "$system_torch" ] && [ "${NODEGRAPH_TORCH:-}" != cpu ] && [ "${NODEGRAPH_TORCH:-}" != cuda ]; then
    say "2/5 creating .venv that sees the system's packages (their torch $system_torch is used)"
    venv_args=(--system-site-packages)
  else
    say "2/5 creating .venv"
    venv_args=()
  fi
  if [ -z "$dry_run" ]; then
    "$python" -m venv ${venv_args[@]+"${venv_args[@]}"} .venv \
      || fail "'$python -m venv' failed; on Debian or Ubuntu install the venv module (e.g. 'apt install python3.11-venv')"
  fi
else
  say "2/5 .venv exists ($(.venv/bin/python --version 2>&1))"
fi
PY=.venv/bin/python

# -- 3. torch --------------------------------------------------------------------------------------------
has_gpu() { nvidia-smi -L >/dev/null 2>&1 || [ -e /proc/driver/nvidia/version ]; }
installed_torch=
[ -x "$PY" ] && installed_torch=$("$PY" -c 'import torch; print(torch.__version__)' 2>/dev/null || true)
choice=${NODEGRAPH_TORCH:-}
if [ -n "${NODEGRAPH_TORCH_INDEX:-}" ]; then
  choice=index
elif [ -z "$choice" ]; then
  if [ -n "$installed_torch" ]; then choice=keep
  elif [ -n "$system_torch" ]; then choice=keep
  elif [ "$(uname -s)" != Linux ] || has_gpu; then choice=cuda # on macOS PyPI's build is the right one too
  else choice=cpu
  fi
fi
pip_torch() { [ -n "$dry_run" ] || "$PY" -m pip install -qq "$@"; }
case "$choice" in
  keep) say "3/5 torch: keeping ${installed_torch:-the system-wide $system_torch}" ;;
  none) say "3/5 torch: not installed (NODEGRAPH_TORCH=none): install one into .venv yourself" ;;
  index)
    say "3/5 torch: $TORCH_VERSION from $NODEGRAPH_TORCH_INDEX (NODEGRAPH_TORCH_INDEX)"
    pip_torch "torch==$TORCH_VERSION" --index-url "$NODEGRAPH_TORCH_INDEX" ;;
  cuda)
    say "3/5 torch: $TORCH_VERSION, PyPI's default build (an NVIDIA GPU, or NODEGRAPH_TORCH=cuda; a few GB, several minutes)"
    pip_torch "torch==$TORCH_VERSION" ;;
  cpu)
    say "3/5 torch: $TORCH_VERSION CPU build (no NVIDIA GPU found; NODEGRAPH_TORCH=cuda overrides) from $CPU_INDEX"
    if ! pip_torch "torch==$TORCH_VERSION" --index-url "$CPU_INDEX" --retries 0 --timeout 20 2>/dev/null; then
      say "3/5 the CPU index cannot be reached: torch==$TORCH_VERSION from the usual index instead"
      pip_torch "torch==$TORCH_VERSION"
    fi ;;
  *) fail "NODEGRAPH_TORCH must be cpu, cuda or none, found '$choice'" ;;
esac

# spandrel (upscale models) needs torchvision, which pins one torch release: install the one made for this torch
# (torch 2.N pairs with torchvision 0.N+15) before the project, or pip would replace torch to satisfy the newest
# torchvision. A CUDA torchvision beside a CPU torch imports too (nodes/upscale/spandrel_import.py).
if [ -z "$dry_run" ] && ! "$PY" -m pip show -q torchvision >/dev/null 2>&1; then
  vision=$("$PY" -c 'import torch; print("0.%d.*" % (int(torch.__version__.split(".")[1]) + 15))' 2>/dev/null || true)
  if [ -n "$vision" ]; then
    say "3/5 torchvision $vision, the release made for this torch (upscale models need it)"
    if [ "$choice" != cpu ] || ! pip_torch "torchvision==$vision" --index-url "$CPU_INDEX" --retries 0 --timeout 20 2>/dev/null; then
      pip_torch "torchvision==$vision"
    fi
  fi
fi

# -- 4. nodegraph, the editor and the test tools ---------------------------------------------------------
say "4/5 installing nodegraph with the editor, the server and test tools (diffusers, transformers, PySide6, FastAPI, Ray, ...)"
if [ -z "$dry_run" ]; then
  # -qq: errors only (a failure still says what failed); the packages are many and pip's notes are noise here
  "$PY" -m pip install -qq --upgrade pip >/dev/null
  "$PY" -m pip install -qq -e ".[gui,dev,serve,ray]"
fi

# -- 5. the example plugin -------------------------------------------------------------------------------
# installed like a third-party one (its entry point), so the tests exercise discovery for real
say "5/5 installing the example plugin ($example_plugin)"
if [ -z "$dry_run" ]; then
  "$PY" -m pip install -qq -e "$example_plugin"
  touch "$stamp"
  say "done: .venv is ready ($("$PY" -c 'import torch; print("torch", torch.__version__)' 2>/dev/null || echo 'no torch'))"
fi
