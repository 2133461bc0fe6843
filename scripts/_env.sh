# Shared by scripts/demo.sh and scripts/test.sh: make .venv with flatlab installed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

pick_python() {
  for p in "${PYTHON:-}" python3.13 python3.12 python3.11 python3; do
    [ -n "$p" ] && command -v "$p" >/dev/null 2>&1 &&
      "$p" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null && { echo "$p"; return; }
  done
  echo "flatlab needs Python 3.11 or newer on PATH (or PYTHON=/path/to/python)" >&2
  exit 1
}

say() { echo "flatlab: $*" >&2; }

if [ ! -x .venv/bin/python ]; then
  python_bin="$(pick_python)"
  say "creating .venv with $python_bin"
  "$python_bin" -m venv .venv
fi
# shellcheck disable=SC1091
. .venv/bin/activate
export PIP_DISABLE_PIP_VERSION_CHECK=1
if ! python -c 'import torch' >/dev/null 2>&1; then
  # 2.13.0 is the CPU wheel this project is developed on; any torch>=2.3 works.
  say "installing torch 2.13.0 into .venv (a large download: a minute or two)…"
  python -m pip install -q "torch==2.13.0" 2>&1 | grep -v '^WARNING: Location' || true
fi
stamp=.venv/.flatlab-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  say "installing flatlab and its dependencies into .venv (about a minute)…"
  python -m pip install -q -e ".[dev,torch]" 2>&1 | grep -v '^WARNING: Location' || true
  touch "$stamp"
  say "installed"
fi
