#!/usr/bin/env bash
# GPU throughput check (issue 9, item 4): model-only and end-to-end `gcvideo fit` clips/s of every Kinetics
# row, the data-wait fraction, and the per-worker input pipeline, on Kinetics-like videos it writes itself.
# About 7 minutes on one GPU with 16 cores; runs unchanged on any CUDA machine (CPU-side figures without one).
#
#   bash scripts/gpu_check.sh [--quick]        # from anywhere; results in $OUT/gpu_check.json (or a scratch folder)
#
# On a machine without a package index, first put the wheels that machine lacks into ./.whl (e.g. with
# /work/shared/device/wheels.sh on a machine with pip) and carry .whl along: they are installed into a
# scratch folder, and gcvideo runs from this work tree. PYTHON picks the interpreter (default python3).
set -u
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
W=$(mktemp -d)
if ls .whl/*.whl >/dev/null 2>&1; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$W/site" .whl/*.whl 2>&1 | tail -2
  export PYTHONPATH="$W/site:$PWD"
else
  export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null || echo "no GPU: CPU-side figures only"
timeout 540 $PY scripts/gpu_check.py --scratch "$W" "$@"
