"""Benchmark the GC, SNL and NL blocks (GCNet, arXiv 1904.11492) against pytorchvideo's NonLocal.

At the res3 and res4 feature sizes of Slow-R50 8x8 (batch 2: 512x8x28x28 and 1024x8x14x14), times the
forward pass (inference, no_grad) and forward+backward (training mode), and measures the peak memory of
one pass above what was live before it. pytorchvideo's NonLocal runs on the same weights as our NL block
(checked equal), so every ratio comes from one run on one machine.

Peak memory: on CUDA, ``torch.cuda.max_memory_allocated`` (tensors only). On CPU, the rise of the
process's resident-set high-water mark (VmHWM, reset through /proc/self/clear_refs) over the resident
size before the pass; glibc's mmap threshold is pinned to 64 KiB so every large tensor is mapped on
allocation and unmapped on free, which makes the high-water mark track live tensors (plus kernel
scratch buffers, which is what we want to see).

Usage: python scripts/bench_blocks.py [--device cpu|cuda] [--dtype float32|bfloat16] [--repeat N]
       [--sizes res3,res4] [--quick]
"""

from __future__ import annotations

import argparse
import ctypes
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Callable, Optional

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import torch  # noqa: E402
from torch import nn  # noqa: E402

from gcvideo.layers import GlobalContextBlock, NonLocalBlock, SimplifiedNonLocalBlock  # noqa: E402

SIZES = {"res3": (2, 512, 8, 28, 28), "res4": (2, 1024, 8, 14, 14)}  # (B, C, T, H, W) of Slow-R50 8x8
QUICK = {"res3": (2, 64, 2, 14, 14), "res4": (2, 128, 2, 8, 8)}
MiB = 2**20


def _pin_mmap_threshold() -> None:
    """Make glibc mmap every allocation >= 64 KiB (and unmap it on free): RSS then follows live tensors."""
    try:
        ctypes.CDLL("libc.so.6").mallopt(-3, 64 * 1024)  # M_MMAP_THRESHOLD
    except OSError:
        pass


def _status_bytes(field: str) -> int:
    text = Path("/proc/self/status").read_text()
    return int(re.search(rf"{field}:\s+(\d+) kB", text).group(1)) * 1024


def measure_peak(run: Callable[[], None], device: torch.device) -> Optional[float]:
    """Peak memory (MiB) of one call of ``run`` above what was live before it; None if unmeasurable."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        run()
        torch.cuda.synchronize(device)
        return (torch.cuda.max_memory_allocated(device) - base) / MiB
    try:
        base = _status_bytes("VmRSS")
        Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    except OSError:
        return None
    run()
    return (_status_bytes("VmHWM") - base) / MiB


def measure_time(run: Callable[[], None], device: torch.device, repeat: int) -> float:
    """Median wall time (ms) of ``repeat`` calls after one warm-up call."""
    run()
    times = []
    for _ in range(repeat):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        run()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def build_blocks(channels: int) -> dict[str, nn.Module]:
    """Our blocks (3D, Kinetics settings) and pytorchvideo's NonLocal sharing our NL weights."""
    from pytorchvideo.layers.nonlocal_net import create_nonlocal

    blocks: dict[str, nn.Module] = {
        "gc_r4": GlobalContextBlock(channels, dim=3, ratio=1 / 4),
        "snl": SimplifiedNonLocalBlock(channels, dim=3),
    }
    for inst in ("softmax", "dot_product"):
        ours = NonLocalBlock(channels, dim=3, instantiation=inst)
        nn.init.normal_(ours.norm.weight, std=0.1)  # non-zero gamma: the attention path matters
        ref = create_nonlocal(dim_in=channels, dim_inner=channels // 2, pool_size=(1, 2, 2), instantiation=inst)
        ref.load_state_dict(ours.state_dict(), strict=True)
        blocks[f"nl_{inst}"] = ours
        blocks[f"pytorchvideo_nl_{inst}"] = ref
    return blocks


def sdpa_kernels(block: nn.Module, x: torch.Tensor) -> str:
    """Names of the scaled-dot-product-attention kernels one forward of ``block`` dispatches to."""
    activities = [torch.profiler.ProfilerActivity.CPU]
    with torch.profiler.profile(activities=activities) as prof, torch.no_grad():
        block(x)
    names = sorted({e.key for e in prof.key_averages() if e.key.startswith("aten::_scaled_dot_product")})
    return ", ".join(names) or "none"


def bench_size(name: str, shape: tuple[int, ...], args: argparse.Namespace) -> None:
    device, dtype = torch.device(args.device), getattr(torch, args.dtype)
    blocks = {k: b.to(device=device, dtype=dtype) for k, b in build_blocks(shape[1]).items()}
    x = torch.randn(shape, device=device, dtype=dtype)
    with torch.no_grad():
        for inst in ("softmax", "dot_product"):
            ours, ref = blocks[f"nl_{inst}"].eval(), blocks[f"pytorchvideo_nl_{inst}"].eval()
            diff = (ours(x) - ref(x)).abs().max().item()
            print(f"[{name}] nl_{inst} vs pytorchvideo on the same weights: max |diff| = {diff:.2e}")
    print(f"[{name}] nl_softmax SDPA kernel: {sdpa_kernels(blocks['nl_softmax'], x)}")

    rows = {}
    for key, block in blocks.items():
        xg = x.clone().requires_grad_()

        def forward(block: nn.Module = block) -> None:
            block.eval()
            with torch.no_grad():
                block(x)

        def train_step(block: nn.Module = block, xg: torch.Tensor = xg) -> None:
            block.train()
            block.zero_grad(set_to_none=True)
            xg.grad = None
            block(xg).float().square().mean().backward()

        rows[key] = (
            measure_time(forward, device, args.repeat),
            measure_time(train_step, device, args.repeat),
            measure_peak(forward, device),
            measure_peak(train_step, device),
        )

    def fmt(v: Optional[float], ref: Optional[float]) -> str:
        if v is None:
            return f"{'n/a':>17}"
        ratio = f"({v / ref:.2f}x)" if ref else "(  -  )"
        return f"{v:9.1f} {ratio:>7}"

    print(f"\n[{name}] B,C,T,H,W = {shape} on {device} {args.dtype}; ratio = ours / pytorchvideo NonLocal "
          "(same instantiation for NL rows, softmax NL for GC/SNL)")
    print(f"{'block':<28}{'fwd ms':>17}{'fwd+bwd ms':>18}{'fwd peak MiB':>18}{'fwd+bwd peak MiB':>18}")
    for key, row in rows.items():
        ref_key = f"pytorchvideo_nl_{'dot_product' if key.endswith('dot_product') else 'softmax'}"
        ref_row = rows[ref_key]
        print(f"{key:<28}" + " ".join(fmt(v, r) for v, r in zip(row, ref_row)))
    print()


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    parser.add_argument("--repeat", type=int, default=3, help="timed calls per case (median; after 1 warm-up)")
    parser.add_argument("--sizes", default="res3,res4", help="comma-separated subset of res3,res4")
    parser.add_argument("--quick", action="store_true", help="small inputs (smoke test)")
    args = parser.parse_args(argv)
    sizes = [s.strip() for s in args.sizes.split(",") if s.strip()]
    bad = [s for s in sizes if s not in SIZES]
    if bad or not sizes:
        parser.error(f"--sizes must be a comma-separated subset of {sorted(SIZES)}, got {args.sizes!r}")
    if args.repeat < 1:
        parser.error("--repeat must be >= 1")
    if torch.device(args.device).type == "cpu":
        _pin_mmap_threshold()
    torch.manual_seed(0)
    for name in sizes:
        bench_size(name, (QUICK if args.quick else SIZES)[name], args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
