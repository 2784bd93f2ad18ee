"""Every convolution of Slow-R50 (SlowFast, arXiv 1812.03982, table 1) along every path of
``gcvideo.layers.conv_paths``: forward+backward time per kind, as the table behind its ``POLICY``.

The convolutions and their input shapes come from the model itself (``slow_r50`` at ``--width``, on
``--frames`` x ``--size`` x ``--size`` clips of ``--batch``), grouped by shape. Each group runs forward and
backward (input and weight gradients, a fixed output gradient) along each path of its kind, in each
memory layout (CPU time of the process on a CPU, wall time on a GPU); the paths of a group alternate in
``--repeats`` rounds (so the machine's load hits them alike) and the fastest of each counts. A kind's
time is the sum over its convolutions; its row shows each path's time as a multiple of ``conv3d`` (below
1: faster), the fastest path, and the path the policy picks (``<- policy``) in that setting. Each path's
output is compared with ``conv3d``'s (a warning when it differs by more than rounding).

    python scripts/bench_convs.py --device cpu --width 64 --size 96 --frames 4 --batch 2   # the CPU table
    python scripts/bench_convs.py --device cuda --dtype bfloat16 --json convs.json       # the GPU table
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import torch  # noqa: E402

from gcvideo.layers.conv_paths import KIND_PATHS, LAYOUTS, PathConv3d, choose_path  # noqa: E402

FORMATS = {"contiguous": torch.contiguous_format, "channels_last": torch.channels_last_3d}


def conv_groups(args: argparse.Namespace) -> list[dict]:
    """The model's lever-eligible convolutions grouped by (kind, shape): one module and a count per group."""
    from gcvideo.models import create

    model = create("slow_r50", width=args.width, conv_levers="auto")
    meta = copy.deepcopy(model).to("meta")  # shapes only
    shapes: dict[str, tuple[int, ...]] = {}
    for name, module in meta.named_modules():
        if isinstance(module, PathConv3d):
            module.register_forward_pre_hook(lambda m, a, n=name: shapes.__setitem__(n, tuple(a[0].shape)))
    with torch.no_grad():
        meta(torch.empty(args.batch, 3, args.frames, args.size, args.size, device="meta"))
    groups: dict[tuple, dict] = {}
    for name, shape in shapes.items():
        conv = model.get_submodule(name)
        key = (conv.kind, conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding, shape)
        group = groups.setdefault(key, {"kind": conv.kind, "conv": conv, "shape": shape, "count": 0})
        group["count"] += 1
    return list(groups.values())


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure_group(group: dict, layout: str, args: argparse.Namespace) -> tuple[dict, dict]:
    """Forward+backward ms of one convolution of ``group`` along each of its paths (fastest of the rounds), and
    each path's largest output difference from ``conv3d`` relative to the largest output."""
    device = torch.device(args.device)
    conv = copy.deepcopy(group["conv"]).to(device=device, memory_format=FORMATS[layout])
    x = torch.randn(group["shape"], device=device).contiguous(memory_format=FORMATS[layout])
    x.requires_grad_(group["kind"] != "stem")  # the clip needs no gradient
    clock = time.perf_counter if device.type == "cuda" else time.process_time  # CPU: robust to other processes
    autocast = torch.autocast(device.type, dtype=getattr(torch, args.dtype), enabled=args.dtype != "float32")
    grad, expected, differences = None, None, {}
    times: dict[str, list[float]] = defaultdict(list)
    for round_ in range(args.repeats + 1):  # round 0 warms up and checks the outputs
        for path in KIND_PATHS[group["kind"]]:
            conv.path = path
            _sync(device)
            start = clock()
            with autocast:
                out = conv(x)
            if grad is None:
                grad = torch.randn_like(out)
            out.backward(grad)
            _sync(device)
            if round_:
                times[path].append((clock() - start) * 1e3)
            elif expected is None:
                expected = out.detach().float()
            else:
                differences[path] = float((out.detach().float() - expected).abs().max() / expected.abs().max())
            x.grad, conv.weight.grad = None, None
    return {path: min(t) for path, t in times.items()}, differences


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default=None, choices=["float32", "bfloat16", "float16"],
                        help="float32, or autocast to bfloat16/float16 (default: bfloat16 on CUDA, float32 on CPU)")
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--frames", type=int, default=None, help="default: 8 on CUDA, 4 on CPU")
    parser.add_argument("--size", type=int, default=None, help="crop side; default: 224 on CUDA, 96 on CPU")
    parser.add_argument("--batch", type=int, default=None, help="clips; default: 8 on CUDA, 2 on CPU")
    parser.add_argument("--layouts", nargs="+", default=list(LAYOUTS), choices=LAYOUTS)
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds; the fastest counts")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (1: steadier on a shared machine)")
    parser.add_argument("--json", help="also write the table to this file")
    args = parser.parse_args(argv)
    cuda = args.device.startswith("cuda")
    args.dtype = args.dtype or ("bfloat16" if cuda else "float32")
    args.frames, args.size = args.frames or (8 if cuda else 4), args.size or (224 if cuda else 96)
    args.batch = args.batch or (8 if cuda else 2)
    args.tolerance = 1e-4 if args.dtype == "float32" else 2e-2  # relative to the largest output
    threads = torch.get_num_threads()
    if not cuda:
        torch.set_num_threads(args.threads)
    groups = conv_groups(args)
    rows = []
    for layout in args.layouts:
        totals: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        worst: dict[str, dict[str, float]] = defaultdict(dict)
        for group in groups:
            times, differences = measure_group(group, layout, args)
            for path, ms in times.items():
                totals[group["kind"]][path] += ms * group["count"]
            for path, difference in differences.items():
                worst[group["kind"]][path] = max(difference, worst[group["kind"]].get(path, 0.0))
        for kind, paths in totals.items():
            policy = choose_path(kind, torch.device(args.device).type, getattr(torch, args.dtype), layout)
            rows.append({"layout": layout, "kind": kind, "ms": dict(paths), "fastest": min(paths, key=paths.get),
                         "policy": policy, "vs_conv3d": {p: ms / paths["conv3d"] for p, ms in paths.items()},
                         "max_relative_difference": worst[kind]})
    device = torch.cuda.get_device_name() if cuda else f"cpu, {torch.get_num_threads()} threads"
    where = (f"{device}, slow_r50 width {args.width}, {args.frames}x{args.size}x{args.size}, batch {args.batch}, "
             f"{args.dtype}{' autocast' if args.dtype != 'float32' else ''}, torch {torch.__version__}")
    print(f"convolutions of one training step (forward+backward), per kind, {where}")
    print(f"{'layout':<15}{'kind':<12}{'conv3d ms':>10}  other paths (x conv3d)")
    for r in rows:
        others = "  ".join(f"{p} {r['vs_conv3d'][p]:.2f}x" + (" <- policy" if p == r["policy"] else "")
                           for p in r["ms"] if p != "conv3d")
        mark = " <- policy" if r["policy"] == "conv3d" else ""
        print(f"{r['layout']:<15}{r['kind']:<12}{r['ms']['conv3d']:>10.2f}{mark}  {others}  (fastest: {r['fastest']})")
        for path, difference in r["max_relative_difference"].items():
            if difference > args.tolerance:
                print(f"  WARNING: {r['kind']} {path} differs from conv3d by {difference:.1e} of the largest output")
    if args.json:
        Path(args.json).write_text(json.dumps({"setting": where, "rows": rows}, indent=2) + "\n")
    torch.set_num_threads(threads)  # as it was (main() also runs inside the test suite)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
