"""GPU throughput check of every Kinetics row: model-only and end-to-end ``gcvideo fit`` clips/s.

Runs unchanged on any CUDA machine in about 7 minutes (every stage has its own timeout and the whole run a
budget) and prints one compact table:

    row | model-only clips/s | fit clips/s | data wait | fit / model-only | pipeline

- model-only: ``scripts/bench_train.py`` (random clips, bf16, channels_last_3d) at the fit's batch size, for
  slow_r50_gc5 (the row fitted with every pipeline variant; scripts/gpu_check.sh measures every row at
  batch 8);
- fit: ``gcvideo fit`` with the row's Kinetics config on one GPU, ``nproc - 2`` DataLoader workers, on
  Kinetics-like videos that this script writes itself (H.264 High, B-frames, GOP 250, 340x256, 10 s at
  30 fps, AAC; ``gcvideo data make-bench-videos``), as logged by the fit's ``throughput/*`` metrics;
- slow_r50_gc5 is fitted with the speed-ups (exact PyAV seeking: decoder auto, uint8 batches normalised on
  the GPU) on copies made by ``gcvideo data prepare`` and on the raw files; the other rows with the first;
  then, as time allows, clips_per_video=2 on the raw files and the baseline pipeline (decord, float32
  batches), the reference the speed-ups are measured against;
- alongside, ``gcvideo data bench --mode training``: what one worker delivers on this machine's CPU.

Without a GPU it gives the CPU-side figures (the per-worker bench and a small CPU fit). Results go to
``$OUT/gpu_check.json`` (or ``--out``), with each stage's log.

    bash scripts/gpu_check.sh            # installs .whl/*.whl if present, then runs this
    python scripts/gpu_check.py --quick  # fewer steps and rows
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ROWS = ("slow_r50", "slow_r50_nl5", "slow_r50_snl5", "slow_r50_gc5", "slow_r50_gc_all")
BASELINE = {"data.init_args.decoder": "decord", "data.init_args.uint8_batches": "false"}
LEVERS = {"data.init_args.decoder": "auto", "data.init_args.uint8_batches": "true"}


class Stages:
    """Runs commands with per-stage timeouts inside an overall budget; keeps each stage's log."""

    def __init__(self, out: Path, budget: float) -> None:
        self.out, self.deadline, self.start = out, time.monotonic() + budget, time.monotonic()

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def run(self, name: str, command: list[str], timeout: float, background: bool = False):
        timeout = min(timeout, self.left())
        if timeout < 10:
            print(f"[{self.elapsed()}] skip {name}: out of time", flush=True)
            return None
        print(f"[{self.elapsed()}] {name} (up to {timeout:.0f} s)", flush=True)
        log = open(self.out / f"{name}.log", "w")
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env=os.environ.copy())
        proc.timeout, proc.name, proc.started = timeout, name, time.monotonic()
        return proc if background else self.wait(proc)

    def wait(self, proc) -> int:
        try:
            code = proc.wait(timeout=max(proc.timeout - (time.monotonic() - proc.started), 1))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            code = 124
        if code:
            tail = (self.out / f"{proc.name}.log").read_text(errors="replace").strip().splitlines()[-3:]
            print(f"  {proc.name}: exit {code}" + "".join(f"\n    {line[:200]}" for line in tail), flush=True)
        return code

    def elapsed(self) -> str:
        return f"{time.monotonic() - self.start:4.0f}s"


def gcvideo(*args: str) -> list[str]:
    return [sys.executable, "-m", "gcvideo.cli.main", *args]


def list_each_video(root: Path, times: int) -> None:
    """List every training video ``times`` times under other names (hard links): epochs longer than the run,
    so the fit measures steady state rather than the drain and refill of the loader at each epoch end."""
    path = root / "annotations" / "train.csv"
    rows = list(csv.reader(path.open()))
    header, rows = rows[0], [r for r in rows[1:] if "-copy" not in r[1]]
    out = [header, *rows]  # the originals first: the first rows of the list are all different videos
    for j in range(1, times):
        for label, youtube_id, start, end, split in rows:
            source = root / "videos" / split / label / f"{youtube_id}_{int(start):06d}_{int(end):06d}.mp4"
            copy_id = f"{youtube_id}-copy{j:03d}"
            target = source.with_name(f"{copy_id}_{int(start):06d}_{int(end):06d}.mp4")
            if not target.exists():
                os.link(source, target)
            out.append([label, copy_id, start, end, split])
    with path.open("w", newline="") as f:
        csv.writer(f).writerows(out)


def fit_metrics(run_dir: Path) -> dict:
    """The last logged throughput/* values (one window covering every measured step)."""
    files = sorted(run_dir.glob("logs/version_*/metrics.csv"))
    if not files:
        return {}
    last = {}
    for row in csv.DictReader(files[-1].open()):
        if row.get("throughput/clips_per_s"):
            last = {"clips_per_s": float(row["throughput/clips_per_s"]),
                    "data_wait": float(row["throughput/data_wait"]), "step": int(row["step"])}
    return last


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=os.environ.get("OUT") or None, help="results folder (default $OUT or scratch)")
    parser.add_argument("--scratch", default=None, help="videos and runs (default: a temporary folder)")
    parser.add_argument("--budget", type=float, default=450, help="seconds for the whole check (default 450)")
    parser.add_argument("--quick", action="store_true", help="fewer steps, only slow_r50_gc5")
    parser.add_argument("--rows", nargs="*", default=None, choices=ROWS,
                        help="rows fitted after slow_r50_gc5's pipelines, to show that they train at full size "
                             "(default: all; none with --quick)")
    parser.add_argument("--batch", type=int, default=16, help="clips per step of the fits and model-only (default 16)")
    parser.add_argument("--videos", type=int, default=None,
                        help="Kinetics-like training videos written (default 64 with a GPU, 16 without)")
    args = parser.parse_args(argv)
    import torch

    gpu = torch.cuda.is_available()
    cores = os.cpu_count() or 2
    scratch = Path(args.scratch or tempfile.mkdtemp(prefix="gcvideo_gpu_check_"))
    out = Path(args.out or scratch / "out")
    out.mkdir(parents=True, exist_ok=True)
    stages = Stages(out, args.budget)
    machine = {"gpu": torch.cuda.get_device_name(0) if gpu else None, "cpu_cores": cores, "torch": torch.__version__,
               "python": sys.version.split()[0]}
    print(f"machine: {machine}", flush=True)
    steps, skip = (40, 10) if args.quick else (100, 20)
    fit_batch = args.batch
    if not gpu:  # the CPU path of the same command, small: the pipeline runs, the numbers are not GPU ones
        steps, skip, fit_batch = 12, 2, 4
    workers = max(1, cores - 2)
    args.videos = args.videos or (64 if gpu else 8)
    result: dict = {"machine": machine, "batch": fit_batch, "workers": workers, "steps": steps, "skipped_steps": skip,
                    "rows": [], "stages": {}}

    raw, prepared = scratch / "k340", scratch / "k340_prepared"
    stages.run("videos", gcvideo("data", "make-bench-videos", "--out", str(raw), "--size", "340x256", "--videos",
                                 str(args.videos), "--val-videos", "2", "--workers", str(cores)), 120)
    t = time.monotonic()
    stages.run("prepare", gcvideo("data", "prepare", "--root", str(raw), "--out", str(prepared), "--workers",
                                  str(cores)), 90)
    result["stages"]["prepare_s_per_video_all_cores"] = (time.monotonic() - t) / max(args.videos + 2, 1)
    times = -(-steps * fit_batch // args.videos) + 1  # one epoch longer than the run
    for root in (raw, prepared):
        if (root / "annotations" / "train.csv").is_file():
            list_each_video(root, times)

    bench = stages.run("data_bench", gcvideo("data", "bench", "--root", str(raw), "--mode", "training", "--videos",
                                             "16", "--clips", "32", "--repeats", "1", "--json",
                                             str(out / "data_bench.json")), 150, background=True)
    others = [r for r in ([] if args.quick else (ROWS if args.rows is None else args.rows)) if r != "slow_r50_gc5"]
    model_only: dict[str, float] = {}
    if gpu:
        rows = ["slow_r50_gc5"]  # the goal's row; the others' model-only figures come from bench_train.py
        code = stages.run("model_only", [sys.executable, "scripts/bench_train.py", "--batch", str(args.batch),
                                         "--rows", *rows, "--json", str(out / "model_only.json")], 180)
        if code == 0:
            for row in json.loads((out / "model_only.json").read_text())["rows"]:
                model_only[row["model"]] = row["clips_per_s"]
    if bench is not None:
        stages.wait(bench)
    if (out / "data_bench.json").is_file():
        result["data_bench"] = json.loads((out / "data_bench.json").read_text())

    # slow_r50_gc5 with the speed-ups first, the baseline pipeline (the reference) last: a short budget drops
    # the reference first.
    on_raw = ("slow_r50_gc5", "pyav seek + uint8, raw files", raw, LEVERS)
    plan = [("slow_r50_gc5", "pyav seek + uint8, prepared files", prepared, LEVERS), on_raw]
    if not args.quick:
        plan += [(row, "pyav seek + uint8, prepared files", prepared, LEVERS) for row in others]
        plan += [("slow_r50_gc5", "pyav seek + uint8 + clips_per_video 2, raw files", raw,
                  {**LEVERS, "data.init_args.clips_per_video": "2"})]
    plan += [("slow_r50_gc5", "baseline: decord, float32 batches, raw files", raw, BASELINE)]
    if not gpu:
        plan = [on_raw]
    for i, (row, pipeline, root, options) in enumerate(plan):
        run_dir = scratch / f"fit{i}"
        shutil.rmtree(run_dir, ignore_errors=True)
        command = gcvideo(
            "fit", "--config", f"configs/kinetics400/{row}.yaml", "--data.init_args.root", str(root),
            "--trainer.devices", "1", "--trainer.strategy", "auto", "--trainer.max_steps", str(steps),
            "--trainer.limit_val_batches", "0", "--trainer.log_every_n_steps", "10",
            "--trainer.enable_progress_bar", "false", "--trainer.default_root_dir", str(run_dir),
            "--trainer.logger.init_args.save_dir", str(run_dir), "--checkpoint.every_n_epochs", "0",
            "--checkpoint.save_last", "false", "--data.init_args.num_workers", str(workers),
            "--data.init_args.batch_size", str(fit_batch), "--throughput.window", str(steps),
            "--throughput.skip_steps", str(skip))
        if not gpu:
            command += ["--trainer.accelerator", "cpu", "--trainer.precision", "32-true", "--model.width", "8",
                        "--model.channels_last", "false", "--data.init_args.train_crop", "96"]
        for key, value in options.items():
            command += [f"--{key}", value]
        code = stages.run(f"fit{i}_{row}", command, 100)
        metrics = fit_metrics(run_dir) if code == 0 else {}
        entry = {"row": row, "pipeline": pipeline, "model_only_clips_per_s": model_only.get(row),
                 "fit_clips_per_s": metrics.get("clips_per_s"), "data_wait": metrics.get("data_wait"),
                 "status": "ok" if metrics else ("timeout" if code == 124 else f"failed ({code})")}
        if entry["fit_clips_per_s"] and entry["model_only_clips_per_s"]:
            entry["fit_vs_model_only"] = entry["fit_clips_per_s"] / entry["model_only_clips_per_s"]
        result["rows"].append(entry)
        (out / "gpu_check.json").write_text(json.dumps(result, indent=2) + "\n")
    print(format_table(result), flush=True)
    (out / "gpu_check.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"[{stages.elapsed()}] results: {out / 'gpu_check.json'}")
    return 0


def format_table(result: dict) -> str:
    m = result["machine"]
    lines = [f"\n{m['gpu'] or 'CPU only (width-8 model, 96 crops)'}, {m['cpu_cores']} cores, torch {m['torch']}; "
             f"batch {result['batch']}, {result['workers']} workers, {result['steps']} fit steps "
             f"({result['skipped_steps']} skipped); 340x256 Kinetics-like files, GOP 250",
             f"{'row':<16}{'model-only':>11}{'fit':>8}{'wait':>7}{'fit/model':>10}  pipeline"]
    def num(value, spec: str) -> str:
        return format(value, spec) if isinstance(value, (int, float)) else "-".rjust(int(spec.split(".")[0]))

    for r in result["rows"]:
        lines.append(f"{r['row']:<16}{num(r['model_only_clips_per_s'], '11.1f')}{num(r['fit_clips_per_s'], '8.1f')}"
                     f"{num(r['data_wait'], '7.0%')}{num(r.get('fit_vs_model_only'), '10.0%')}  {r['pipeline']}"
                     f"{'' if r['status'] == 'ok' else ' [' + r['status'] + ']'}")
    bench = result.get("data_bench")
    if bench:
        lines.append("per worker on this CPU (gcvideo data bench --mode training), clips/s:")
        lines += [f"  {r['clips_per_s']:6.1f}  {r['vs_baseline']:5.2f}x  {r['name']}" for r in bench["rows"]]
        if "prepare" in bench:
            lines.append(f"  prepare: {bench['prepare']['seconds_per_video']:.2f} s per video, one process")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
