"""GCNet's action-recognition table in miniature, on the embedded synthetic dataset.

Trains the synthetic versions of the five Kinetics rows (baseline, +5 NL, +5 SNL, +5 GC, +GC in all
res3-res5 blocks; configs/synthetic/*.yaml) with the same seed and schedule, tests each with 10x3 views,
then puts the run folders into the paper's table with ``gcvideo table --runs`` (the one implementation of
the table): OUT/table.md (its Markdown, with top-1 per class), OUT/table.json (its JSON rows) and
OUT/top1_vs_macs.png (its plot); then runs ``gcvideo analyze`` on the NL model (OUT/analysis_nl5).

    .venv/bin/python scripts/mini_table.py [--data datasets/synthetic] [--out runs/mini_table] [--epochs 8]
    .venv/bin/python scripts/mini_table.py --quick   # smoke run: 2 rows, 1 epoch, tiny data and model

Synthetic data: the numbers say whether the pipeline works and how the rows compare on this task,
not what they reach on Kinetics-400.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import os
import shutil
import sys
from pathlib import Path

# One compute thread (as scripts/quickstart.sh): on a 2-core machine the data-loader worker needs the other
# core, and OpenMP threads competing with it make the small model's steps several times slower.
os.environ.setdefault("OMP_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parents[1]
ROWS = ("slow_r50", "slow_r50_nl5", "slow_r50_snl5", "slow_r50_gc5", "slow_r50_gc_all")  # GCNet's Kinetics rows
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


def fit_and_test(row: str, data: Path, run: Path, args: argparse.Namespace, test_list: Path | None) -> dict:
    """Train one row with its synthetic config and test it; its test results (``test/results.json``)."""
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
    results = run / "test" / "results.json"
    if args.keep_finished and results.is_file():
        print(f"    reusing {results}", flush=True)
        return json.loads(results.read_text())
    if run.exists():
        shutil.rmtree(run)  # a fresh run: no stale checkpoints or logs
    run_lightning_cli(["fit", *common, *schedule])
    run_lightning_cli(["test", *common, "--ckpt_path", str(run / "checkpoints" / "last.ckpt")])
    return json.loads(results.read_text())


def table(runs: list[Path], out: Path) -> tuple[list[dict], str]:
    """``gcvideo table --runs`` on the rows' run folders: its JSON rows and its Markdown (with top-1 per class);
    the plot goes to OUT/top1_vs_macs.png."""
    from gcvideo.cli.main import main as gcvideo

    printed = []
    for extra in (["--json"], ["--per-class", "--plot", str(out / "top1_vs_macs.png")]):
        buffer = io.StringIO()
        with contextlib.redirect_stdout(buffer):
            code = gcvideo(["table", "--runs", *(str(r) for r in runs), *extra])
        if code:
            raise SystemExit(f"mini_table: gcvideo table failed with status {code}")
        printed.append(buffer.getvalue())
    return json.loads(printed[0]), printed[1]


def main(argv: list[str] | None = None) -> int:
    import platform

    import torch

    from gcvideo.cli.main import main as gcvideo

    args = parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = ensure_data(args)
    test_list = test_subset(data, 0 if args.quick else args.test_per_class, out)
    for index, row in enumerate(args.rows, 1):
        print(f"[{index}/{len(args.rows)}] {row}: fit {args.epochs} epochs, then test", flush=True)
        results = fit_and_test(row, data, out / row, args, test_list)
        print(f"    top-1 {results['top1']:.3f}, top-5 {results['top5']:.3f}", flush=True)
    rows, markdown = table([out / row for row in args.rows], out)
    caption = (f"Synthetic data ({data}), the configs of `configs/synthetic/`, {args.epochs} epoch(s), seed "
               f"{args.seed}{', --quick' if args.quick else ''}; measured on {platform.machine()} CPU, "
               f"{torch.get_num_threads()} compute thread(s). Rows, intervals and notes from `gcvideo table --runs`.")
    (out / "table.json").write_text(json.dumps(rows, indent=2) + "\n")
    (out / "table.md").write_text(f"{caption}\n\n{markdown}")
    print(f"{caption}\n\n{markdown}")
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
