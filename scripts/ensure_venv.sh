#!/usr/bin/env bash
# Creates or refreshes .venv from requirements.lock; does nothing when it is current.
#
# TFX 1.16 needs Python 3.10. Looked for, in order: $PYTHON, python3.10 on PATH,
# pyenv's 3.10 installs, uv's managed interpreters (uv may download one where
# the internet is reachable). The venv is re-synced when the lock or
# pyproject.toml changes (a hash stamp), and rebuilt if its Python is not 3.10.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv
UV_VERSION=0.13.8
# This script is in the stamp too: a change to how it installs re-runs it.
stamp_value=$(cat requirements.lock pyproject.toml scripts/ensure_venv.sh | sha256sum | cut -c1-16)
stamp_file=$VENV/.happysad-lock-stamp

is_py310() { [ -n "${1:-}" ] && "$1" -c 'import sys, venv; sys.exit(sys.version_info[:2] != (3, 10))' 2>/dev/null; }

if is_py310 "$VENV/bin/python" && [ "$(cat "$stamp_file" 2>/dev/null)" = "$stamp_value" ]; then
  exit 0
fi

find_python310() {
  local candidate
  for candidate in "${PYTHON:-}" "$(command -v python3.10 || true)"; do
    if is_py310 "$candidate"; then echo "$candidate"; return 0; fi
  done
  if command -v pyenv >/dev/null 2>&1; then
    for candidate in $(ls -d "$(pyenv root)"/versions/3.10*/bin/python3.10 2>/dev/null | sort -V -r); do
      if is_py310 "$candidate"; then echo "$candidate"; return 0; fi
    done
  fi
  if command -v uv >/dev/null 2>&1; then
    candidate=$(uv python find 3.10 2>/dev/null || true)
    if ! is_py310 "$candidate"; then
      uv python install 3.10 >&2 2>/dev/null || true
      candidate=$(uv python find 3.10 2>/dev/null || true)
    fi
    if is_py310 "$candidate"; then echo "$candidate"; return 0; fi
  fi
  return 1
}

if ! is_py310 "$VENV/bin/python"; then
  if ! python=$(find_python310); then
    cat >&2 <<'MSG'
error: happysad needs Python 3.10 (TFX 1.16's ml-metadata and TFDV wheels exist for 3.9-3.10 only
here), and none was found: not $PYTHON, not python3.10 on PATH, not in pyenv, not via uv.
Install one of these, then run the command again:
  pyenv install 3.10            (https://github.com/pyenv/pyenv)
  uv python install 3.10        (pip install uv)
  apt-get install python3.10 python3.10-venv   (where your OS ships it)
or point PYTHON at one: make run PYTHON=/path/to/python3.10
MSG
    exit 1
  fi
  echo "creating $VENV with $python ($("$python" --version))"
  rm -rf "$VENV"
  "$python" -m venv "$VENV"
fi

# uv resolves nothing here: it installs exactly the locked set, in seconds.
if ! "$VENV/bin/python" -m uv --version 2>/dev/null | grep -q "$UV_VERSION"; then
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "uv==$UV_VERSION"
fi
echo "installing requirements.lock into $VENV"
# --compile-bytecode: uv, unlike pip, leaves the .py files uncompiled, and where
# PYTHONDONTWRITEBYTECODE is set (as on this machine) every command then compiles
# ~10,000 files of TFX, TF and Google client code again: 17 s instead of 7 s to
# import TFX's Beam orchestrator (README, "Speed").
# --require-hashes: every file uv installs must match a SHA-256 in the lock (`make lock` writes them),
# so a swapped or tampered download is refused, not installed.
"$VENV/bin/python" -m uv pip sync --quiet --compile-bytecode --require-hashes --python "$VENV/bin/python" \
  requirements.lock
# The project itself, editable, has no file to hash: --no-deps installs nothing the lock did not.
"$VENV/bin/python" -m uv pip install --quiet --python "$VENV/bin/python" --no-deps --no-build-isolation -e .
echo "$stamp_value" > "$stamp_file"
