# Sourced by the scripts: create .venv when missing and (re)install gcvideo with its test extras
# whenever pyproject.toml changed since the last install. Works on a fresh machine from nothing.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PY="$VENV/bin/python"
if [ ! -x "$PY" ]; then
    echo "[gcvideo] creating $VENV"
    python3 -m venv "$VENV"
    "$PY" -m pip install --quiet --upgrade pip
fi
STAMP="$VENV/.gcvideo-installed"
WANT="$(sha256sum "$ROOT/pyproject.toml" | cut -d' ' -f1)"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$WANT" ]; then
    echo "[gcvideo] installing gcvideo and its dependencies into $VENV (first time: a few minutes)"
    "$PY" -m pip install --quiet --progress-bar off -e "$ROOT[test]"
    echo "$WANT" > "$STAMP"
fi
export PATH="$VENV/bin:$PATH"
