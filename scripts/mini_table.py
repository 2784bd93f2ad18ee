"""GCNet's action-recognition table in miniature, on the embedded synthetic dataset.

Trains the synthetic versions of the five Kinetics rows (baseline, +5 NL, +5 SNL, +5 GC, +GC in all
res3-res5 blocks; configs/synthetic/*.yaml) with the same seed and schedule, tests each with 10x3 views,
and writes OUT/table.md, OUT/table.json and OUT/top1_vs_macs.png (top-1, top-5, parameters, MACs and
training clips/s, all measured here), then runs ``gcvideo analyze`` on the NL model (OUT/analysis_nl5).

    .venv/bin/python scripts/mini_table.py [--data datasets/synthetic] [--out runs/mini_table] [--epochs 8]
    .venv/bin/python scripts/mini_table.py --quick   # smoke run: 2 rows, 1 epoch, tiny data and model

Synthetic data: the numbers say whether the pipeline works and how the rows compare on this task,
not what they reach on Kinetics-400.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

import yaml

# One compute thread (as scripts/quickstart.sh): on a 2-core machine the data-loader worker needs the other
# core, and OpenMP threads competing with it make the small model's steps several times slower.
os.environ.setdefault("OMP_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parents[1]
ROWS = {
    "slow_r50": "baseline",
    "slow_r50_nl5": "+ 5 NL",
    "slow_r50_snl5": "+ 5 SNL",
    "slow_r50_gc5": "+ 5 GC (r = 1/4)",
    "slow_r50_gc_all": "+ GC (r = 1/4) in all res3-res5 blocks",
}
QUICK_DATA = dict(classes=3, train_per_class=4, val_per_class=1, test_per_class=2, seconds=1.0, fps=16.0,
                  size=(32, 32), seed=0, workers=1, progress=False)
QUICK_OVERRIDES = [  # width-4 model on 4x32x32 clips, 2x1 test views
    "--model.width=4", "--data.init_args.frames=4", "--data.init_args.stride=4", "--data.init_args.batch_size=4",
    "--data.init_args.num_workers=0", "--data.init_args.train_short_side=[32, 32]",
    "--data.init_args.test_clips=2", "--data.init_args.test_crops=1", "--trainer.enable_model_summary=false",
]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="datasets/synthetic", help="dataset root; generated with the "
                        "`gcvideo synth` defaults when missing (default: datasets/synthetic)")
    parser.add_argument("--out", default="runs/mini_table", help="output folder (default: runs/mini_table)")
    parser.add_argument("--rows", nargs="+", default=list(ROWS), choices=list(ROWS), help="rows to run (default: all)")
    parser.add_argument("--epochs", type=int, default=8, help="training epochs of every row, warm-up 1, "
                        "half-cosine (default: 8, the configs' recipe; about 35 minutes for five rows on 2 CPU cores)")
    parser.add_argument("--test-per-class", type=int, default=0, help="test videos per class, each seen in 10x3 "
                        "views (default: 0, the whole test split)")
    parser.add_argument("--seed", type=int, default=0, help="seed of every run (default: 0)")
    parser.add_argument("--analyze-clips", type=int, default=16, help="clips for gcvideo analyze (default: 16)")
    parser.add_argument("--quick", action="store_true", help="smoke run: slow_r50 and slow_r50_nl5, 1 epoch, "
                        "tiny data (OUT/data) and width 4")
    parser.add_argument("--keep-finished", action="store_true", help="reuse rows whose OUT/<row>/test/results.json "
                        "exists (resume an interrupted table) instead of training them again")
    parser.add_argument("--progress", action="store_true", help="show Lightning's progress bars")
    args = parser.parse_args(argv)
    if args.quick:
        args.rows, args.epochs, args.data = ["slow_r50", "slow_r50_nl5"], 1, str(Path(args.out) / "data")
    if args.epochs < 1 or args.test_per_class < 0:
        parser.error(f"need --epochs >= 1 and --test-per-class >= 0, got {args.epochs} and {args.test_per_class}")
    return args


def config_path(row: str) -> Path:
    return ROOT / "configs" / "synthetic" / f"{row}.yaml"


def test_subset(data: Path, per_class: int, out: Path) -> Path | None:
    """A Kinetics CSV of the first ``per_class`` test videos of each class (None: use the whole split)."""
    source = data / "annotations" / "test.csv"
    if per_class == 0:
        return None
    if not source.is_file():
        raise SystemExit(f"mini_table: {source} not found; --test-per-class needs the Kinetics CSV layout")
    with open(source, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header, rows = next(reader), list(reader)
    label = header.index("label")
    kept, seen = [], {}
    for row in rows:
        seen[row[label]] = seen.get(row[label], 0) + 1
        if seen[row[label]] <= per_class:
            kept.append(row)
    path = out / "test_subset.csv"
    with open(path, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([header, *kept])
    return path.resolve()


def ensure_data(args: argparse.Namespace) -> Path:
    """The dataset root, generated first when it has no classnames.txt."""
    from gcvideo.data.synthetic.videos import write_video_dataset

    root = Path(args.data)
    if not (root / "classnames.txt").is_file():
        print(f"generating the synthetic dataset in {root}", flush=True)
        write_video_dataset(root, **(QUICK_DATA if args.quick else {}))
    return root


def fit_and_test(row: str, data: Path, run: Path, args: argparse.Namespace,
                 test_list: Path | None) -> tuple[dict, float | None]:
    """Train one row with its synthetic config and test it; (test results, fit wall seconds)."""
    from gcvideo.cli.lightning_cli import run_lightning_cli

    common = ["--config", str(config_path(row)), f"--data.init_args.root={data}", f"--trainer.default_root_dir={run}",
              f"--trainer.logger.init_args.save_dir={run}", f"--seed_everything={args.seed}",
              f"--trainer.enable_progress_bar={str(args.progress).lower()}", *(QUICK_OVERRIDES if args.quick else []),
              # a mirrored clip changes class (left/right, clockwise/anticlockwise); throughput at every step
              "--data.init_args.train_flip=false", "--trainer.log_every_n_steps=1"]
    if test_list is not None:
        common.append(f"--data.init_args.test_list={test_list}")
    schedule = [f"--trainer.max_epochs={args.epochs}",  # also the schedule's length
                f"--model.lr_scheduler.init_args.warmup_epochs={min(1, args.epochs - 1)}"]
    results, timing = run / "test" / "results.json", run / "fit_seconds.json"
    if args.keep_finished and results.is_file():
        print(f"    reusing {results}", flush=True)
        return json.loads(results.read_text()), json.loads(timing.read_text()) if timing.is_file() else None
    if run.exists():
        shutil.rmtree(run)  # a fresh run: no stale checkpoints or logs
    start = time.perf_counter()
    run_lightning_cli(["fit", *common, *schedule])
    fit_seconds = time.perf_counter() - start
    timing.write_text(json.dumps(round(fit_seconds, 1)))
    run_lightning_cli(["test", *common, "--ckpt_path", str(run / "checkpoints" / "last.ckpt")])
    return json.loads(results.read_text()), fit_seconds


def training_clips_per_s(run: Path) -> float:
    """Median of the logged ``throughput/clips_per_s`` (``gcvideo.training.TrainThroughput``: data wait included)."""
    values = []
    for metrics in sorted(run.glob("logs/version_*/metrics.csv")):
        with open(metrics, newline="") as f:
            values += [float(r["throughput/clips_per_s"]) for r in csv.DictReader(f) if r.get("throughput/clips_per_s")]
    return statistics.median(values) if values else float("nan")


def per_class_top1(run: Path) -> dict[str, float]:
    """Video-level top-1 of each class, from the test's per-video predictions (missing videos left out)."""
    hits: dict[str, list[int]] = {}
    with open(run / "test" / "predictions.csv", newline="", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            if r["status"] == "ok":
                hits.setdefault(r["label"], []).append(int(r["correct"]))
    return {label: sum(v) / len(v) for label, v in hits.items()}


def complexity(row: str, args: argparse.Namespace, num_classes: int) -> dict:
    """Parameters and MACs of the row's model as configured, on one test view."""
    from gcvideo.models import count_macs, count_parameters, create

    config = yaml.safe_load(config_path(row).read_text())
    data = config["data"]["init_args"]
    width, frames, crop = config["model"]["width"], data["frames"], data["test_crop"]
    if args.quick:
        width, frames = 4, 4
    model = create(row, num_classes=num_classes, width=width)
    return {"width": width, "input": f"{frames}x{crop}x{crop}", "params": count_parameters(model),
            "macs": count_macs(model, (1, 3, frames, crop, crop))}


def markdown(rows: list[dict], meta: dict) -> str:
    lines = [
        f"Synthetic data ({meta['classes']} classes, {meta['test_videos']} test videos, {meta['views']} views "
        f"each), width-{meta['width']} Slow-R50 on {meta['input']} clips, {meta['epochs']} epochs, seed "
        f"{meta['seed']}; measured on {meta['machine']}.",
        "",
        f"| row | model | params | MMACs ({meta['input']}) | top-1 | top-5 | train clips/s |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['row']} | `{r['model']}` | {r['params'] / 1e3:.1f}k | {r['macs'] / 1e6:.2f} | "
                     f"{100 * r['top1']:.1f} | {100 * r['top5']:.1f} | {r['train_clips_per_s']:.1f} |")
    classes = list(rows[0]["per_class_top1"])
    lines += ["", "Top-1 (%) per class:", "", "| class | " + " | ".join(r["row"] for r in rows) + " |",
              "|---|" + "---|" * len(rows)]
    for c in classes:
        lines.append(f"| {c} | " + " | ".join(f"{100 * r['per_class_top1'].get(c, float('nan')):.0f}" for r in rows) + " |")
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], path: Path) -> None:
    """Top-1 against MACs, one labelled point per row."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 4), dpi=100)
    axis = fig.subplots()
    points = [(r["macs"] / 1e6, 100 * r["top1"]) for r in rows]
    x_span = (max(p[0] for p in points) - min(p[0] for p in points)) or 1.0
    y_span = (max(p[1] for p in points) - min(p[1] for p in points)) or 1.0
    for index, (r, (x, y)) in enumerate(zip(rows, points)):
        # baseline, SNL and GC differ little in MACs and can tie in top-1: of two close points, the first is
        # labelled on its left, and a label goes one line up for every earlier close point
        near = [abs(x - px) < 0.05 * x_span and abs(y - py) < 0.05 * y_span for px, py in points]
        left, up = any(near[index + 1:]), sum(near[:index])
        axis.scatter(x, y, s=40)
        axis.annotate(r["row"], (x, y), textcoords="offset points", xytext=(-6 if left else 6, -3 + 10 * up),
                      ha="right" if left else "left", fontsize=8)
    axis.set_xlabel(f"MMACs per {rows[0]['input']} view")
    axis.set_ylabel("top-1 (%), 10x3 views" if rows[0]["views"] == 30 else "top-1 (%)")
    axis.set_title("GCNet's Kinetics rows in miniature (synthetic data)", fontsize=10)
    axis.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(str(path))


def main(argv: list[str] | None = None) -> int:
    import platform

    import torch

    from gcvideo.cli.main import main as gcvideo

    args = parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = ensure_data(args)
    num_classes = len((data / "classnames.txt").read_text().splitlines())
    test_list = test_subset(data, 0 if args.quick else args.test_per_class, out)
    rows = []
    for index, row in enumerate(args.rows, 1):
        print(f"[{index}/{len(args.rows)}] {row}: fit {args.epochs} epochs, then test", flush=True)
        results, fit_seconds = fit_and_test(row, data, out / row, args, test_list)
        rows.append({"model": row, "row": ROWS[row], **complexity(row, args, num_classes),
                     "top1": results["top1"], "top5": results["top5"], "videos": results["videos"],
                     "missing": results["missing"], "views": results["views"],
                     "per_class_top1": per_class_top1(out / row),
                     "train_clips_per_s": training_clips_per_s(out / row), "fit_seconds": fit_seconds and round(fit_seconds, 1)})
        print(f"    top-1 {results['top1']:.3f}, top-5 {results['top5']:.3f}, fit {fit_seconds} s", flush=True)
    meta = {"classes": num_classes, "test_videos": rows[0]["videos"], "views": rows[0]["views"],
            "width": rows[0]["width"], "input": rows[0]["input"], "epochs": args.epochs, "seed": args.seed,
            "data": str(data), "machine": f"{platform.machine()} CPU, {torch.get_num_threads()} compute thread(s)"}
    (out / "table.json").write_text(json.dumps({**meta, "rows": rows}, indent=2) + "\n")
    (out / "table.md").write_text(markdown(rows, meta))
    plot(rows, out / "top1_vs_macs.png")
    print(markdown(rows, meta))
    if "slow_r50_nl5" in args.rows:
        ckpt = out / "slow_r50_nl5" / "checkpoints" / "last.ckpt"
        code = gcvideo(["analyze", "--ckpt", str(ckpt), "--root", str(data), "--clips", str(args.analyze_clips),
                        "--out", str(out / "analysis_nl5"), *(["--pictures", "1"] if args.quick else [])])
        if code:
            return code
    print(f"wrote {out / 'table.md'}, {out / 'table.json'}, {out / 'top1_vs_macs.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
