# Sourced by scripts/test and scripts/demo: make a fresh machine (Python + apt) ready.
# Installs tmux, redis-server (and python3-venv) with apt when missing, creates .venv, installs the
# package with its dev extra. Idempotent and quiet when everything is already there.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

_apt() {
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
}

command -v tmux >/dev/null 2>&1 || { echo "setup: installing tmux with apt"; _apt tmux; }
# the redis backend's tests start a private redis-server (Debian's 7.0; never a service)
command -v redis-server >/dev/null 2>&1 || { echo "setup: installing redis-server with apt"; _apt redis-server; }
command -v openssl >/dev/null 2>&1 || { echo "setup: installing openssl with apt"; _apt openssl; }  # TLS test certificates

PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  if ! "$PY" -m venv .venv 2>/dev/null; then
    echo "setup: installing python3-venv with apt"
    _apt python3-venv
    rm -rf .venv
    "$PY" -m venv .venv
  fi
fi
stamp=".venv/.installed-$(cat pyproject.toml | cksum | cut -d' ' -f1)"
if [ ! -f "$stamp" ]; then
  echo "setup: installing claudeswarm and its dev tools into .venv"
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
  # compat mode: a .pth line instead of an import hook (the hook costs ~10 ms per CLI call)
  .venv/bin/python -m pip install -q -e ".[dev]" --config-settings editable_mode=compat
  touch "$stamp"
fi
export PATH="$ROOT/.venv/bin:$PATH"
