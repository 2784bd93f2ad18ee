"""Benchmark the GC, SNL and NL blocks (GCNet, arXiv 1904.11492) at the res3/res4 sizes of Slow-R50 8x8.

Two tables per size (B x 512x8x28x28 and B x 1024x8x14x14; batch 2 by default, the recipe's 8 with
``--batch 8``), forward (no_grad) and forward+backward (training mode, a fixed output gradient):

1. GC and SNL against the bandwidth floor on the same tensor, in both memory layouts (contiguous and
   channels_last_3d): the floor is ``y = x * a + b`` with per-channel ``a``, ``b`` and gradients for all
   three, about the least a block that reads x and writes a same-sized output can cost. Goal: GC and SNL
   forward+backward within 3x of it. Per training step (torch profiler): the aten operators the host
   dispatches and those of them that compute (each a kernel launch on a GPU); on CUDA also the kernels
   launched and the GPU's busy time, against the floor's. A block near the floor in GPU time but not in
   step time is bound by its launches (the GPU waits for the host), not by its bytes.
2. The NL block (softmax and dot product) along every attention path of
   ``gcvideo.layers.attention_paths`` next to pytorchvideo's NonLocal on the same weights (outputs checked
   equal): time and peak memory as ratios to pytorchvideo, and the path the policy picks (``<- policy``).
   A path that does not apply (e.g. the flash kernel for head dim 512) prints "n/a".

Precision: ``--dtype float32``, or bfloat16/float16 with ``--precision autocast`` (the default: float32
weights, low-precision activations, autocast on, as in training) or ``cast`` (weights and activations
cast). Times are the minimum over ``--repeat`` calls after one warm-up (the least disturbed by other
processes). Peak memory: on CUDA, ``torch.cuda.max_memory_allocated``
above what was live before the pass; on CPU, the rise of the resident-set high-water mark (VmHWM, reset
through /proc/self/clear_refs) with glibc's mmap threshold pinned to 64 KiB so that it tracks live
tensors (kernel scratch included); the CPU timings come after, from a heap that caches freed memory. The JSON has the rows under ``sizes.<res>.pooling`` and ``.nl``.

Usage: python scripts/bench_blocks.py [--device cpu|cuda] [--dtype float32|bfloat16|float16]
       [--precision autocast|cast] [--batch 2] [--sizes res3,res4] [--repeat 5] [--threads N]
       [--nl-layout contiguous|channels_last] [--parts pooling,nl] [--quick] [--json FILE]
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import ctypes
import json
import re
import sys
import time
from pathlib import Path
from typing import Callable, Optional

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import torch  # noqa: E402
from torch import nn  # noqa: E402

from gcvideo.layers import GlobalContextBlock, NonLocalBlock, SimplifiedNonLocalBlock  # noqa: E402
from gcvideo.layers.attention_paths import PATHS, choose_path  # noqa: E402

SIZES = {"res3": (512, 8, 28, 28), "res4": (1024, 8, 14, 14)}  # (C, T, H, W) of Slow-R50 8x8
QUICK = {"res3": (64, 2, 14, 14), "res4": (128, 2, 8, 8)}
LAYOUTS = {"contiguous": torch.contiguous_format, "channels_last": torch.channels_last_3d}
MiB = 2**20


def _libc() -> Optional[ctypes.CDLL]:
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None


def _pin_mmap_threshold() -> None:
    """Make glibc mmap every allocation >= 64 KiB (and unmap it on free): RSS then follows live tensors."""
    if _libc() is not None:
        _libc().mallopt(-3, 64 * 1024)  # M_MMAP_THRESHOLD


def _cache_heap() -> None:
    """Serve allocations up to 32 MiB (glibc's maximum) from a heap that is never trimmed: freed tensors
    are reused without faulting their pages in again, as a caching allocator (CUDA's) does."""
    if _libc() is not None:
        _libc().mallopt(-3, 32 * MiB)  # M_MMAP_THRESHOLD
        _libc().mallopt(-1, 2**30)  # M_TRIM_THRESHOLD


def _status_bytes(field: str) -> int:
    text = Path("/proc/self/status").read_text()
    return int(re.search(rf"{field}:\s+(\d+) kB", text).group(1)) * 1024


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure_peak(run: Callable[[], None], device: torch.device) -> Optional[float]:
    """Peak memory (MiB) of one call of ``run`` above what was live before it; None if unmeasurable."""
    if device.type == "cuda":
        _sync(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        run()
        _sync(device)
        return (torch.cuda.max_memory_allocated(device) - base) / MiB
    try:
        base = _status_bytes("VmRSS")
        Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    except OSError:
        return None
    run()
    return (_status_bytes("VmHWM") - base) / MiB


def measure_time(run: Callable[[], None], device: torch.device, repeat: int) -> float:
    """Minimum wall time (ms) of ``repeat`` calls after one warm-up call."""
    run()
    best = float("inf")
    for _ in range(repeat):
        _sync(device)
        start = time.perf_counter()
        run()
        _sync(device)
        best = min(best, (time.perf_counter() - start) * 1e3)
    return best


class Inputs:
    """One input tensor, its training copy and a fixed output gradient, shared by the cases that use it."""

    def __init__(self, x: torch.Tensor) -> None:
        self.x = x
        self.xg = x.detach().clone().requires_grad_()
        self._grads = {x.dtype: torch.randn_like(x)}

    def grad(self, dtype: torch.dtype) -> torch.Tensor:
        if dtype not in self._grads:  # pytorchvideo's output is float32 under autocast
            self._grads[dtype] = self._grads[self.x.dtype].to(dtype)
        return self._grads[dtype]


class Case:
    """One module on one input: forward / forward+backward runs in the benchmark's precision."""

    def __init__(self, module: nn.Module, inputs: Inputs, args: argparse.Namespace) -> None:
        self.module, self.inputs, self.args = module, inputs, args

    def autocast(self) -> contextlib.AbstractContextManager:
        x = self.inputs.x
        low = x.dtype != torch.float32 and self.args.precision == "autocast"
        return torch.autocast(x.device.type, dtype=x.dtype, enabled=low)

    def forward(self) -> None:
        self.module.eval()
        with torch.no_grad(), self.autocast():
            self.module(self.inputs.x)

    def train_step(self) -> None:
        self.module.train()
        self.module.zero_grad(set_to_none=True)
        self.inputs.xg.grad = None
        with self.autocast():
            out = self.module(self.inputs.xg)
        out.backward(self.inputs.grad(out.dtype))

    def times(self, device: torch.device) -> dict[str, float]:
        return {"fwd_ms": measure_time(self.forward, device, self.args.repeat),
                "fwd_bwd_ms": measure_time(self.train_step, device, self.args.repeat)}

    def launches(self, device: torch.device, steps: int = 5) -> dict[str, Optional[float]]:
        """Per training step: the operators the host dispatches (top-level aten calls, forward and backward)
        and, on CUDA, the kernels and copies launched and the GPU's time running them. A block whose GPU
        time is near the floor's but whose step time is not costs its launches, not its bytes."""
        from torch.autograd import DeviceType
        from torch.profiler import ProfilerActivity, profile

        cuda = device.type == "cuda"
        self.train_step()
        _sync(device)
        with profile(activities=[ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])) as prof:
            for _ in range(steps):
                self.train_step()
            _sync(device)
        events = prof.events()
        ops = [e for e in events if e.device_type == DeviceType.CPU and _top_level_aten(e)]
        row: dict[str, Optional[float]] = {"ops_per_step": len(ops) / steps,
                                           "computing_ops_per_step": sum(map(_runs_kernel, ops)) / steps}
        if cuda:
            kernels = [e for e in events if e.device_type == DeviceType.CUDA]
            row["kernels_per_step"] = len(kernels) / steps
            row["gpu_ms"] = sum(e.time_range.elapsed_us() for e in kernels) / steps / 1e3
        return row

    def peaks(self, device: torch.device) -> dict[str, Optional[float]]:
        self.forward()  # warm-up: one-time allocations (kernel caches, lazy init) are not the pass's
        fwd = measure_peak(self.forward, device)
        self.train_step()
        return {"fwd_peak_mib": fwd, "fwd_bwd_peak_mib": measure_peak(self.train_step, device)}


# Operators that only make views, allocate or return their input: no kernel of their own.
NO_KERNEL = {f"aten::{op}" for op in (
    "view", "_unsafe_view", "as_strided", "unsqueeze", "squeeze", "expand", "expand_as", "permute", "transpose",
    "t", "numpy_T", "mT", "reshape", "flatten", "unflatten", "movedim", "select", "slice", "narrow", "detach",
    "alias", "view_as", "to", "contiguous", "empty", "empty_strided", "empty_like", "resolve_conj",
    "resolve_neg", "lift_fresh", "split", "chunk", "unbind", "promote_types", "result_type", "size", "stride",
    "is_same_size", "is_nonzero")}


def _runs_kernel(event) -> bool:
    """Whether an aten operator computes (a kernel launch on a GPU): any operator not in ``NO_KERNEL``, or one
    in it that calls such an operator (``to`` that converts, ``reshape`` that copies)."""
    if event.name not in NO_KERNEL:
        return True
    return any(_runs_kernel(child) for child in event.cpu_children if child.name.startswith("aten::"))


def _top_level_aten(event) -> bool:
    """An aten operator called from Python or autograd, not from inside another aten operator."""
    if not event.name.startswith("aten::"):
        return False
    parent = event.cpu_parent
    while parent is not None:
        if parent.name.startswith("aten::"):
            return False
        parent = parent.cpu_parent
    return True


class Floor(nn.Module):
    """``y = x * a + b`` with per-channel ``a``, ``b`` in the activations' dtype: the bandwidth floor."""

    def __init__(self, channels: int, dtype: torch.dtype) -> None:
        super().__init__()
        self.a = nn.Parameter(torch.randn(1, channels, 1, 1, 1, dtype=dtype))
        self.b = nn.Parameter(torch.randn(1, channels, 1, 1, 1, dtype=dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.a + self.b


def _randomise(block: nn.Module) -> nn.Module:
    with torch.no_grad():
        for p in block.parameters():
            p.normal_(0.0, 0.05)
    return block


def _activations(shape: tuple[int, ...], layout: str, args: argparse.Namespace) -> Inputs:
    x = torch.randn(shape, device=args.device, dtype=getattr(torch, args.dtype))
    return Inputs(x.contiguous(memory_format=LAYOUTS[layout]))


def _weights_dtype(args: argparse.Namespace) -> torch.dtype:
    return torch.float32 if args.precision == "autocast" else getattr(torch, args.dtype)


Cases = list[tuple[dict, Case]]


def pooling_cases(shape: tuple[int, ...], args: argparse.Namespace) -> Cases:
    """The floor, GC and SNL, in both layouts."""
    device, channels = torch.device(args.device), shape[1]
    blocks = {"gc_r4": GlobalContextBlock(channels, dim=3, ratio=1 / 4),
              "snl": SimplifiedNonLocalBlock(channels, dim=3)}
    blocks = {k: _randomise(b).to(device=device, dtype=_weights_dtype(args)) for k, b in blocks.items()}
    cases = []
    for layout in LAYOUTS:
        inputs = _activations(shape, layout, args)
        floor = Floor(channels, inputs.x.dtype).to(device)
        cases.append(({"block": "floor", "layout": layout}, Case(floor, inputs, args)))
        cases += [({"block": key, "layout": layout}, Case(block, inputs, args)) for key, block in blocks.items()]
    return cases


def nl_cases(shape: tuple[int, ...], args: argparse.Namespace) -> Cases:
    """pytorchvideo's NonLocal and our NL along every attention path, on the same weights."""
    from pytorchvideo.layers.nonlocal_net import create_nonlocal

    device, channels = torch.device(args.device), shape[1]
    inputs = _activations(shape, args.nl_layout, args)
    x = inputs.x
    policy = choose_path(device.type, x.dtype, channels // 2)
    cases = []
    for inst in ("softmax", "dot_product"):
        ours = _randomise(NonLocalBlock(channels, dim=3, instantiation=inst)).to(device, _weights_dtype(args))
        ref = create_nonlocal(dim_in=channels, dim_inner=channels // 2, pool_size=(1, 2, 2), instantiation=inst)
        ref.load_state_dict(ours.state_dict(), strict=True)
        reference = Case(ref.to(device, _weights_dtype(args)), inputs, args)
        cases.append(({"block": f"pytorchvideo_nl_{inst}", "path": "-"}, reference))
        with torch.no_grad(), reference.autocast():
            expected = ref.eval()(x).float()
        for path in PATHS if inst == "softmax" else ("-",):
            block = copy.deepcopy(ours)
            block.softmax_path = "auto" if path == "-" else path
            row = {"block": f"nl_{inst}", "path": path, "policy": path == policy}
            try:
                with torch.no_grad(), reference.autocast():
                    row["max_abs_diff"] = (block.eval()(x).float() - expected).abs().max().item()
            except RuntimeError as error:  # the kernel does not apply to this device/dtype/head dim
                row["error"] = str(error).splitlines()[0][:200]
            cases.append((row, Case(block, inputs, args)))
    return cases


def print_pooling(name: str, shape: tuple[int, ...], rows: list[dict], args: argparse.Namespace) -> None:
    floors = {r["layout"]: r for r in rows if r["block"] == "floor"}
    for r in rows:
        floor = floors[r["layout"]]
        r["fwd_x_floor"] = r["fwd_ms"] / floor["fwd_ms"]
        r["fwd_bwd_x_floor"] = r["fwd_bwd_ms"] / floor["fwd_bwd_ms"]
        if r.get("gpu_ms") and floor.get("gpu_ms"):
            r["gpu_x_floor"] = r["gpu_ms"] / floor["gpu_ms"]
    print(f"\n[{name}] GC and SNL vs the floor y = x * a + b (same tensor, same layout), {_where(shape, args)}")
    cuda = any("gpu_ms" in r for r in rows)
    print(f"{'block':<8}{'layout':<15}{'fwd ms':>9}{'x floor':>9}{'f+b ms':>9}{'x floor':>9}"
          f"{'fwd peak MiB':>14}{'f+b peak MiB':>14}{'ops/step':>10}{'computing':>11}"
          + (f"{'kernels':>9}{'GPU ms':>9}{'x floor':>9}" if cuda else ""))
    for r in rows:
        peaks = "".join(f"{v:>14.1f}" if v is not None else f"{'n/a':>14}"
                        for v in (r["fwd_peak_mib"], r["fwd_bwd_peak_mib"]))
        launches = f"{r['ops_per_step']:>10.0f}{r['computing_ops_per_step']:>11.0f}" if "ops_per_step" in r \
            else f"{'n/a':>21}"
        if cuda:
            launches += (f"{r['kernels_per_step']:>9.0f}{r['gpu_ms']:>9.3f}{r.get('gpu_x_floor', 0):>8.2f}x"
                         if "gpu_ms" in r else f"{'n/a':>27}")
        print(f"{r['block']:<8}{r['layout']:<15}{r['fwd_ms']:>9.2f}{r['fwd_x_floor']:>8.2f}x"
              f"{r['fwd_bwd_ms']:>9.2f}{r['fwd_bwd_x_floor']:>8.2f}x" + peaks + launches)
        if "launches_error" in r:
            print(f"  ({r['block']} {r['layout']}: no launch count: {r['launches_error']})")


def print_nl(name: str, shape: tuple[int, ...], rows: list[dict], args: argparse.Namespace) -> None:
    policy = next((r["path"] for r in rows if r.get("policy")), "?")
    refs = {r["block"]: r for r in rows if r["block"].startswith("pytorchvideo")}
    keys = ("fwd_ms", "fwd_bwd_ms", "fwd_peak_mib", "fwd_bwd_peak_mib")
    for r in rows:
        ref = refs[r["block"].replace("nl_", "pytorchvideo_nl_", 1)] if r["block"].startswith("nl_") else None
        for key in keys if ref and "error" not in r else ():
            mine, theirs = r[key], ref[key]
            r[key.replace("_ms", "").replace("_mib", "") + "_ratio"] = mine / theirs if mine and theirs else None
    print(f"\n[{name}] NL vs pytorchvideo's NonLocal (same weights), {_where(shape, args, args.nl_layout)}; "
          f"policy: {policy!r} (head dim {shape[1] // 2})")
    print(f"{'block':<28}{'path':<16}{'fwd ms':>16}{'fwd+bwd ms':>16}{'fwd peak MiB':>18}{'f+b peak MiB':>18}"
          f"{'max|diff|':>11}")
    for r in rows:
        label = r["path"] + (" <- policy" if r.get("policy") else "")
        if "error" in r:
            print(f"{r['block']:<28}{label:<16}  n/a: {r['error'][:90]}")
            continue
        cells = [_cell(r[k], r.get(k.replace("_ms", "").replace("_mib", "") + "_ratio")) for k in keys]
        diff = f"{r['max_abs_diff']:>11.1e}" if "max_abs_diff" in r else ""
        print(f"{r['block']:<28}{label:<16}" + "".join(cells) + diff)


def _cell(value: Optional[float], ratio: Optional[float]) -> str:
    if value is None:
        return f"{'n/a':>16}"
    return f"{value:9.2f}" + (f" ({ratio:.2f}x)" if ratio is not None else "        ")[:9].rjust(9)


def _where(shape: tuple[int, ...], args: argparse.Namespace, layout: str = "") -> str:
    precision = args.dtype if args.dtype == "float32" else f"{args.dtype} {args.precision}"
    threads = f", {torch.get_num_threads()} threads" if args.device == "cpu" else ""
    return f"B,C,T,H,W = {shape}, {args.device} {precision}{threads}" + (f", {layout}" if layout else "")


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    parser.add_argument("--precision", default="autocast", choices=["autocast", "cast"],
                        help="for bfloat16/float16: autocast (float32 weights, as in training) or cast")
    parser.add_argument("--batch", type=int, default=2, help="clips per pass (the recipe: 8 per GPU)")
    parser.add_argument("--repeat", type=int, default=5, help="timed calls per case (minimum; after 1 warm-up)")
    parser.add_argument("--sizes", default="res3,res4", help="comma-separated subset of res3,res4")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: 1 on CPU)")
    parser.add_argument("--nl-layout", default=None, choices=sorted(LAYOUTS),
                        help="NL input layout (default: channels_last on CUDA as in training, else contiguous)")
    parser.add_argument("--parts", default="pooling,nl", help="comma-separated subset of pooling (GC, SNL), nl")
    parser.add_argument("--quick", action="store_true", help="small inputs (smoke test)")
    parser.add_argument("--json", help="also write every row to this file")
    args = parser.parse_args(argv)
    sizes = [s.strip() for s in args.sizes.split(",") if s.strip()]
    bad = [s for s in sizes if s not in SIZES]
    if bad or not sizes:
        parser.error(f"--sizes must be a comma-separated subset of {sorted(SIZES)}, got {args.sizes!r}")
    parts = {p.strip() for p in args.parts.split(",") if p.strip()}
    if not parts or parts - {"pooling", "nl"}:
        parser.error(f"--parts must be a comma-separated subset of pooling,nl, got {args.parts!r}")
    if args.repeat < 1 or args.batch < 1:
        parser.error("--repeat and --batch must be >= 1")
    device, threads = torch.device(args.device), torch.get_num_threads()
    args.nl_layout = args.nl_layout or ("channels_last" if device.type == "cuda" else "contiguous")
    if device.type == "cpu":
        torch.set_num_threads(args.threads or 1)
    torch.manual_seed(0)
    report = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
              "torch": torch.__version__, "dtype": args.dtype, "precision": args.precision,
              "batch": args.batch, "threads": torch.get_num_threads(), "sizes": {}}
    shapes = {name: (args.batch, *(QUICK if args.quick else SIZES)[name]) for name in sizes}
    cases = {(name, part): (pooling_cases if part == "pooling" else nl_cases)(shape, args)
             for name, shape in shapes.items() for part in ("pooling", "nl") if part in parts}
    # On CPU, all peaks first with glibc's mmap threshold pinned (every large tensor mapped on allocation and
    # unmapped on free), then all timings with a caching heap (pinned, every allocation faults its pages in).
    if device.type == "cpu":
        _pin_mmap_threshold()
    measured = [c for group in cases.values() for c in group if "error" not in c[0]]
    for row, case in measured:
        row |= case.peaks(device)
    if device.type == "cpu":
        _cache_heap()
    for row, case in measured:
        row |= case.times(device)
    for (name, part), group in cases.items():
        for row, case in group if part == "pooling" else ():
            try:
                row |= case.launches(device)
            except Exception as error:  # the profiler's event layout differs across torch versions
                row["launches_error"] = f"{type(error).__name__}: {error}"[:200]
    for (name, part), group in cases.items():
        rows = [row for row, _ in group]
        (print_pooling if part == "pooling" else print_nl)(name, shapes[name], rows, args)
        report["sizes"].setdefault(name, {"shape": list(shapes[name])})[part] = rows
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    torch.set_num_threads(threads)  # as it was (main() also runs inside the test suite)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
