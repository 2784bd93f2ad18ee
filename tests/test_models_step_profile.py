"""The training-step profile by operator family (gcvideo.models.step_profile) and the speed scripts that use it
(scripts/bench_train.py --profile, scripts/bench_levers.py, scripts/bench_convs.py, scripts/gpu_levers.py), on
CPU at a tiny width: families cover the layers of Slow-R50 (SlowFast, arXiv 1812.03982) with GC blocks
(GCNet, arXiv 1904.11492), each family's time contains its own operators' time, and MFU follows its formula."""

from __future__ import annotations

import importlib.util
import json
from collections import Counter
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from gcvideo.models import count_macs, create
from gcvideo.models.step_profile import (
    FAMILIES,
    RANGE_PREFIX,
    format_profile,
    module_families,
    peak_tflops,
    profile_step,
    slow_conv_kernels,
    training_flops,
)

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_families_cover_every_layer_of_slow_r50_gc5():
    model = create("slow_r50_gc5", num_classes=3, width=4)
    counts = Counter(module_families(model).values())
    # stem; res2 3+3 and res3 4+4 conv_a/conv_c + 2 shortcuts; res4/res5 conv_c 6+3 + 2 shortcuts; every conv_b;
    # the 3x1x1 conv_a of res4/res5; 53 BN; 16 blocks x 3 ReLU + the stem's; 5 GC blocks, their parts inside.
    assert counts == {"stem conv": 1, "1x1x1 conv": 27, "1xkxk conv": 16, "kx1x1 conv": 9, "BN": 53, "ReLU": 49,
                      "GC/SNL/NL": 5}
    assert set(counts) <= set(FAMILIES)


def test_each_family_holds_its_operators_time():
    """Independently of the family ranges: the aten convolution and batch-norm kernels of the step (forward and
    backward, from the profiler's own events) fit inside the time the profile gives their families."""
    torch.manual_seed(0)
    # Width 16: at width 4 the operators' fixed costs are most of a convolution family's time (about 0.57 of it
    # is the convolutions' own, less on a busy machine), at 16 the convolutions' arithmetic is.
    model = create("slow_r50_gc_all", num_classes=3, width=16, depths=(1, 1, 1, 1))
    x, y = torch.randn(2, 3, 4, 32, 32), torch.tensor([0, 2])
    opt = torch.optim.SGD(model.parameters(), lr=0.1)

    def step() -> None:
        F.cross_entropy(model(x), y).backward()
        with torch.autograd.profiler.record_function(RANGE_PREFIX + "optimizer"):
            opt.step()
            opt.zero_grad()

    step()
    result = profile_step(step, model, steps=2)
    families = result["families"]
    assert set(families) == set(FAMILIES)
    assert all(families[f] > 0 for f in ("stem conv", "1x1x1 conv", "1xkxk conv", "kx1x1 conv", "BN", "ReLU",
                                         "GC/SNL/NL", "optimizer"))
    assert sum(families.values()) <= result["busy_s"] * 1.001 and result["busy_s"] == pytest.approx(result["step_s"])
    # Independently, from the same events by operator name: the convolutions' and batch norms' own time.
    ops = result["operators"]
    conv_ops = ops["aten::convolution"] + ops["aten::convolution_backward"]
    convs = sum(v for k, v in families.items() if k.endswith("conv")) + families["GC/SNL/NL"]
    assert 0.4 * convs < conv_ops <= convs * 1.0001  # the conv families are mostly their convolutions
    assert ops["aten::native_batch_norm"] + ops["aten::native_batch_norm_backward"] <= families["BN"] * 1.0001
    table = format_profile(result, training_flops(model, x.shape), peak=None)
    assert "kx1x1 conv" in table and "peak unknown" in table


def test_mfu_formula_peaks_and_slow_kernels():
    model = create("slow_r50", num_classes=3, width=4)
    assert training_flops(model, (2, 3, 4, 32, 32)) == 6 * count_macs(model, (2, 3, 4, 32, 32))
    assert peak_tflops("NVIDIA H100 80GB HBM3", torch.bfloat16) == 989.0
    assert peak_tflops("NVIDIA H100 PCIe", torch.bfloat16) == 756.0
    assert peak_tflops("NVIDIA H200", torch.float32) == 67.0 and peak_tflops("cpu", torch.float32) is None
    result = {"step_s": 0.1, "busy_s": 0.08, "device": "cuda", "families": {"BN": 0.02, "other": 0.06}}
    assert "MFU 10.1% of 989 TFLOP/s" in format_profile(result, flops=int(10e12), peak=989.0)
    names = ["aten::slow_conv3d_forward", "void at::native::vol2col_kernel<float>", "cudnn_infer_sm90", "aten::mm"]
    assert slow_conv_kernels(names) == names[:2]


def test_gpu_stage_dry_run(tmp_path, capsys):
    """scripts/gpu_levers.py --dry: the GPU stage's four commands on the CPU at a tiny size, into one JSON."""
    assert _script("gpu_levers").main(["--dry", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "GC/SNL/NL" in printed and "MFU: peak unknown" in printed and "<- policy" in printed
    (path,) = tmp_path.glob("levers-cpu-*.json")
    parts = json.loads(path.read_text())["parts"]
    assert {name: part["status"] for name, part in parts.items()} == {
        "profile": "ok", "convs": "ok", "optimizers": "ok", "levers": "ok"}
    optimizers = {r["optimizer"]: r for r in parts["optimizers"]["result"]["rows"]}
    assert set(optimizers) == {"SGD", "AdamW", "Adam"}
    assert all(r["default"] == "for-loop" and r["policy"] == "fused" and r["vs_default"]["for-loop"] == 1.0
               for r in optimizers.values())
    profile = parts["profile"]["result"]["rows"][0]["profile"]
    assert profile["flops"] == 6 * count_macs(create("slow_r50_gc5", width=4), (2, 3, 4, 32, 32))
    assert profile["families"]["GC/SNL/NL"] > 0 and profile["families"]["kx1x1 conv"] > 0
    convs = parts["convs"]["result"]["rows"]
    assert all(d < 1e-5 for r in convs for d in r["max_relative_difference"].values())  # every path = F.conv3d
    kinds = {(r["layout"], r["kind"]) for r in convs}
    assert kinds == {(layout, kind) for layout in ("contiguous", "channels_last")
                     for kind in ("stem", "pointwise", "downsample", "spatial", "temporal")}
    rows = parts["levers"]["result"]["rows"]
    variants = {r["variant"] for r in rows if r["model"] == "slow_r50"}
    assert {"reference", "none", "auto", "pointwise=matmul", "temporal=conv2d"} <= variants
    assert any(v.startswith("best (") for v in variants)
    optimizers = {(r["layout"], r["optimizer"]) for r in rows if r["variant"] == "auto" and r["model"] == "slow_r50"}
    # fused over contiguous weights; over channels_last ones PyTorch's fused CPU kernel is refused (optimizer_levers)
    assert optimizers == {("contiguous", "for-loop"), ("contiguous", "fused"), ("channels_last", "for-loop")}
    assert "skip auto with the fused optimizer, channels_last: optimizer_impl 'fused' on a CPU" in printed
    assert {r["optimizer"] for r in rows if r["variant"] != "auto"} == {"for-loop"}  # the plain step
    references = [r for r in rows if r["variant"] == "reference"]  # the plain time: its faster layout's
    assert max(r["speedup"] for r in references) == 1.0 and {r["plain"] for r in references} == {"reference"}
