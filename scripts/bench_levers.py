"""The convolution levers of ``gcvideo.models.conv_levers`` measured on whole training steps of Slow-R50
(SlowFast, arXiv 1812.03982) and Slow-R50 + 5 GC (GCNet, arXiv 1904.11492, table 8): model-only clips/s
and MFU of each variant, and its speed-up over the plain network.

For each model and batch, every variant holds the same weights and runs SGD steps (forward, cross-entropy,
backward, update) on the same random clips; the variants alternate in ``--rounds`` rounds of ``--steps``
steps, so the machine's load hits them alike. Step time: the median and the fastest round (CPU time of
the process on a CPU, wall time on a GPU). Variants (``--variants``):

- ``reference``: pytorchvideo's ``slow_r50`` (``create_resnet`` as its hub builder calls it; a global-average
  head for clips other than 8x224x224) with our weights loaded strictly: the plain network of ``slow_r50``;
- ``none``: gcvideo's model with plain ``nn.Conv3d`` (the plain network of the other rows);
- ``auto``: the levers the policy picks (the default of ``create``);
- ``singles``: each lever alone (every kind=path of ``gcvideo.layers.conv_paths.KIND_PATHS``);
- ``best``: the singles that beat ``none`` here by more than 2 %, together (needs ``singles``);
- any ``kind=path,...`` spec.

``auto`` also runs with each optimizer implementation of ``--optimizers`` (``gcvideo.training.optimizer_levers``:
``plain``, PyTorch's default; ``auto``, the measured table's pick; ``fused``), so its rows split the step's
speed-up into the network's and the optimizer's; the other variants take PyTorch's default (the plain step).
Each variant runs in each of ``--layouts``; the plain time of a row is its plain network's time in its
faster layout. ``--compile-modes eager reduce-overhead`` also measures ``none`` and ``best`` (else
``auto``) compiled in place (CUDA graphs on a GPU) at the first batch, as the budget allows; past the first
batch only ``reference``, ``none``, ``auto`` and ``best`` (the first batch's winners) run.

    python scripts/bench_levers.py --device cpu --batches 2 --frames 4 --size 96 --variants reference none auto
    python scripts/bench_levers.py --device cuda --json levers.json     # full size, bf16, channels_last_3d
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from gcvideo.layers.conv_paths import KIND_PATHS, LAYOUTS  # noqa: E402
from gcvideo.models import channels_last_input, create, to_channels_last  # noqa: E402
from gcvideo.models.conv_levers import apply_conv_levers  # noqa: E402
from gcvideo.models.step_profile import peak_tflops, training_flops  # noqa: E402
from gcvideo.training.optimizer_levers import MODES, apply_optimizer_impl, implementation_name  # noqa: E402

SINGLES = [f"{kind}={path}" for kind, paths in KIND_PATHS.items() for path in paths if path != "conv3d"]


def reference_model(ours: nn.Module) -> nn.Module:
    """pytorchvideo's slow_r50 (``create_resnet`` as its hub builder calls it, at ``ours``'s width) with
    ``ours``'s weights loaded strictly, pooling globally as ours does."""
    from pytorchvideo.models.resnet import create_resnet

    ref = create_resnet(model_depth=50, model_num_class=ours.build_args["num_classes"], dropout_rate=0.0,
                        stem_dim_out=ours.build_args["width"], stem_conv_kernel_size=(1, 7, 7))
    ref.blocks[5].pool = nn.AdaptiveAvgPool3d(1)  # = AvgPool3d((8, 7, 7)) at 8x224x224, any size otherwise
    ref.load_state_dict(ours.state_dict(), strict=True)
    return ref


class Variant:
    """One model on one layout with its optimizer and a timed SGD step."""

    def __init__(self, name: str, layout: str, model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                 args: argparse.Namespace, optimizer_impl: str = "plain") -> None:
        self.name, self.layout, self.args, self.compiled = name, layout, args, False
        self.model = model.to(args.device)
        if layout == "channels_last":
            to_channels_last(self.model)
        self.x = channels_last_input(x) if layout == "channels_last" else x.contiguous()
        self.y = y
        sgd = torch.optim.SGD(self.model.parameters(), lr=1e-3, momentum=0.9, weight_decay=1e-4)
        self.opt = apply_optimizer_impl(sgd, optimizer_impl)
        self.optimizer = implementation_name(self.opt)
        self.times: list[float] = []

    def step(self) -> None:
        if self.compiled and self.args.device.startswith("cuda"):
            torch.compiler.cudagraph_mark_step_begin()
        with torch.autocast(self.x.device.type, dtype=torch.bfloat16, enabled=self.args.precision == "bf16"):
            loss = F.cross_entropy(self.model(self.x), self.y)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()

    def timed_round(self, steps: int) -> None:
        cuda = self.x.is_cuda
        clock = time.perf_counter if cuda else time.process_time
        if cuda:
            torch.cuda.synchronize()
        start = clock()
        for _ in range(steps):
            self.step()
        if cuda:
            torch.cuda.synchronize()
        self.times.append((clock() - start) / steps)


def build_variants(model_name: str, names: list[str], batch: int, args: argparse.Namespace) -> list[Variant]:
    torch.manual_seed(0)
    base = create(model_name, num_classes=400, width=args.width, dropout=0.0, conv_levers="none")
    x = torch.randn(batch, 3, args.frames, args.size, args.size, device=args.device)
    y = torch.randint(0, 400, (batch,), device=args.device)
    variants = []
    for name in names:
        if name == "reference":
            if model_name != "slow_r50":
                continue
            model = reference_model(base)
        else:  # the same parameters, as a copy of its own
            model = apply_conv_levers(copy.deepcopy(base), name)
        impls = args.optimizers if name == "auto" else ["plain"]
        for layout in args.layouts:
            seen = set()
            for impl in impls:
                try:
                    variant = Variant(name, layout, copy.deepcopy(model), x, y, args, impl)
                except ValueError as error:  # e.g. fused over channels_last weights on a CPU
                    print(f"skip {name} with the {impl} optimizer, {layout}: {error}", flush=True)
                    continue
                if variant.optimizer not in seen:  # "auto" may pick what "plain" runs
                    seen.add(variant.optimizer)
                    variants.append(variant)
    return variants


def run_rounds(variants: list[Variant], args: argparse.Namespace) -> None:
    for v in variants:  # warm-up: first calls allocate, pick kernels, fill caches
        for _ in range(args.warmup):
            v.step()
    for _ in range(args.rounds):
        for v in variants:
            v.timed_round(args.steps)


def best_spec(rows: list[dict], layout: str) -> str:
    """The singles that beat ``none`` by more than 2 % in ``layout``, one path per kind (the fastest)."""
    none = next(r["median_s"] for r in rows if r["variant"] == "none" and r["layout"] == layout)
    chosen: dict[str, tuple[float, str]] = {}
    for r in rows:
        if r["layout"] == layout and r["variant"] in SINGLES and r["median_s"] < 0.98 * none:
            kind, path = r["variant"].split("=")
            if kind not in chosen or r["median_s"] < chosen[kind][0]:
                chosen[kind] = (r["median_s"], path)
    return ",".join(f"{k}={p}" for k, (_, p) in chosen.items()) or "none"


def summarise(variants: list[Variant], model_name: str, batch: int, args: argparse.Namespace,
              plain: tuple[float, float, str] | None = None) -> list[dict]:
    """Rows of ``variants`` with clips/s, TFLOP/s, MFU and the speed-up over ``plain`` (median and fastest
    step time of the plain network, and its name), by default the variants' own reference, else none."""
    with torch.device("meta"):  # the same MACs for every variant; a compiled model is not copied
        flops = training_flops(create(model_name, width=args.width), variants[0].x.shape)
    rows = [{"model": model_name, "batch": batch, "variant": v.name, "layout": v.layout, "optimizer": v.optimizer,
             "compile": "reduce-overhead" if v.compiled else "eager", "median_s": statistics.median(v.times),
             "min_s": min(v.times)} for v in variants]
    if plain is None:
        name = "reference" if any(r["variant"] == "reference" for r in rows) else "none"
        candidates = [r for r in rows if r["variant"] == name]
        plain = (min(r["median_s"] for r in candidates), min(r["min_s"] for r in candidates), name)
    for r in rows:
        r["clips_per_s"] = batch / r["median_s"]
        r["tflops"] = flops / r["median_s"] / 1e12
        r["mfu"] = r["tflops"] / args.peak if args.peak else None
        r["speedup"], r["speedup_min"], r["plain"] = plain[0] / r["median_s"], plain[1] / r["min_s"], plain[2]
    return rows


def plain_of(rows: list[dict]) -> tuple[float, float, str]:
    """The plain network's times among eager ``rows`` (one model and batch) as ``summarise`` takes them."""
    name = rows[0]["plain"]
    candidates = [r for r in rows if r["variant"] == name and r["compile"] == "eager"]
    return min(r["median_s"] for r in candidates), min(r["min_s"] for r in candidates), name


def measure(model_name: str, batch: int, names: list[str], args: argparse.Namespace, deadline: float,
            best: dict[str, str]) -> list[dict]:
    """Rows of ``names`` (``best``: the winning singles measured here, else the specs in ``best`` by layout,
    which this fills in) for one model and batch."""
    variants = build_variants(model_name, [n for n in names if n != "best"], batch, args)
    run_rounds(variants, args)
    rows = summarise(variants, model_name, batch, args)
    if any(r["variant"] in SINGLES for r in rows):
        best.update({layout: best_spec(rows, layout) for layout in args.layouts})
    if "best" in names and best and time.monotonic() < deadline:
        extra = build_variants(model_name, [rows[0]["plain"]], batch, args)  # the plain network again
        for layout, spec in best.items():
            extra += [v for v in build_variants(model_name, [spec], batch, args) if v.layout == layout]
        for v in extra[len(args.layouts):]:
            v.name = f"best ({v.name})"
        run_rounds(extra, args)  # measured against the plain network again, in rounds of their own
        rows += [r for r in summarise(extra, model_name, batch, args) if r["variant"].startswith("best")]
    return rows


def measure_compiled(model_name: str, batch: int, spec: str, args: argparse.Namespace,
                     plain: tuple[float, float, str]) -> list[dict]:
    """``none`` and ``spec`` compiled in place with CUDA graphs, against the eager ``plain`` network."""
    variants = [v for v in build_variants(model_name, ["none", spec], batch, args) if v.layout == args.layouts[0]]
    for v in variants:
        v.model.compile(mode="reduce-overhead", dynamic=False)  # in place, as Classifier(compile_mode=...)
        v.compiled = True
    run_rounds(variants, args)
    return summarise(variants, model_name, batch, args, plain)


def print_rows(rows: list[dict], where: str) -> None:
    print(f"\nmodel-only training step, {where}")
    print(f"{'model':<14}{'batch':>6}  {'variant':<52}{'layout':<15}{'optimizer':<10}{'mode':<16}{'clips/s':>9}"
          f"{'TFLOP/s':>9}{'MFU':>7}{'x plain':>9}{'(fastest)':>10}")
    for r in rows:
        mfu = f"{r['mfu']:.1%}" if r["mfu"] is not None else "-"
        speed = f"{r['speedup']:.3f}" if r["speedup"] else "-"
        fastest = f"{r['speedup_min']:.3f}" if r["speedup_min"] else "-"
        print(f"{r['model']:<14}{r['batch']:>6}  {r['variant'][:51]:<52}{r['layout']:<15}{r['optimizer']:<10}"
              f"{r['compile']:<16}"
              f"{r['clips_per_s']:>9.2f}{r['tflops']:>9.2f}{mfu:>7}{speed:>9}{fastest:>10}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--models", nargs="+", default=["slow_r50", "slow_r50_gc5"])
    parser.add_argument("--batches", nargs="+", type=int, default=None, help="default: 8 32 on CUDA, 2 on CPU")
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--frames", type=int, default=None, help="default: 8 on CUDA, 4 on CPU")
    parser.add_argument("--size", type=int, default=None, help="default: 224 on CUDA, 96 on CPU")
    parser.add_argument("--variants", nargs="+", default=None,
                        help="reference, none, auto, singles, best or kind=path specs (default on CUDA: reference none "
                             "auto singles best; on CPU: reference none auto)")
    parser.add_argument("--layouts", nargs="+", choices=LAYOUTS, default=None,
                        help="default: channels_last on CUDA, both on CPU")
    parser.add_argument("--precision", choices=["bf16", "fp32"], default=None,
                        help="default: bf16 on CUDA, fp32 on CPU")
    parser.add_argument("--optimizers", nargs="+", choices=list(MODES), default=["plain", "auto"],
                        help="implementations of the optimizer for the auto variant (default: plain auto)")
    parser.add_argument("--compile-modes", nargs="+", choices=["eager", "reduce-overhead"], default=["eager"])
    parser.add_argument("--rounds", type=int, default=None, help="timed rounds (default 5 CUDA, 9 CPU)")
    parser.add_argument("--steps", type=int, default=None, help="steps per round (default 10 CUDA, 1 CPU)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (1: steadier on a shared machine)")
    parser.add_argument("--peak-tflops", type=float, default=None, help="for MFU (default: by GPU name)")
    parser.add_argument("--budget", type=float, default=1e9, help="seconds; later rows are skipped past it")
    parser.add_argument("--compile-reserve", type=float, default=150,
                        help="seconds a compiled pair needs (compiling included); skipped with less left")
    parser.add_argument("--json", help="also write the rows to this file")
    args = parser.parse_args(argv)
    cuda = args.device.startswith("cuda")
    args.batches = args.batches or ([8, 32] if cuda else [2])
    args.frames, args.size = args.frames or (8 if cuda else 4), args.size or (224 if cuda else 96)
    args.variants = args.variants or (["reference", "none", "auto", "singles", "best"] if cuda
                                      else ["reference", "none", "auto"])
    args.layouts = args.layouts or (["channels_last"] if cuda else list(LAYOUTS))
    args.precision = args.precision or ("bf16" if cuda else "fp32")
    args.rounds, args.steps = args.rounds or (5 if cuda else 9), args.steps or (10 if cuda else 1)
    dtype = torch.bfloat16 if args.precision == "bf16" else torch.float32
    name = torch.cuda.get_device_name() if cuda else "cpu"
    args.peak = args.peak_tflops or (peak_tflops(name, dtype) if cuda else None)
    threads = torch.get_num_threads()
    if not cuda:
        torch.set_num_threads(args.threads)
    names = [n for v in args.variants for n in (SINGLES if v == "singles" else [v])]
    deadline = time.monotonic() + args.budget
    where = (f"{name}{'' if cuda else f', {args.threads} thread(s)'}, width {args.width}, "
             f"{args.frames}x{args.size}x{args.size}, {args.precision}, torch {torch.__version__}"
             + (f", cuDNN {torch.backends.cudnn.version()}" if cuda else "")
             + (f", peak {args.peak:.0f} TFLOP/s" if args.peak else ", peak unknown (MFU not given)"))
    rows: list[dict] = []
    best: dict[str, dict[str, str]] = {m: {} for m in args.models}

    def save(new: list[dict]) -> None:
        print_rows(new, where)
        rows.extend(new)
        if args.json:  # after every unit: a run cut short keeps what it measured
            Path(args.json).write_text(json.dumps({"setting": where, "rows": rows}, indent=2) + "\n")

    for batch_index, batch in enumerate(args.batches):
        for model_name in args.models:
            if time.monotonic() > deadline:
                print(f"skip {model_name} batch {batch}: out of time", flush=True)
                continue
            # Past the first batch only the headline variants: a short budget cuts the singles first.
            keep = names if batch_index == 0 else [n for n in names if n in ("reference", "none", "auto", "best")]
            save(measure(model_name, batch, keep, args, deadline, best[model_name]))
        if batch_index == 0 and "reduce-overhead" in args.compile_modes:  # CUDA graphs where they matter most
            for model_name in args.models:
                if deadline - time.monotonic() < args.compile_reserve:
                    print(f"skip compiled {model_name}: less than {args.compile_reserve:.0f} s left", flush=True)
                    continue
                spec = best[model_name].get(args.layouts[0], "auto")
                plain = plain_of([r for r in rows if r["model"] == model_name and r["batch"] == batch])
                save(measure_compiled(model_name, batch, spec, args, plain))
    torch.set_num_threads(threads)  # as it was (main() also runs inside the test suite)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
