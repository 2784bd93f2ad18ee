"""Model-only training throughput (clips/s) and peak memory of every Kinetics row (GCNet, arXiv 1904.11492,
Slow-only R50 8x8 with NL / SNL / GC blocks), eager and optionally ``torch.compile``d.

On a GPU: the real size (width 64, 8x224x224 clips, batch 8 per GPU as in the recipe), bf16 autocast,
channels_last_3d (``gcvideo.models.to_channels_last``, as ``model.channels_last: true`` does in training);
peak memory from the CUDA allocator. On a CPU: a small size (default width 8, 8x32x32, batch 8), float32,
each row in its own child process (peak memory = growth of its resident-set high-water mark). Each row
runs SGD steps (forward, backward, update) on random clips, timed in ``--repeats`` blocks of ``--steps``
of which the fastest counts; step time and memory are reported as ratios over slow_r50 from the same run.

``--compile``: the same model is also compiled in place as ``model.compile: true`` does
(``nn.Module.compile(dynamic=False)``); its first two steps (tracing, compiling, any recompile) are timed
apart as the compile time, then warm compiled and eager step blocks are timed alternately (so both see the
same machine load) and the fastest of each counts.

``--profile``: one more profiled pair of eager steps per row, split by operator family (the convolutions by
kind, BN, ReLU, GC/SNL/NL, the optimizer step, the rest; ``gcvideo.models.step_profile``) as shares of the
step, with the model FLOP utilisation (MFU; the peak by GPU name, or ``--peak-tflops``). On CUDA it also
prints the torch, CUDA and cuDNN versions and fails (exit 1, one line naming the kernel) if PyTorch's
native 3D convolution (``slow_conv3d``, ``vol2col``, ...) runs in a bf16 or fp16 step: many times slower
than cuDNN's. ``--levers``: the convolution paths (``gcvideo.models.conv_levers``; default "auto");
``--optimizer-impl``: the optimizer's implementation (``gcvideo.training.optimizer_levers``; default "auto").

    python scripts/bench_train.py                 # GPU if available, else CPU small size
    python scripts/bench_train.py --device cpu --width 8 --size 32 --steps 5
    python scripts/bench_train.py --compile --json bench.json
    python scripts/bench_train.py --profile --rows slow_r50 slow_r50_gc5
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import torch  # noqa: E402

from gcvideo.models.step_profile import (  # noqa: E402
    RANGE_PREFIX,
    format_profile,
    peak_tflops,
    profile_step,
    slow_conv_kernels,
    training_flops,
)
from gcvideo.training.optimizer_levers import MODES, apply_optimizer_impl  # noqa: E402

ROWS = ("slow_r50", "slow_r50_nl5", "slow_r50_snl5", "slow_r50_gc5", "slow_r50_gc_all")


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _peak_mib(device: torch.device, args: argparse.Namespace) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return _rss_mib() - args.base_rss


def _block_seconds(step, device: torch.device, steps: int) -> float:
    _sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(device)
    return time.perf_counter() - start


def bench_row(row: str, args: argparse.Namespace) -> dict:
    """Eager (and with ``--compile``, compiled) clips/s and peak memory of ``row``."""
    from gcvideo.models import channels_last_input, create, to_channels_last

    device = torch.device(args.device)
    torch.manual_seed(0)
    args.base_rss = _rss_mib()
    model = create(row, num_classes=400, width=args.width, conv_levers=args.levers).to(device)
    x = torch.randn(args.batch, 3, args.frames, args.size, args.size, device=device)
    y = torch.randint(0, 400, (args.batch,), device=device)
    if args.channels_last:
        model, x = to_channels_last(model), channels_last_input(x)
    flops = training_flops(model, x.shape) if args.profile else None  # before compiling: count_macs copies it
    sgd = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    opt = apply_optimizer_impl(sgd, args.optimizer_impl)  # as the Classifier trains (model.optimizer_impl)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.precision == "bf16")

    def step(forward) -> None:
        with autocast:
            loss = torch.nn.functional.cross_entropy(forward(x), y)
        loss.backward()
        with torch.autograd.profiler.record_function(RANGE_PREFIX + "optimizer"):
            opt.step()
            opt.zero_grad(set_to_none=True)

    def eager() -> None:
        step(model.forward)  # bypasses the compiled __call__ once the model is compiled

    def compiled() -> None:
        if "reduce-overhead" in args.compile_mode:  # CUDA graphs: this step's outputs may reuse the last's memory
            torch.compiler.cudagraph_mark_step_begin()
        step(model)

    for _ in range(args.warmup):
        eager()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times = {"eager": [_block_seconds(eager, device, args.steps)]}
    result = {"model": row, "peak_mib": _peak_mib(device, args), "params": sum(p.numel() for p in model.parameters())}
    if args.compile:
        model.compile(dynamic=False, mode=args.compile_mode)  # in place, as Classifier(compile=True)
        # The first two steps compile forward and backward (the second one catches a recompile).
        result["compile_s"] = _block_seconds(compiled, device, 2)
        for _ in range(max(0, args.warmup - 2)):
            compiled()
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        times["compiled"] = [_block_seconds(compiled, device, args.steps)]
        if device.type == "cuda":  # on CPU the resident-set high-water mark cannot tell the two apart
            result["compiled_peak_mib"] = _peak_mib(device, args)
    for _ in range(args.repeats - 1):  # alternating, so both see the same machine load; the fastest counts
        for key, run in (("eager", eager), ("compiled", compiled)):
            if key in times:
                times[key].append(_block_seconds(run, device, args.steps))
    result["clips_per_s"] = args.batch * args.steps / min(times["eager"])
    if args.compile:
        result["compiled_clips_per_s"] = args.batch * args.steps / min(times["compiled"])
        result["compiled_speedup"] = result["compiled_clips_per_s"] / result["clips_per_s"]
    if args.profile:
        result["profile"] = profile_step(eager, model)
        result["profile"]["flops"] = flops
    return result


def _child(row: str, args: argparse.Namespace, queue: mp.Queue) -> None:
    torch.set_num_threads(args.threads)
    queue.put(bench_row(row, args))


def main(argv: list[str] | None = None) -> int:
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
    parser.add_argument("--threads", type=int, default=1,
                        help="CPU threads per row (1: more threads on a shared machine make the timings erratic)")
    parser.add_argument("--precision", choices=["bf16", "fp32"], default=None,
                        help="bf16 autocast (default on GPU, as bf16-mixed) or float32 (default on CPU)")
    parser.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None,
                        help="channels_last_3d model and clips (default: on for GPU, off for CPU)")
    parser.add_argument("--cudnn-benchmark", action="store_true",
                        help="torch.backends.cudnn.benchmark = True (the configs leave it off)")
    parser.add_argument("--compile", action="store_true", help="also measure the model compiled in place")
    parser.add_argument("--compile-mode", default="default",
                        help="torch.compile mode with --compile: default (as model.compile: true), reduce-overhead "
                             "(CUDA graphs: no launch cost per kernel, the lever for GC/SNL at batch 8), "
                             "max-autotune-no-cudagraphs, ...")
    parser.add_argument("--levers", default="auto",
                        help="convolution paths: auto, none or kind=path,... (default auto)")
    parser.add_argument("--optimizer-impl", default="auto", choices=list(MODES),
                        help="the optimizer's implementation (gcvideo.training.optimizer_levers; default auto)")
    parser.add_argument("--profile", action="store_true",
                        help="also profile a step by operator family, with MFU (and, on CUDA, the slow-kernel check)")
    parser.add_argument("--peak-tflops", type=float, default=None,
                        help="the device's peak for MFU (default: by GPU name)")
    parser.add_argument("--json", help="also write the rows to this file")
    args = parser.parse_args(argv)
    gpu = args.device.startswith("cuda")
    args.width = args.width or (64 if gpu else 8)
    args.size = args.size or (224 if gpu else 32)
    args.steps = args.steps or (20 if gpu else 5)
    args.warmup = args.warmup if args.warmup is not None else (5 if gpu else 2)
    args.precision = args.precision or ("bf16" if gpu else "fp32")
    args.channels_last = gpu if args.channels_last is None else args.channels_last
    if not gpu and args.width >= 64 and args.size >= 224:
        parser.error("the full-size model is for GPUs; on a CPU use e.g. --width 8 --size 32")
    torch.backends.cudnn.benchmark = args.cudnn_benchmark
    if gpu:
        print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}, "
              f"{torch.cuda.get_device_name()}", flush=True)
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
        compiled = (f"; compiled {result['compiled_clips_per_s']:.1f} clips/s ({result['compiled_speedup']:.2f}x "
                    f"eager) after {result['compile_s']:.0f} s compiling" if args.compile else "")
        print(f"  {row}: {result['clips_per_s']:.1f} clips/s, peak {result['peak_mib']:.0f} MiB{compiled}", flush=True)
        if args.profile:
            dtype = torch.bfloat16 if args.precision == "bf16" else torch.float32
            peak = args.peak_tflops or (peak_tflops(torch.cuda.get_device_name(), dtype) if gpu else None)
            result["profile"]["peak_tflops"] = peak
            print(format_profile(result["profile"], result["profile"]["flops"], peak), flush=True)
    base = next((r for r in rows if r["model"] == "slow_r50"), rows[0])
    for r in rows:
        r["time_ratio"] = base["clips_per_s"] / r["clips_per_s"]  # > 1: slower than the baseline
        r["memory_ratio"] = r["peak_mib"] / base["peak_mib"] if base["peak_mib"] > 0 else float("nan")
        if args.compile:
            r["compiled_time_ratio"] = base["compiled_clips_per_s"] / r["compiled_clips_per_s"]
    device_name = torch.cuda.get_device_name() if gpu else "cpu"
    layout = "channels_last_3d" if args.channels_last else "contiguous"
    threads = "" if gpu else f", {args.threads} threads"
    where = (f"{device_name}, width {args.width}, {args.frames}x{args.size}x{args.size}, batch {args.batch}, "
             f"{args.precision}, {layout}, conv levers {args.levers}, optimizer {args.optimizer_impl}{threads}"
             f"{', cudnn.benchmark' if args.cudnn_benchmark else ''}"
             f"{f', compile mode {args.compile_mode}' if args.compile else ''}")
    print(f"\ntraining step, {where}, torch {torch.__version__}")
    header = "| model | params | clips/s | step time vs baseline | peak MiB | memory vs baseline |"
    rule = "|---|---|---|---|---|---|"
    if args.compile:
        header += " compiled clips/s | compiled vs eager | compiled step time vs baseline | compile s |"
        rule += "---|---|---|---|"
    print(header + "\n" + rule)
    for r in rows:
        line = (f"| {r['model']} | {r['params'] / 1e6:.3f}M | {r['clips_per_s']:.1f} | {r['time_ratio']:.2f}x "
                f"| {r['peak_mib']:.0f} | {r['memory_ratio']:.2f}x |")
        if args.compile:
            line += (f" {r['compiled_clips_per_s']:.1f} | {r['compiled_speedup']:.2f}x | "
                     f"{r['compiled_time_ratio']:.2f}x | {r['compile_s']:.0f} |")
        print(line)
    if args.json:
        versions = {"torch": torch.__version__, "cuda": torch.version.cuda,
                    "cudnn": torch.backends.cudnn.version() if gpu else None}
        with open(args.json, "w") as f:
            json.dump({"setting": where, **versions, "rows": rows}, f, indent=2)
    slow = sorted({k for r in rows for k in slow_conv_kernels(r.get("profile", {}).get("kernels", []))})
    if gpu and args.precision == "bf16" and slow:
        print(f"FAIL: PyTorch's native 3D convolution ran in the bf16 step instead of cuDNN's: {', '.join(slow)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
