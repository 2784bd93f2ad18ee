"""Where a training step's time goes, by operator family, and its model FLOP utilisation (MFU).

Families (``FAMILIES``) follow the Slow-only ResNet's layers (SlowFast, arXiv 1812.03982, table 1) and
GCNet's blocks (arXiv 1904.11492): the stem convolution, the 1x1x1, 1xkxk and kx1x1 convolutions (kinds of
``gcvideo.layers.conv_paths``), BN, ReLU, the GC/SNL/NL blocks (everything inside them), the optimizer
step and the rest (residual adds, pooling, head, loss, gradient accumulation). Each family's modules run
inside a ``record_function`` range while profiled; a forward operator belongs to its range, and a
backward operator to the forward operator that recorded its autograd node (the profiler's sequence
numbers). On CPU a family's time is host time; on CUDA it is the GPU time of its kernels.

MFU = the model's training FLOPs per step (``count_macs`` x 2 FLOPs x 3 for forward and backward) over
the step time and the device's peak (``PEAK_TFLOPS`` by device name, dense tensor-core figures).
"""

from __future__ import annotations

import contextlib
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence

import torch
from torch import nn

from gcvideo.layers import BLOCKS
from gcvideo.layers.conv_paths import PathConv3d, conv_kind
from gcvideo.models.complexity import count_macs

FAMILIES = ("stem conv", "1x1x1 conv", "1xkxk conv", "kx1x1 conv", "other conv", "BN", "ReLU", "GC/SNL/NL",
            "optimizer", "other")
CONV_FAMILY = {"stem": "stem conv", "pointwise": "1x1x1 conv", "downsample": "1x1x1 conv",
               "spatial": "1xkxk conv", "temporal": "kx1x1 conv", None: "other conv"}
# Dense peak TFLOP/s (bf16/fp16 tensor cores, float32 without TF32) by a substring of the device name,
# the first match wins.
PEAK_TFLOPS: tuple[tuple[str, float, float], ...] = (
    ("H100 PCIe", 756.0, 51.0), ("H100 NVL", 835.0, 60.0), ("H100", 989.0, 67.0), ("H200", 989.0, 67.0),
    ("GH200", 989.0, 67.0), ("B200", 2250.0, 80.0), ("A100", 312.0, 19.5), ("L40S", 362.0, 91.6),
    ("A10G", 70.0, 31.2), ("L4", 121.0, 30.3),
)
# Kernels of PyTorch's native (non-cuDNN) 3D convolution: many times slower than cuDNN in bf16/fp16.
SLOW_CONV_KERNELS = ("slow_conv3d", "vol2col", "col2vol", "conv_depthwise3d", "naive_conv", "slow_conv_dilated3d")
RANGE_PREFIX = "family::"


def module_families(model: nn.Module) -> dict[nn.Module, str]:
    """Module -> family of every module a family is timed by (attention blocks whole, not their parts)."""
    families: dict[nn.Module, str] = {}
    inside: set[nn.Module] = set()
    first_conv = True
    for module in model.modules():
        if module in inside:
            continue
        if isinstance(module, tuple(BLOCKS.values())):
            families[module] = "GC/SNL/NL"
            inside.update(module.modules())
        elif isinstance(module, nn.Conv3d):
            kind = module.kind if isinstance(module, PathConv3d) else conv_kind(module)
            families[module] = "stem conv" if first_conv and kind in ("spatial", "stem") else CONV_FAMILY[kind]
            first_conv = False
        elif isinstance(module, nn.Conv2d):
            families[module] = "stem conv" if first_conv else "other conv"
            first_conv = False
        elif isinstance(module, nn.modules.batchnorm._BatchNorm):
            families[module] = "BN"
        elif isinstance(module, nn.ReLU):
            families[module] = "ReLU"
    return families


@contextlib.contextmanager
def family_ranges(model: nn.Module) -> Iterator[None]:
    """Run every family module's forward inside a ``record_function("family::<name>")`` range."""
    open_ranges: dict[int, list] = defaultdict(list)

    def enter(module: nn.Module, args: tuple, name: str) -> None:
        rf = torch.autograd.profiler.record_function(RANGE_PREFIX + name)
        rf.__enter__()
        open_ranges[id(module)].append(rf)

    def leave(module: nn.Module, args: tuple, output: object) -> None:
        open_ranges[id(module)].pop().__exit__(None, None, None)

    handles = []
    for module, name in module_families(model).items():
        handles.append(module.register_forward_pre_hook(lambda m, a, n=name: enter(m, a, n)))
        handles.append(module.register_forward_hook(leave))
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def _family_of(event) -> str | None:
    parent = event
    while parent is not None:
        if parent.name.startswith(RANGE_PREFIX):
            return parent.name[len(RANGE_PREFIX):]
        parent = parent.cpu_parent
    return None


def profile_step(step: Callable[[], None], model: nn.Module, optimizer_range: str = "optimizer",
                 steps: int = 2) -> dict:
    """Profile ``steps`` calls of ``step`` (warm: run it before) and split their time by family.

    ``step`` marks its optimizer step with ``record_function(RANGE_PREFIX + optimizer_range)``.

    Returns:
        ``step_s`` (wall time per step), ``device`` ("cpu" or "cuda"), ``busy_s`` (per step: host time of
        the operators on CPU, GPU time of all kernels on CUDA), ``families`` (family -> seconds per step,
        "other" the rest of ``busy_s``), ``operators`` (aten operator -> seconds per step, the operator's
        own calls, not counting it again where it calls itself), ``kernels`` (names of the CUDA kernels and
        aten operators seen).
    """
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    cuda = any(p.is_cuda for p in model.parameters())
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with family_ranges(model), profile(activities=activities) as prof:
        if cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(steps):
            step()
        if cuda:
            torch.cuda.synchronize()
        wall = (time.perf_counter() - start) / steps
    events = prof.events()
    cost = (lambda e: e.device_time_total) if cuda else (lambda e: e.cpu_time_total)
    seq_family: dict[int, str] = {}
    totals: dict[str, float] = defaultdict(float)
    for event in sorted((e for e in events if e.device_type == DeviceType.CPU), key=lambda e: e.time_range.start):
        if event.name.startswith(RANGE_PREFIX):  # ranges do not nest: attention blocks are tagged whole
            totals[event.name[len(RANGE_PREFIX):]] += cost(event)
        elif event.name.startswith("autograd::engine::evaluate_function"):
            family = seq_family.get(event.sequence_nr)
            if family is not None:
                totals[family] += cost(event)
        elif event.sequence_nr >= 0:  # an aten operator, or a custom autograd Function's apply
            family = _family_of(event)
            if family is not None:  # the last operator to see a number records the node
                seq_family[event.sequence_nr] = family
    operators: dict[str, float] = defaultdict(float)
    for event in events:
        if event.name.startswith("aten::") and (event.cpu_parent is None or event.cpu_parent.name != event.name):
            operators[event.name] += cost(event) / steps / 1e6
    kernel_events = [e for e in events if e.device_type == DeviceType.CUDA]
    if cuda:
        busy = sum(e.time_range.elapsed_us() for e in kernel_events)
    else:
        busy = wall * steps * 1e6
    families = {name: totals.get(name, 0.0) / steps / 1e6 for name in FAMILIES if name != "other"}
    families["other"] = max(0.0, busy / steps / 1e6 - sum(families.values()))
    names = {e.name for e in kernel_events} | {e.name for e in events if e.name.startswith("aten::")}
    return {"step_s": wall, "device": "cuda" if cuda else "cpu", "busy_s": busy / steps / 1e6,
            "families": families, "operators": dict(operators), "kernels": sorted(names)}


def training_flops(model: nn.Module, input_shape: Sequence[int]) -> int:
    """FLOPs of one training step: forward MACs x 2 FLOPs x 3 (forward, and backward's two products)."""
    return count_macs(model, input_shape) * 2 * 3


def peak_tflops(device_name: str, dtype: torch.dtype) -> float | None:
    """The dense peak of ``device_name`` in ``dtype`` (TFLOP/s) from ``PEAK_TFLOPS``, None if unknown."""
    for key, half, single in PEAK_TFLOPS:
        if key.lower() in device_name.lower():
            return single if dtype == torch.float32 else half
    return None


def slow_conv_kernels(names: Sequence[str]) -> list[str]:
    """The kernels or operators among ``names`` that are PyTorch's native 3D convolution, not cuDNN's."""
    return [n for n in names if any(k in n.lower() for k in SLOW_CONV_KERNELS)]


def format_profile(result: dict, flops: int | None = None, peak: float | None = None) -> str:
    """The family table: time per step, share of the step, and MFU (when ``flops`` and ``peak`` are known)."""
    step, busy = result["step_s"], result["busy_s"]
    unit = "GPU ms" if result["device"] == "cuda" else "CPU ms"
    lines = [f"{'family':<12}{unit:>10}{'share':>8}"]
    for name, seconds in sorted(result["families"].items(), key=lambda kv: -kv[1]):
        if seconds > 0:
            lines.append(f"{name:<12}{seconds * 1e3:>10.2f}{seconds / busy:>8.1%}")
    busy_share = f", GPU busy {busy / step:.0%} of it" if unit == "GPU ms" else ""
    lines.append(f"step: {step * 1e3:.2f} ms wall{busy_share}")
    if flops:
        achieved = flops / step / 1e12
        mfu = f", MFU {achieved / peak:.1%} of {peak:.0f} TFLOP/s" if peak else ", MFU: peak unknown (--peak-tflops)"
        lines.append(f"model FLOPs per step {flops / 1e9:.1f} G: {achieved:.2f} TFLOP/s{mfu}")
    return "\n".join(lines)
