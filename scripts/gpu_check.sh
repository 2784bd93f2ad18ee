#!/usr/bin/env bash
# The GPU check of gcvideo in one run of about 10 minutes on one GPU; it runs unchanged on any CUDA
# machine. Stages, in order of importance, each with its own time cap inside one budget:
#   1. train_eager  scripts/bench_train.py: model-only training clips/s of the five Kinetics rows at full size
#                   (bf16 autocast, channels_last_3d, batch 8 as in the recipe): the blocks' step-time ratios;
#   2. levers       scripts/gpu_levers.py: slow_r50 and slow_r50_gc5's step by operator family with MFU (fails
#                   on a native bf16 conv3d kernel), every convolution path per kind, the optimizer step in
#                   each implementation, and model-only clips/s and MFU of each convolution lever alone and
#                   together at batch 8, with the default and the fused optimizer (then CUDA graphs and
#                   batch 32 as time allows) against pytorchvideo's slow_r50: levers-<gpu>-<date>.json;
#   3. blocks_*     scripts/bench_blocks.py on CUDA, bf16 and fp32: GC/SNL against the bandwidth floor (time,
#                   kernels per training step and GPU busy time: launch-bound or not) and every NL attention
#                   path against pytorchvideo's NonLocal (the policy's pick marked);
#   4. pipeline     scripts/gpu_check.py: end-to-end `gcvideo fit` clips/s and data-wait fraction on
#                   Kinetics-like videos it writes (the baseline pipeline, the speed-ups, prepared files),
#                   next to model-only clips/s at the fit's batch, and the per-worker CPU rate;
#   5. graphs       scripts/bench_train.py --compile --compile-mode reduce-overhead (CUDA graphs): what the
#                   blocks cost once kernel launches are free (GC/SNL at batch 8 are launch-bound);
#   6. compile      scripts/bench_train.py --compile: warm compiled vs eager clips/s, and compile time;
#   7. cudnn        scripts/bench_train.py --cudnn-benchmark: whether cudnn.benchmark pays.
#
#   bash scripts/gpu_check.sh [BUDGET_SECONDS]       # default 600; results in $OUT: gpu_check.log and
#                                                    # gpu_check_results.json ({file name: its JSON})
#
# On a machine without a package index, first put the wheels it lacks into ./.whl (pip download on a
# machine with pip; the team's helper: shared/device/wheels.sh) and carry .whl along: they are installed
# into a scratch folder, and gcvideo runs from this work tree. PYTHON picks the interpreter.
set -u
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
BUDGET=${1:-600}
START=$(date +%s)
W=$(mktemp -d)
OUT=${OUT:-$W/out}
J="$W/json"  # each stage's JSON; merged into one file after every stage (a device tool may return few files)
mkdir -p "$OUT" "$J"
LOG="$OUT/gpu_check.log"
if ls .whl/*.whl >/dev/null 2>&1; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$W/site" .whl/*.whl 2>&1 | tail -2
  export PYTHONPATH="$W/site:$PWD"
else
  export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONUNBUFFERED=1
left() { echo $(( BUDGET - ($(date +%s) - START) )); }
# stage NAME CAP CMD...: runs CMD with timeout min(CAP, time left - 5), appends its output to the log and
# prints its last lines (warnings filtered)
stage() {
  local name=$1 cap=$2; shift 2
  local t=$(( $(left) - 5 )); [ "$t" -lt "$cap" ] && cap=$t
  if [ "$cap" -lt 20 ]; then echo "[$(( $(date +%s) - START ))s] skip $name: out of time" | tee -a "$LOG"; return; fi
  echo "[$(( $(date +%s) - START ))s] $name (up to ${cap}s)" | tee -a "$LOG"
  timeout "$cap" "$@" > "$W/$name.log" 2>&1
  local rc=$?
  cat "$W/$name.log" >> "$LOG"
  grep -v -i -E "warn|^\s*$" "$W/$name.log" | tail -n "${TAIL:-16}"
  [ $rc -ne 0 ] && echo "  $name: exit $rc" | tee -a "$LOG"
  merge
}
# merge: every stage's JSON so far into $OUT/gpu_check_results.json ({file name: its content})
merge() {
  $PY -c 'import json, pathlib, sys
parts = {p.name: json.loads(p.read_text()) for p in sorted(pathlib.Path(sys.argv[1]).glob("*.json"))}
pathlib.Path(sys.argv[2]).write_text(json.dumps(parts, indent=1) + "\n")' "$J" "$OUT/gpu_check_results.json"
}
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader; nproc
  $PY -c "import torch, lightning; print('torch', torch.__version__, 'lightning', lightning.__version__)"; } 2>&1 | tee -a "$LOG"

stage train_eager 150 $PY scripts/bench_train.py --json "$J/train_eager.json"
TAIL=72 stage levers 215 $PY scripts/gpu_levers.py --out "$J" --budget 205
TAIL=14 stage blocks_bf16 75 $PY scripts/bench_blocks.py --device cuda --dtype bfloat16 --batch 8 --json "$J/blocks_bf16.json"
TAIL=14 stage blocks_fp32 75 $PY scripts/bench_blocks.py --device cuda --dtype float32 --batch 8 --json "$J/blocks_fp32.json"
TAIL=24 stage pipeline 270 $PY scripts/gpu_check.py --scratch "$W/pipeline" --out "$W/pipeline_out" --budget 255 \
  --rows slow_r50_snl5 slow_r50_gc_all slow_r50 slow_r50_nl5
cp "$W/pipeline_out/gpu_check.json" "$J/" 2>/dev/null
stage graphs 200 $PY scripts/bench_train.py --compile --compile-mode reduce-overhead --repeats 2 \
  --rows slow_r50 slow_r50_gc5 --json "$J/train_graphs.json"
stage compile 240 $PY scripts/bench_train.py --compile --repeats 2 --rows slow_r50 slow_r50_gc5 --json "$J/train_compile.json"
stage cudnn 60 $PY scripts/bench_train.py --cudnn-benchmark --rows slow_r50 slow_r50_gc5 --json "$J/train_cudnn.json"
merge
echo "[$(( $(date +%s) - START ))s] done; results in $OUT" | tee -a "$LOG"
