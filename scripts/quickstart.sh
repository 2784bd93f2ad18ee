#!/usr/bin/env bash
# The README's first command: from nothing to a trained, tested and exported GC model on a laptop CPU.
#   1. create .venv and install gcvideo (first run only: a few minutes)
#   2. write the embedded synthetic dataset in the Kinetics layout (datasets/synthetic; skipped when there)
#   3. train the small Slow-R50 + 5 GC model           (configs/synthetic/slow_r50_gc5.yaml)
#   4. test it with 10 clips x 3 crops per video, softmax averaged per video
#   5. export the backbone to safetensors, print a results table, write runs/quickstart/results.json
#      (the run folder also holds CSV + TensorBoard logs, checkpoints and curves.png)
# Environment: CONFIG (another synthetic config), DATA (dataset folder), RUN (output folder).
set -euo pipefail
source "$(dirname "$0")/_venv.sh"
cd "$ROOT"
# One compute thread: on a 2-core machine the second core decodes in the data-loader worker, and two
# OpenMP threads fighting that worker for one core make the tiny model's steps several times slower.
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
CONFIG="${CONFIG:-configs/synthetic/slow_r50_gc5.yaml}"
DATA="${DATA:-datasets/synthetic}"
RUN="${RUN:-runs/quickstart}"
start=$(date +%s)

echo "[quickstart] the synthetic dataset in $DATA (10 classes, 2,400 training videos; written once)"
gcvideo synth --out "$DATA"

rm -rf "$RUN"  # one run per run folder: a fit into a folder holding another run is refused
common=(--config "$CONFIG" --data.init_args.root "$DATA" --trainer.default_root_dir "$RUN")
echo "[quickstart] training ($CONFIG)"
gcvideo fit "${common[@]}"
echo "[quickstart] testing with 10 clips x 3 crops per video"
gcvideo test "${common[@]}" --ckpt_path "$RUN/checkpoints/last.ckpt"
echo "[quickstart] exporting the backbone"
gcvideo export --ckpt "$RUN/checkpoints/last.ckpt" --out "$RUN/backbone.safetensors"

"$PY" - "$RUN" "$start" <<'PY'
import json, sys, time
from pathlib import Path

run, start = Path(sys.argv[1]), int(sys.argv[2])
test = json.loads((run / "test" / "results.json").read_text())
results = {
    "top1": test["top1"], "top5": test["top5"], "videos": test["videos"], "missing": test["missing"],
    "views": test["views"], "backbone": str(run / "backbone.safetensors"),
}
(run / "results.json").write_text(json.dumps(results, indent=2) + "\n")
print("\n  gcvideo quick start: Slow-R50 + 5 GC (small), synthetic data, 10x3 views")
print(f"  {'top-1':<10}{100 * results['top1']:.1f} %\n  {'top-5':<10}{100 * results['top5']:.1f} %")
print(f"  {'videos':<10}{results['videos']} evaluated, {results['missing']} missing, {results['views']} views each")
print(f"  {'backbone':<10}{results['backbone']}\n  {'curves':<10}{run / 'curves.png'}")
print(f"  {'time':<10}{time.time() - start:.0f} s (after set-up)")
print(f"  written   {run / 'results.json'}")
PY
