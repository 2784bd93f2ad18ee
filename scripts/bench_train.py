"""Training throughput (clips/s) and peak memory of every Kinetics row (PAPER.md, Slow-only R50 8x8).

On a GPU: the real size (width 64, 8x224x224 clips, batch 8 per GPU as in the recipe), bf16 autocast,
channels_last_3d, optionally ``--compile``; peak memory from the CUDA allocator. On a CPU: a small size
(default width 8, 8x32x32, batch 8), float32; peak memory is the growth of the process's resident-set
high-water mark, each row measured in its own child process. Each row runs SGD steps (forward, backward,
update) on random clips, timed in ``--repeats`` blocks of which the fastest counts; GC's overhead is reported as a ratio over the baseline from the same run.

    python scripts/bench_train.py                 # GPU if available, else CPU small size
    python scripts/bench_train.py --device cpu --width 8 --size 32 --steps 5
    python scripts/bench_train.py --compile --json bench.json
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import time

import torch

ROWS = ("slow_r50", "slow_r50_nl5", "slow_r50_snl5", "slow_r50_gc5", "slow_r50_gc_all")


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def bench_row(row: str, args: argparse.Namespace) -> dict:
    """Clips/s and peak memory of ``args.steps`` timed training steps of ``row`` (after warm-up steps)."""
    from gcvideo.models import create

    device = torch.device(args.device)
    torch.manual_seed(0)
    base_rss = _rss_mib()
    model = create(row, num_classes=400, width=args.width).to(device)
    x = torch.randn(args.batch, 3, args.frames, args.size, args.size, device=device)
    y = torch.randint(0, 400, (args.batch,), device=device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last_3d)
        x = x.contiguous(memory_format=torch.channels_last_3d)
    step_model = torch.compile(model) if args.compile else model
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")

    def step() -> None:
        with autocast:
            loss = torch.nn.functional.cross_entropy(step_model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(args.warmup):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    seconds = float("inf")
    for _ in range(args.repeats):  # the fastest repeat: the least disturbed by other processes
        start = time.perf_counter()
        for _ in range(args.steps):
            step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds = min(seconds, time.perf_counter() - start)
    peak = torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda" else _rss_mib() - base_rss
    return {"model": row, "clips_per_s": args.batch * args.steps / seconds, "peak_mib": peak,
            "params": sum(p.numel() for p in model.parameters())}


def _child(row: str, args: argparse.Namespace, queue: mp.Queue) -> None:
    torch.set_num_threads(args.threads)
    queue.put(bench_row(row, args))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--rows", nargs="+", default=list(ROWS), choices=ROWS)
    parser.add_argument("--width", type=int, default=None, help="default: 64 on GPU, 8 on CPU")
    parser.add_argument("--size", type=int, default=None, help="crop side; default: 224 on GPU, 32 on CPU")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--batch", type=int, default=8, help="clips per step (8 per GPU in the recipe)")
    parser.add_argument("--steps", type=int, default=None, help="timed steps (default: 20 on GPU, 5 on CPU)")
    parser.add_argument("--repeats", type=int, default=3, help="timed blocks of --steps; the fastest counts")
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps first (default: 5 GPU, 2 CPU)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="CPU threads")
    parser.add_argument("--compile", action="store_true", help="torch.compile the model")
    parser.add_argument("--json", help="also write the rows to this file")
    args = parser.parse_args()
    gpu = args.device.startswith("cuda")
    args.width = args.width or (64 if gpu else 8)
    args.size = args.size or (224 if gpu else 32)
    args.steps = args.steps or (20 if gpu else 5)
    args.warmup = args.warmup if args.warmup is not None else (5 if gpu else 2)
    if not gpu and args.width >= 64 and args.size >= 224:
        parser.error("the full-size model is for GPUs; on a CPU use e.g. --width 8 --size 32")
    rows = []
    for row in args.rows:
        if gpu:
            result = bench_row(row, args)
            torch.cuda.empty_cache()
        else:  # a fresh process per row, so each peak RSS is its own
            queue: mp.Queue = mp.get_context("spawn").Queue()
            proc = mp.get_context("spawn").Process(target=_child, args=(row, args, queue))
            proc.start()
            result = queue.get()
            proc.join()
        rows.append(result)
        print(f"  {row}: {result['clips_per_s']:.1f} clips/s, peak {result['peak_mib']:.0f} MiB", flush=True)
    base = next((r for r in rows if r["model"] == "slow_r50"), rows[0])
    for r in rows:
        r["time_ratio"] = base["clips_per_s"] / r["clips_per_s"]  # > 1: slower than the baseline
        r["memory_ratio"] = r["peak_mib"] / base["peak_mib"] if base["peak_mib"] > 0 else float("nan")
    where = (f"{args.device}, width {args.width}, {args.frames}x{args.size}x{args.size}, batch {args.batch}, "
             f"{'bf16, channels_last_3d' if gpu else f'float32, {args.threads} threads'}"
             f"{', compiled' if args.compile else ''}")
    print(f"\ntraining step, {where}")
    print("| model | params | clips/s | step time vs baseline | peak MiB | memory vs baseline |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['params'] / 1e6:.3f}M | {r['clips_per_s']:.1f} | {r['time_ratio']:.2f}x "
              f"| {r['peak_mib']:.0f} | {r['memory_ratio']:.2f}x |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"setting": where, "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
