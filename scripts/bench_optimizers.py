"""The optimizer step of a training step, alone: SGD (momentum, Nesterov, weight decay, as the recipes),
AdamW and Adam over the parameters of Slow-R50 (SlowFast, arXiv 1812.03982; 32.5M at width 64) in each
implementation PyTorch has (for-loop, foreach, fused), as the table behind
``gcvideo.training.optimizer_levers.POLICY``.

Every implementation of a class steps the same parameters with fresh gradients; the implementations
alternate in ``--rounds`` rounds of ``--steps`` steps (so the machine's load hits them alike) and the median
round counts (CPU time of the process on a CPU, wall time on a GPU). Each row shows the time per step as a
multiple of PyTorch's default implementation on the device (for-loop on a CPU, foreach on CUDA) and the
implementation the policy picks (``<- policy``).

    python scripts/bench_optimizers.py --device cpu
    python scripts/bench_optimizers.py --device cuda --json optimizers.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import torch  # noqa: E402

from gcvideo.models import create  # noqa: E402
from gcvideo.training.optimizer_levers import apply_optimizer_impl, implementation_name  # noqa: E402

SETTINGS = {
    "SGD": (torch.optim.SGD, {"lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 1e-4}),
    "AdamW": (torch.optim.AdamW, {"lr": 1e-3, "weight_decay": 0.05}),
    "Adam": (torch.optim.Adam, {"lr": 1e-3}),
}
IMPLEMENTATIONS = {"for-loop": {"foreach": False}, "foreach": {"foreach": True}, "fused": {"fused": True}}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(name: str, params: list[torch.nn.Parameter], args: argparse.Namespace) -> dict:
    """Seconds per step of each implementation of optimizer ``name`` (median round) and the policy's pick."""
    cls, settings = SETTINGS[name]
    device = params[0].device
    optimizers = {impl: cls(params, **settings, **kw) for impl, kw in IMPLEMENTATIONS.items()}
    clock = time.perf_counter if device.type == "cuda" else time.process_time
    times: dict[str, list[float]] = {impl: [] for impl in optimizers}
    for round_index in range(args.warmup + args.rounds):
        for impl, optimizer in optimizers.items():
            _sync(device)
            start = clock()
            for _ in range(args.steps):
                optimizer.step()
            _sync(device)
            if round_index >= args.warmup:
                times[impl].append((clock() - start) / args.steps)
    default = implementation_name(cls(params, **settings))
    ms = {impl: statistics.median(t) * 1e3 for impl, t in times.items()}
    return {"optimizer": name, "ms": ms, "default": default, "vs_default": {k: v / ms[default] for k, v in ms.items()},
            "policy": implementation_name(apply_optimizer_impl(cls(params, **settings), "auto"))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--model", default="slow_r50")
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--optimizers", nargs="+", choices=list(SETTINGS), default=list(SETTINGS))
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=None, help="steps per round (default 2 CPU, 20 CUDA)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed rounds first")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (1: steadier on a shared machine)")
    parser.add_argument("--json", help="also write the table to this file")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    args.steps = args.steps or (20 if device.type == "cuda" else 2)
    threads = torch.get_num_threads()
    if device.type == "cpu":
        torch.set_num_threads(args.threads)
    params = list(create(args.model, num_classes=400, width=args.width).to(device).parameters())
    for p in params:
        p.grad = torch.randn_like(p)
    count = sum(p.numel() for p in params)
    where = (f"{torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu'}"
             f"{'' if device.type == 'cuda' else f', {args.threads} thread(s)'}, {args.model} width {args.width} "
             f"({count / 1e6:.1f}M parameters, {len(params)} tensors), torch {torch.__version__}")
    rows = [measure(name, params, args) for name in args.optimizers]
    torch.set_num_threads(threads)
    print(f"optimizer step alone, {where}")
    print(f"{'optimizer':<10}" + "".join(f"{impl:>22}" for impl in IMPLEMENTATIONS))
    for row in rows:
        cells = []
        for impl in IMPLEMENTATIONS:
            mark = " <- policy" if impl == row["policy"] else ""
            cells.append(f"{row['ms'][impl]:7.1f} ms {row['vs_default'][impl]:4.2f}x{mark}".rjust(22))
        print(f"{row['optimizer']:<10}" + "".join(cells) + f"   (x the default, {row['default']})")
    if args.json:
        Path(args.json).write_text(json.dumps({"setting": where, "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
