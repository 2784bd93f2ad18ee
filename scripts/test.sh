#!/usr/bin/env bash
# The README's test command: set up .venv if needed, then run the whole test suite on the CPU.
set -euo pipefail
source "$(dirname "$0")/_venv.sh"
cd "$ROOT"
export CUDA_VISIBLE_DEVICES="${CUDA_VISIBLE_DEVICES-}"
exec "$PY" -m pytest "$@"
