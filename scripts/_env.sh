# Shared by scripts/run and scripts/test: make sure .venv exists and holds this checkout's
# package with the dev extras (the test tools). One install serves both scripts, so the first
# `./scripts/run` after `./scripts/test` (or the other way round) installs nothing. Installs
# again only when pyproject.toml changed since the last install.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PY="${PYTHON:-python3}"
if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "livecli needs Python 3.11 or newer: set PYTHON=/path/to/python3.11" >&2
  exit 2
fi
STAMP="$VENV/.livecli-installed"  # holds the checksum of the pyproject.toml last installed
WANT="$(cksum < "$ROOT/pyproject.toml")"  # POSIX, so macOS has it too
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$WANT" ]; then
  if [ -x "$VENV/bin/python" ]; then
    echo "updating .venv to match pyproject.toml..." >&2
  else
    echo "setting up .venv (first run, about 2 minutes)..." >&2
    "$PY" -m venv "$VENV"
  fi
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e "$ROOT[dev]" >&2
  echo "$WANT" > "$STAMP"
fi
