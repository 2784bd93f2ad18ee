"""The training step's speed on a GPU in one bounded run (a stage of scripts/gpu_check.sh, about 3.5 minutes):
where a Slow-R50 step's time goes (SlowFast, arXiv 1812.03982; with GCNet's 5 GC blocks, arXiv 1904.11492)
and which convolution lever (``gcvideo.models.conv_levers``) wins on this GPU.

Parts, in order of importance, each a command with its own time cap inside ``--budget``:

1. ``profile``: ``scripts/bench_train.py --profile`` for slow_r50 and slow_r50_gc5 at batch 8 (bf16 autocast,
   channels_last_3d, plain convolutions): the step by operator family with MFU, the torch/CUDA/cuDNN
   versions, and the check that no bf16 convolution runs PyTorch's native (non-cuDNN) kernel: a failure
   there prints one FAIL line naming the kernel and makes this script exit 1 after the other parts.
2. ``convs``: ``scripts/bench_convs.py``: every path of every convolution kind, bf16, both layouts: the
   rows for ``gcvideo.layers.conv_paths.POLICY`` on CUDA.
3. ``optimizers``: ``scripts/bench_optimizers.py``: the optimizer step alone in each implementation
   (for-loop, foreach, fused): the rows for ``gcvideo.training.optimizer_levers.POLICY`` on CUDA.
4. ``levers``: ``scripts/bench_levers.py``: model-only clips/s and MFU of slow_r50 and slow_r50_gc5 at batch
   8 with pytorchvideo's slow_r50, each lever alone and the winners together (``best``), ``auto`` with the
   default and the fused optimizer, then CUDA graphs (``reduce-overhead``) if enough time is left, then
   batch 32 (cut first).

Everything goes into one file, ``<out>/levers-<gpu>-<date>.json`` (commit it as
``docs/benchmarks/gpu-<gpu>-<date>.json``); the parts' output is printed. ``--dry`` runs the same parts on
the CPU at a tiny size (the test suite does).

    python scripts/gpu_levers.py --out $OUT [--budget 205]
    python scripts/gpu_levers.py --dry --out /tmp/levers
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--device", "cpu", "--width", "4", "--size", "32", "--frames", "4"]


def parts(dry: bool) -> list[tuple[str, float, list[str]]]:
    """(name, time cap in seconds, arguments after the script) of each part, most important first."""
    if dry:
        return [
            ("profile", 120, ["bench_train.py", *TINY, "--rows", "slow_r50_gc5", "--batch", "2",
                              "--steps", "1", "--repeats", "1", "--warmup", "1", "--profile", "--levers", "none"]),
            ("convs", 60, ["bench_convs.py", *TINY, "--batch", "2", "--repeats", "1"]),
            ("optimizers", 60, ["bench_optimizers.py", "--device", "cpu", "--width", "4", "--rounds", "1",
                                "--steps", "1", "--warmup", "0"]),
            ("levers", 120, ["bench_levers.py", *TINY, "--batches", "2", "--layouts", "channels_last", "contiguous",
                             "--variants", "reference", "none", "auto", "singles", "best", "--rounds", "1",
                             "--warmup", "1", "--optimizers", "plain", "fused"]),
        ]
    return [
        ("profile", 50, ["bench_train.py", "--rows", "slow_r50", "slow_r50_gc5", "--batch", "8", "--steps", "10",
                         "--repeats", "2", "--profile", "--levers", "none", "--optimizer-impl", "plain"]),
        ("convs", 35, ["bench_convs.py", "--device", "cuda"]),
        ("optimizers", 25, ["bench_optimizers.py", "--device", "cuda"]),
        ("levers", 600, ["bench_levers.py", "--device", "cuda", "--compile-modes", "eager", "reduce-overhead",
                         "--optimizers", "plain", "fused"]),
    ]


def machine() -> dict:
    import torch

    cuda = torch.cuda.is_available()
    return {"gpu": torch.cuda.get_device_name() if cuda else None, "torch": torch.__version__,
            "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version() if cuda else None,
            "cpu_cores": os.cpu_count(), "date": datetime.date.today().isoformat()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=os.environ.get("OUT") or None, help="results folder (default $OUT or scratch)")
    parser.add_argument("--budget", type=float, default=205, help="seconds for all parts (default 205)")
    parser.add_argument("--dry", action="store_true", help="the same parts on the CPU at a tiny size")
    args = parser.parse_args(argv)
    scratch = Path(tempfile.mkdtemp(prefix="gcvideo_levers_"))  # the parts' own files
    out = Path(args.out or scratch)
    out.mkdir(parents=True, exist_ok=True)
    info = machine()
    slug = re.sub(r"[^a-z0-9]+", "-", (info["gpu"] or "cpu").lower()).strip("-")
    result: dict = {"machine": info, "parts": {}}
    target = out / f"levers-{slug}-{info['date']}.json"
    deadline, failed = time.monotonic() + args.budget, False
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}".rstrip(os.pathsep)}
    print(f"machine: {info}", flush=True)
    for name, cap, command in parts(args.dry):
        left = deadline - time.monotonic()
        if left < 15:
            print(f"skip {name}: out of time", flush=True)
            result["parts"][name] = {"status": "skipped"}
            continue
        timeout = min(cap, left)
        json_path = scratch / f"{name}.json"
        command = [sys.executable, str(ROOT / "scripts" / command[0]), *command[1:], "--json", str(json_path)]
        if name == "levers":  # it stops starting rows in time by itself
            command += ["--budget", str(max(10.0, timeout - 15))]
        print(f"[{name}] up to {timeout:.0f} s: {' '.join(command[1:])}", flush=True)
        start = time.monotonic()
        with open(scratch / f"{name}.log", "w") as log:
            try:
                code = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env=env,
                                      timeout=timeout).returncode
            except subprocess.TimeoutExpired:
                code = 124
        text = (scratch / f"{name}.log").read_text(errors="replace")
        print("\n".join(line for line in text.splitlines() if line.strip() and "warn" not in line.lower()), flush=True)
        status = "ok" if code == 0 else "timeout" if code == 124 else f"exit {code}"
        failed |= name == "profile" and "FAIL:" in text
        entry = {"status": status, "seconds": round(time.monotonic() - start, 1)}
        if json_path.is_file():
            entry["result"] = json.loads(json_path.read_text())
        result["parts"][name] = entry
        target.write_text(json.dumps(result, indent=2) + "\n")
    print(f"results: {target}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
