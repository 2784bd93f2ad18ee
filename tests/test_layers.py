"""GC, SNL and NL blocks (gcvideo.layers): shapes, identity at init, gradients, formulas written out in
float64, 2D/3D consistency, foreign layouts (mmcv ContextBlock, pytorchvideo NonLocal), parameter counts
behind the paper's tables, option errors, and a smoke run of scripts/bench_blocks.py."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gcvideo.layers import GlobalContextBlock, NonLocalBlock, SimplifiedNonLocalBlock, create_block

CONFIGS = [
    ("gc", {"ratio": 1 / 4}),
    ("gc", {"ratio": 0.25, "fusion": ("mul", "add")}),
    ("gc", {"ratio": 0.25, "fusion": "mul"}),
    ("gc", {"ratio": 0.25, "fusion": "mul", "mul_gate": "2sigmoid"}),
    ("gc", {"ratio": 1 / 8, "pooling": "avg", "fusion": ["mul", "add"]}),
    ("gc", {"ratio": 1 / 8, "pooling": "avg", "fusion": ["mul", "add"], "mul_gate": "2sigmoid"}),
    ("snl", {}),
    ("nl", {}),
    ("nl", {"instantiation": "dot_product"}),
    ("nl", {"pool": False, "inner_channels": 4}),
]
IDS = [f"{k}-{'-'.join(f'{v}' for v in o.values()) or 'default'}" for k, o in CONFIGS]
C = 16


def _input(dim: int, dtype=torch.float32, spatial=None) -> torch.Tensor:
    spatial = spatial or ((6, 8) if dim == 2 else (3, 6, 8))
    return torch.randn(2, C, *spatial, dtype=dtype)


def _randomise(block: nn.Module) -> nn.Module:
    """Every parameter and BN buffer random (zero-init weights included), as after training."""
    with torch.no_grad():
        for p in block.parameters():
            p.normal_(0.0, 0.5)
        for name, b in block.named_buffers():
            if name.endswith("running_mean"):
                b.normal_()
            elif name.endswith("running_var"):
                b.uniform_(0.5, 2.0)
        for m in block.modules():
            if isinstance(m, nn.LayerNorm):  # positive shift: some ReLU units always pass a gradient
                m.bias.uniform_(0.5, 1.0)
    return block


@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("kind,opts", CONFIGS, ids=IDS)
def test_shape_and_exact_identity_at_init(kind, opts, dim):
    block = create_block(kind, C, dim=dim, options=opts)
    x = _input(dim)
    # The paper's "mul" gate sigmoid(0) halves x at init (as mmcv); every other configuration is the identity.
    expected = x * 0.5 if "mul" in opts.get("fusion", ()) and opts.get("mul_gate") != "2sigmoid" else x
    for mode in (block.train, block.eval):
        mode()
        out = block(x)
        assert out.shape == x.shape and torch.equal(out, expected)
    out = _randomise(block).train()(x)
    assert out.shape == x.shape and not torch.equal(out, x)


@pytest.mark.parametrize("kind,opts", CONFIGS, ids=IDS)
def test_every_parameter_gets_a_gradient(kind, opts):
    block = _randomise(create_block(kind, C, dim=3, options=opts)).train()
    x = _input(3).requires_grad_()
    (block(x) * torch.randn_like(x)).sum().backward()
    assert x.grad.abs().sum() > 0
    for name, p in block.named_parameters():
        if name == "conv_mask.bias":
            # A constant shift of every softmax logit: its gradient is zero in exact arithmetic. Kept
            # for mmcv strict loading and the paper's parameter counts.
            assert p.grad.abs().max() < 1e-4, name
        else:
            assert p.grad is not None and p.grad.abs().sum() > 0, name


def _conv(w: torch.Tensor, b: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """1x1 conv on flattened positions: w (O, I, 1..), v (B, I, N) -> (B, O, N)."""
    return torch.einsum("oi,bin->bon", w.flatten(1), v) + b[None, :, None]


def _gc_formula(block: GlobalContextBlock, x: torch.Tensor) -> torch.Tensor:
    s = dict(block.named_parameters())
    xf = x.flatten(2)  # (B, C, N)
    if block.pooling == "att":
        logits = _conv(s["conv_mask.weight"], s["conv_mask.bias"], xf)[:, 0]  # (B, N)
        a = torch.exp(logits - logits.max(1, keepdim=True).values)
        a = a / a.sum(1, keepdim=True)
        ctx = torch.einsum("bn,bcn->bc", a, xf)
    else:
        ctx = xf.mean(2)
    terms = {}
    for f in block.fusion:
        p = f"channel_{f}_conv"
        h = torch.einsum("pc,bc->bp", s[f"{p}.0.weight"].flatten(1), ctx) + s[f"{p}.0.bias"]
        mu, var = h.mean(1, keepdim=True), h.var(1, unbiased=False, keepdim=True)
        h = (h - mu) / torch.sqrt(var + 1e-5) * s[f"{p}.1.weight"].flatten() + s[f"{p}.1.bias"].flatten()
        terms[f] = torch.einsum("cp,bp->bc", s[f"{p}.3.weight"].flatten(1), h.clamp(min=0)) + s[f"{p}.3.bias"]
    out = xf
    if "mul" in terms:
        scale = 2 if block.mul_gate == "2sigmoid" else 1
        out = out * scale / (1 + torch.exp(-terms["mul"]))[..., None]
    if "add" in terms:
        out = out + terms["add"][..., None]
    return out.view_as(x)


def _snl_formula(block: SimplifiedNonLocalBlock, x: torch.Tensor) -> torch.Tensor:
    xf = x.flatten(2)
    logits = _conv(block.conv_mask.weight, block.conv_mask.bias, xf)[:, 0]
    a = torch.softmax(logits, 1)
    ctx = torch.zeros(x.shape[:2], dtype=x.dtype)
    for j in range(xf.shape[2]):  # explicit sum over positions
        ctx += a[:, j, None] * xf[:, :, j]
    return (xf + _conv(block.conv_value.weight, block.conv_value.bias, ctx[..., None])).view_as(x)


def _nl_formula(block: NonLocalBlock, x: torch.Tensor) -> torch.Tensor:
    b, c, *sp = x.shape
    keys = x
    if block.pool_size is not None:  # max over non-overlapping 2x2 windows, written as a reshape
        h, w = sp[-2] // 2 * 2, sp[-1] // 2 * 2
        keys = x[..., :h, :w].reshape(b, c, *sp[:-2], h // 2, 2, w // 2, 2).amax(dim=(-3, -1))
    theta = _conv(block.conv_theta.weight, block.conv_theta.bias, x.flatten(2))
    phi = _conv(block.conv_phi.weight, block.conv_phi.bias, keys.flatten(2))
    g = _conv(block.conv_g.weight, block.conv_g.bias, keys.flatten(2))
    f = torch.einsum("bdi,bdj->bij", theta, phi)  # quadratic: (B, N, Nk)
    if block.instantiation == "softmax":
        f = torch.softmax(f / block.inner_channels**0.5, dim=2)
    else:
        f = f / phi.shape[2]
    y = _conv(block.conv_out.weight, block.conv_out.bias, torch.einsum("bij,bdj->bdi", f, g))
    n = block.norm  # eval mode: running statistics
    y = (y - n.running_mean[:, None]) / torch.sqrt(n.running_var[:, None] + n.eps) * n.weight[:, None] + n.bias[:, None]
    return x + y.view_as(x)


FORMULAS = {"gc": _gc_formula, "snl": _snl_formula, "nl": _nl_formula}


@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("kind,opts", CONFIGS, ids=IDS)
def test_block_matches_formula_in_float64(kind, opts, dim):
    block = _randomise(create_block(kind, C, dim=dim, options=opts)).double().eval()
    x = _input(dim, torch.float64, spatial=(5, 7) if dim == 2 else (2, 5, 7))  # odd sizes: pool floors
    with torch.no_grad():
        torch.testing.assert_close(block(x), FORMULAS[kind](block, x), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("instantiation", ["softmax", "dot_product"])
def test_nl_fast_path_equals_materialised_attention_in_float32(instantiation):
    block = _randomise(NonLocalBlock(32, dim=3, instantiation=instantiation)).eval()
    x = torch.randn(2, 32, 4, 14, 14)
    seen = {}
    block.conv_out.register_forward_pre_hook(lambda m, i: seen.update(y=i[0]))  # y before W_z
    with torch.no_grad():
        block(x)
        g = block.conv_g(block.pool(x)).flatten(2)  # (B, d, Nk)
        att = block.attention(x)  # (B, N, Nk)
        assert att.shape == (2, 4 * 14 * 14, 4 * 7 * 7) == (2, 784, torch.Size(block.key_shape((4, 14, 14))).numel())
        y = torch.einsum("bij,bdj->bdi", att, g).view_as(seen["y"])
    torch.testing.assert_close(seen["y"], y, rtol=1e-4, atol=1e-5 * y.abs().max().item())  # float32 reordering
    if instantiation == "softmax":
        torch.testing.assert_close(att.sum(2), torch.ones(2, 784))


def test_nl_softmax_uses_fused_sdpa_kernel_on_cpu():
    block = NonLocalBlock(16, dim=3).eval()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof, torch.no_grad():
        block(_input(3))
    names = {e.key for e in prof.key_averages()}
    assert "aten::_scaled_dot_product_flash_attention_for_cpu" in names, names


@pytest.mark.parametrize("kind,opts", CONFIGS, ids=IDS)
def test_3d_block_with_one_frame_equals_2d_block(kind, opts):
    b2 = _randomise(create_block(kind, C, dim=2, options=opts)).eval()
    b3 = create_block(kind, C, dim=3, options=opts).eval()
    s3 = b3.state_dict()
    b3.load_state_dict({k: v.reshape(s3[k].shape) for k, v in b2.state_dict().items()}, strict=True)
    x = _input(2)
    with torch.no_grad():
        torch.testing.assert_close(b3(x.unsqueeze(2)).squeeze(2), b2(x), rtol=1e-5, atol=1e-6)
    if hasattr(b2, "conv_mask") and b2.conv_mask is not None:
        torch.testing.assert_close(b3.attention(x.unsqueeze(2)), b2.attention(x))


def test_gc_and_snl_attention_maps():
    x = _input(3)
    for block in (_randomise(GlobalContextBlock(C, dim=3, ratio=1 / 4)), _randomise(SimplifiedNonLocalBlock(C, dim=3))):
        att = block.attention(x)
        assert att.shape == (2, 3 * 6 * 8)
        torch.testing.assert_close(att, torch.softmax(block.conv_mask(x).flatten(1), 1))
        torch.testing.assert_close(att.sum(1), torch.ones(2))
    with pytest.raises(ValueError, match="pooling='avg' has no attention map"):
        GlobalContextBlock(C, ratio=1 / 4, pooling="avg").attention(_input(2))


@pytest.mark.parametrize("instantiation", ["softmax", "dot_product"])
@pytest.mark.parametrize("pool", [True, False])
def test_pytorchvideo_nonlocal_weights_load_strictly_with_equal_outputs(instantiation, pool):
    from pytorchvideo.layers.nonlocal_net import create_nonlocal

    ref = create_nonlocal(dim_in=C, dim_inner=C // 2, pool_size=(1, 2, 2) if pool else None, instantiation=instantiation)
    _randomise(ref).eval()  # gamma non-zero, real running statistics
    ours = NonLocalBlock(C, dim=3, pool=pool, instantiation=instantiation).eval()
    ours.load_state_dict(ref.state_dict(), strict=True)
    ref.load_state_dict(ours.state_dict(), strict=True)  # and back: the same key set
    x = _input(3, torch.float64)
    with torch.no_grad():
        # pytorchvideo 0.1.5's NonLocal.forward returns x + BN(conv_out(y)): same residual, same scaling.
        torch.testing.assert_close(ours.double()(x), ref.double()(x), rtol=1e-10, atol=1e-10)


def _mmcv_context_block_state_dict(c: int, planes: int, pooling: str,
                                   fusions: tuple[str, ...]) -> dict[str, torch.Tensor]:
    """Key layout of mmcv.cnn.bricks.ContextBlock(c, ratio, pooling, fusions), written out by hand:
    conv_mask = Conv2d(c, 1, 1) (bias, 'att' only); channel_*_conv = Sequential(Conv2d(c, planes, 1),
    LayerNorm([planes, 1, 1]), ReLU, Conv2d(planes, c, 1)). float64, all random (as after training)."""
    def rand(*shape):
        return torch.randn(*shape, dtype=torch.float64)

    sd = {"conv_mask.weight": rand(1, c, 1, 1), "conv_mask.bias": rand(1)} if pooling == "att" else {}
    for f in fusions:
        p = f"channel_{f}_conv"
        sd |= {f"{p}.0.weight": rand(planes, c, 1, 1) / c**0.5, f"{p}.0.bias": rand(planes)}
        sd |= {f"{p}.1.weight": rand(planes, 1, 1), f"{p}.1.bias": rand(planes, 1, 1)}
        sd |= {f"{p}.3.weight": rand(c, planes, 1, 1) / planes**0.5, f"{p}.3.bias": rand(c)}
    return sd


def _mmcv_context_block_forward(sd: dict[str, torch.Tensor], x: torch.Tensor, pooling: str,
                                fusions: tuple[str, ...]) -> torch.Tensor:
    """mmcv ContextBlock.forward (mmcv/cnn/bricks/context_block.py), line by line, on its state dict."""
    batch, channel, height, width = x.size()
    if pooling == "att":
        input_x = x.view(batch, channel, height * width).unsqueeze(1)  # [N, 1, C, H * W]
        context_mask = F.conv2d(x, sd["conv_mask.weight"], sd["conv_mask.bias"])  # [N, 1, H, W]
        context_mask = F.softmax(context_mask.view(batch, 1, height * width), dim=2).unsqueeze(-1)
        context = torch.matmul(input_x, context_mask).view(batch, channel, 1, 1)  # [N, C, 1, 1]
    else:
        context = F.adaptive_avg_pool2d(x, 1)

    def transform(p: str) -> torch.Tensor:
        h = F.conv2d(context, sd[f"{p}.0.weight"], sd[f"{p}.0.bias"])
        h = F.layer_norm(h, h.shape[1:], sd[f"{p}.1.weight"], sd[f"{p}.1.bias"]).relu()
        return F.conv2d(h, sd[f"{p}.3.weight"], sd[f"{p}.3.bias"])

    out = x
    if "mul" in fusions:
        out = out * torch.sigmoid(transform("channel_mul_conv"))
    if "add" in fusions:
        out = out + transform("channel_add_conv")
    return out


@pytest.mark.parametrize("pooling", ["att", "avg"])
@pytest.mark.parametrize("fusion,mmcv", [("add", ("add",)), (("mul", "add"), ("add", "mul")), ("mul", ("mul",))])
def test_mmcv_context_block_weights_load_strictly_with_equal_outputs(pooling, fusion, mmcv):
    sd = _mmcv_context_block_state_dict(64, 16, pooling, mmcv)  # mmcv fusion_types in either order
    block = GlobalContextBlock(64, ratio=1 / 4, pooling=pooling, fusion=fusion).double().eval()
    block.load_state_dict(sd, strict=True)
    assert set(block.state_dict()) == set(sd)
    x = torch.randn(2, 64, 5, 7, dtype=torch.float64)
    with torch.no_grad():
        expected = _mmcv_context_block_forward(sd, x, pooling, mmcv)
        torch.testing.assert_close(block(x), expected, rtol=1e-12, atol=1e-12)
        channels_last = block(x.contiguous(memory_format=torch.channels_last))
        torch.testing.assert_close(channels_last, expected, rtol=1e-12, atol=1e-12)


def _gc_params(c: int, r: float) -> int:
    p = round(c * r)
    return (c + 1) + (c * p + p) + 2 * p + (p * c + c)  # conv_mask, conv C->Cr, LayerNorm, conv Cr->C


def _snl_params(c: int) -> int:
    return (c + 1) + (c * c + c)  # W_k (conv_mask) and W_v (conv_value), both with bias


def _nl_params(c: int) -> int:
    d = c // 2
    return 3 * (c * d + d) + (d * c + c) + 2 * c  # theta, phi, g, conv_out (with bias), BN affine


def _count(block: nn.Module) -> int:
    return sum(p.numel() for p in block.parameters())


def test_parameter_counts_reproduce_the_paper_tables():
    with torch.device("meta"):
        for c in (512, 1024, 2048):
            assert _count(GlobalContextBlock(c, dim=3, ratio=1 / 4)) == _gc_params(c, 1 / 4)
            assert _count(GlobalContextBlock(c, dim=2, ratio=1 / 16)) == _gc_params(c, 1 / 16)
            assert _count(SimplifiedNonLocalBlock(c, dim=3)) == _snl_params(c)
            assert _count(NonLocalBlock(c, dim=3)) == _nl_params(c)
    slow_r50, resnet50 = 32_454_096, 25_557_032  # pytorchvideo slow_r50 and torchvision resnet50 (no blocks)
    five = (512, 512, 1024, 1024, 1024)  # after blocks 1, 3 of res3 and 1, 3, 5 of res4
    c3_c5 = (512,) * 4 + (1024,) * 6 + (2048,) * 3  # every bottleneck of res3-res5

    def millions(n: int) -> float:
        return round(n / 1e6, 3)

    assert sum(_gc_params(c, 1 / 4) for c in five) == 1_846_277
    assert millions(slow_r50 + sum(_gc_params(c, 1 / 4) for c in five)) == 34.300
    assert millions(slow_r50 + sum(_gc_params(c, 1 / 4) for c in c3_c5)) == 42.455
    assert millions(slow_r50 + sum(_snl_params(c) for c in five)) == 36.132
    assert millions(slow_r50 + sum(_nl_params(c) for c in five)) == 39.813
    assert millions(resnet50 + sum(_gc_params(c, 1 / 16) for c in c3_c5)) == 28.079
    assert millions(resnet50 + sum(_gc_params(c, 1 / 4) for c in c3_c5)) == 35.558
    assert millions(resnet50 + sum(_snl_params(c) for c in c3_c5)) == 45.509
    # The conventions are forced: without W_v's bias SNL gives 45.494M, without NL conv biases 39.802M.
    assert millions(resnet50 + sum(_snl_params(c) - c for c in c3_c5)) == 45.494
    assert millions(slow_r50 + sum(_nl_params(c) - 3 * (c // 2) - c for c in five)) == 39.802


@pytest.mark.parametrize(
    "build,match",
    [
        (lambda: GlobalContextBlock(C, pooling="max"), r"pooling must be one of \('att', 'avg'\)"),
        (lambda: GlobalContextBlock(C, fusion="cat"), r"fusion must be one of \('add', 'mul', \('mul', 'add'\)\)"),
        (lambda: GlobalContextBlock(C, fusion=("add", "add")), "fusion must be one of"),
        (lambda: GlobalContextBlock(C, ratio=0), "ratio must be a number > 0"),
        (lambda: GlobalContextBlock(C, ratio=-0.25), "ratio must be a number > 0"),
        (lambda: GlobalContextBlock(C, ratio=1 / 16), "1 hidden channels for C=16; the LayerNorm transform needs at least 2"),
        (lambda: GlobalContextBlock(64, dim=4), r"dim must be one of \(2, 3\)"),
        (lambda: SimplifiedNonLocalBlock(C, dim=1), r"dim must be one of \(2, 3\)"),
        (lambda: NonLocalBlock(C, dim=4), r"dim must be one of \(2, 3\)"),
        (lambda: NonLocalBlock(C, instantiation="gaussian"), r"instantiation must be one of \('softmax', 'dot_product'\)"),
        (lambda: NonLocalBlock(C, inner_channels=0), "inner_channels must be a positive int"),
        (lambda: create_block("se", C, dim=2), r"unknown block kind 'se'; valid kinds: \['gc', 'nl', 'snl'\]"),
        (lambda: create_block("gc", C, dim=2, options={"ratoi": 0.25}), r"valid options: \['ratio', 'pooling', 'fusion', 'mul_gate'\]"),
        (lambda: GlobalContextBlock(C, fusion="mul", mul_gate="tanh"), r"mul_gate must be one of \('sigmoid', '2sigmoid'\)"),
        (lambda: create_block("snl", C, dim=2, options={"dim": 3}), r"unknown option\(s\) \['dim'\].*valid options: \[\]"),
        (lambda: create_block("nl", C, dim=2, options={"pool_size": 2}), r"\['inner_channels', 'pool', 'instantiation', 'softmax_path'\]"),
        (lambda: NonLocalBlock(C, softmax_path="flash"), r"softmax_path must be one of \('auto', 'sdpa', "),
        (lambda: SimplifiedNonLocalBlock(C, dim=3)(_input(2)), r"expected input \(B, C, T, H, W\) with C=16"),
    ],
)
def test_bad_options_raise_value_error_naming_valid_values(build, match):
    with pytest.raises(ValueError, match=match):
        build()


def test_bench_script_quick_smoke(capsys, tmp_path):
    import json

    from gcvideo.layers.attention_paths import PATHS

    path = Path(__file__).resolve().parents[1] / "scripts" / "bench_blocks.py"
    spec = importlib.util.spec_from_file_location("bench_blocks", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    threads = torch.get_num_threads()
    args = ["--quick", "--device", "cpu", "--repeat", "1", "--sizes", "res4", "--json", str(tmp_path / "b.json")]
    assert bench.main(args) == 0
    assert torch.get_num_threads() == threads  # restored
    out = capsys.readouterr().out
    assert "x floor" in out and "pytorchvideo" in out and "<- policy" in out
    report = json.loads((tmp_path / "b.json").read_text())["sizes"]["res4"]
    pooling = {(r["block"], r["layout"]): r for r in report["pooling"]}
    assert set(pooling) == {(b, l) for b in ("floor", "gc_r4", "snl") for l in ("contiguous", "channels_last")}
    assert all(r["fwd_bwd_x_floor"] > 0 for r in pooling.values())
    # launches per training step: the floor x * a + b is mul, add forward; g * a, g * x, and two sums backward
    for layout in ("contiguous", "channels_last"):
        floor, gc = pooling["floor", layout], pooling["gc_r4", layout]
        assert floor["computing_ops_per_step"] == 6 and floor["ops_per_step"] <= 12, floor
        assert 20 <= gc["computing_ops_per_step"] < gc["ops_per_step"], gc  # views dispatch but launch nothing
    nl = [r for r in report["nl"] if r["block"] == "nl_softmax"]
    assert [r["path"] for r in nl] == list(PATHS)  # every candidate, measured or "n/a" with the reason
    measured = [r for r in nl if "error" not in r]
    assert {"sdpa", "math", "chunked"} <= {r["path"] for r in measured}
    assert [r["path"] for r in measured if r["policy"]] == ["sdpa"]  # the CPU policy
    assert all(r["max_abs_diff"] < 1e-4 for r in measured)  # equal to pytorchvideo's NonLocal
