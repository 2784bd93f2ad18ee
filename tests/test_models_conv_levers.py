"""The convolution levers (gcvideo.layers.conv_paths, gcvideo.models.conv_levers): every path equals F.conv3d
on the same weights in float64, forward and backward, in both memory layouts, alone and in the whole
Slow-R50 (SlowFast, arXiv 1812.03982) with GC blocks (GCNet, arXiv 1904.11492); parameters, state-dict
keys and MACs do not change, pytorchvideo and (inflated) torchvision checkpoints load strictly, and the
policy picks what its table says."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gcvideo.layers import conv_paths
from gcvideo.layers.conv_paths import KIND_PATHS, POLICY, PathConv3d, choose_path, compute_dtype, conv_kind
from gcvideo.models import channels_last_input, count_macs, create, inflate_2d_to_3d, to_channels_last
from gcvideo.models.conv_levers import apply_conv_levers, lever_paths, parse_levers

# (kind, in, out, kernel, stride, padding, input T x H x W): one of each kind in Slow-R50, and harder cases.
CONVS = [
    ("pointwise", 6, 5, (1, 1, 1), (1, 1, 1), (0, 0, 0), (3, 5, 6)),
    ("downsample", 6, 5, (1, 1, 1), (1, 2, 2), (0, 0, 0), (3, 5, 6)),
    ("downsample", 6, 5, (1, 1, 1), (2, 1, 3), (0, 0, 0), (3, 5, 6)),
    ("spatial", 6, 5, (1, 3, 3), (1, 1, 1), (0, 1, 1), (3, 5, 6)),
    ("spatial", 6, 5, (1, 3, 3), (1, 2, 2), (0, 1, 1), (3, 5, 6)),
    ("stem", 3, 5, (1, 7, 7), (1, 2, 2), (0, 3, 3), (3, 9, 10)),
    ("temporal", 6, 5, (3, 1, 1), (1, 1, 1), (1, 0, 0), (4, 3, 5)),
    ("temporal", 6, 5, (3, 1, 1), (1, 1, 1), (0, 0, 0), (4, 3, 5)),
    ("temporal", 6, 5, (5, 1, 1), (1, 1, 1), (2, 0, 0), (3, 3, 2)),  # a kernel longer than the clip
]
CASES = [(c, path) for c in CONVS for path in KIND_PATHS[c[0]] if path != "conv3d"]
ALL_MATMUL = "stem=fold,pointwise=matmul,downsample=matmul,spatial=fold,temporal=matmul"
ALL_CONV2D = "pointwise=conv2d,downsample=conv2d,temporal=conv2d"
FORMATS = {"contiguous": torch.contiguous_format, "channels_last": torch.channels_last_3d}


def _grads(module: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    x = x.detach().requires_grad_()
    module.zero_grad(set_to_none=True)
    out = module(x)
    weights = torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view(out.shape)  # a non-uniform loss
    (out * weights).sum().backward()
    return [out, x.grad, *(p.grad for p in module.parameters())]


@pytest.mark.parametrize("layout", list(FORMATS))
@pytest.mark.parametrize("spec,path", CASES, ids=[f"{c[0]}-{c[3]}-{c[4]}-{c[5]}-{p}" for c, p in CASES])
def test_every_path_equals_conv3d_forward_and_backward(spec, path, layout):
    kind, cin, cout, kernel, stride, padding, thw = spec
    torch.manual_seed(0)
    plain = nn.Conv3d(cin, cout, kernel, stride, padding, bias=True).double()
    assert conv_kind(plain) == ("spatial" if kind == "stem" else kind)
    fast = PathConv3d.from_conv(copy.deepcopy(plain), kind, path)
    x = torch.randn(2, cin, *thw, dtype=torch.float64).contiguous(memory_format=FORMATS[layout])
    if layout == "channels_last":
        plain, fast = plain.to(memory_format=torch.channels_last_3d), fast.to(memory_format=torch.channels_last_3d)
    expected, got = _grads(plain, x), _grads(fast, x)
    assert got[0].is_contiguous(memory_format=FORMATS[layout]), "the output keeps the input's layout"
    for a, b in zip(got, expected, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("weight_layout", list(FORMATS))
@pytest.mark.parametrize("layout", list(FORMATS))
@pytest.mark.parametrize("path", ["matmul", "conv2d"])
def test_temporal_paths_take_any_weight_layout_and_return_its_gradient_in_it(path, layout, weight_layout):
    """Input and weight layouts need not agree. A channels_last_3d weight is read as (Cout*k, Cin) rows in place,
    so its gradient arrives with the weight's own strides and autograd stores it without a copy."""
    torch.manual_seed(0)
    plain = nn.Conv3d(6, 5, (3, 1, 1), padding=(1, 0, 0), bias=True).double()
    fast = PathConv3d.from_conv(copy.deepcopy(plain), "temporal", path).to(memory_format=FORMATS[weight_layout])
    x = torch.randn(2, 6, 4, 3, 5, dtype=torch.float64).contiguous(memory_format=FORMATS[layout])
    arriving = []  # the gradient as autograd hands it over, before it is stored (and copied if its strides differ)
    fast.weight.register_hook(lambda grad: arriving.append(grad.stride()))
    expected, got = _grads(plain, x), _grads(fast, x)
    for a, b in zip(got, expected, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    if path == "matmul" and weight_layout == "channels_last":
        assert arriving == [fast.weight.stride()]


def _randomise(model: nn.Module) -> nn.Module:
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if t.is_floating_point():
                t.copy_(torch.rand(t.shape, generator=g) + 0.5 if name.endswith(("running_var", "norm.weight"))
                        else torch.randn(t.shape, generator=g) * 0.2)
    return model


@pytest.mark.parametrize("levers", [ALL_MATMUL, ALL_CONV2D, "auto"])
@pytest.mark.parametrize("layout", list(FORMATS))
def test_whole_model_with_levers_equals_the_plain_model(levers, layout):
    """Training mode (BN on batch statistics), float64: the logits and every gradient are the plain model's."""
    plain = _randomise(create("slow_r50_gc5", num_classes=5, width=4, dropout=0.0, conv_levers="none")).double()
    fast = apply_conv_levers(copy.deepcopy(plain), levers)
    assert list(fast.state_dict()) == list(plain.state_dict())
    assert sum(isinstance(m, PathConv3d) for m in fast.modules()) == 53  # every convolution of the backbone
    x = torch.randn(2, 3, 4, 32, 32, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    if layout == "channels_last":
        plain, fast, x = to_channels_last(plain), to_channels_last(fast), channels_last_input(x)
    expected, got = _grads(plain.train(), x), _grads(fast.train(), x)
    names = ["logits", "input", *(n for n, _ in plain.named_parameters())]
    for name, a, b in zip(names, got, expected, strict=True):
        if not name.endswith("conv_mask.bias"):  # shifts every attention logit alike: its gradient is 0 + rounding
            torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9 * float(b.detach().abs().max()), msg=name)


def test_pytorchvideo_weights_load_strictly_into_lever_models_with_equal_outputs():
    from pytorchvideo.models.resnet import create_resnet

    torch.manual_seed(0)
    ref = create_resnet(model_depth=50, model_num_class=5, stem_dim_out=4, stem_conv_kernel_size=(1, 7, 7),
                        head_pool=nn.AdaptiveAvgPool3d, head_output_size=(1, 1, 1))
    ref = _randomise(ref).double().eval()
    x = torch.randn(1, 3, 4, 32, 32, dtype=torch.float64)
    for levers in (ALL_MATMUL, ALL_CONV2D, "auto"):
        ours = create("slow_r50", num_classes=5, width=4, conv_levers=levers).double().eval()
        ours.load_state_dict(ref.state_dict(), strict=True)
        with torch.no_grad():
            torch.testing.assert_close(ours(x), ref(x), rtol=1e-10, atol=1e-10)


def test_torchvision_weights_load_strictly_into_lever_models():
    """torchvision's ResNet-50 into the image model, and inflated into the video model with every lever."""
    from torchvision.models import resnet50

    reference = resnet50(num_classes=7)
    create("resnet50", num_classes=7, conv_levers=ALL_MATMUL).load_state_dict(reference.state_dict(), strict=True)
    video = create("slow_r50", num_classes=7, conv_levers=ALL_MATMUL)
    assert sum(isinstance(m, PathConv3d) for m in video.modules()) == 53
    video.load_state_dict(inflate_2d_to_3d(reference.state_dict(), video), strict=True)
    torch.testing.assert_close(video.blocks[0].conv.weight[:, :, 0], reference.conv1.weight)


def test_levers_keep_parameters_build_args_and_macs():
    plain = create("slow_r50_gc5", num_classes=3, width=4, conv_levers="none")
    fast = create("slow_r50_gc5", num_classes=3, width=4, conv_levers=ALL_MATMUL)
    assert {k: v.shape for k, v in fast.state_dict().items()} == {k: v.shape for k, v in plain.state_dict().items()}
    assert fast.build_args["conv_levers"] == ALL_MATMUL and create("resnet50").build_args["conv_levers"] == "auto"
    create(**fast.build_args).load_state_dict(fast.state_dict(), strict=True)
    shape = (1, 3, 4, 32, 32)
    for levers in (ALL_MATMUL, ALL_CONV2D):  # the MFU of every lever is counted on the same MACs
        assert count_macs(apply_conv_levers(copy.deepcopy(plain), levers), shape) == count_macs(plain, shape)
    shared = PathConv3d.from_conv(plain.blocks[0].conv, "stem")
    assert shared.weight is plain.blocks[0].conv.weight  # shared, not copied


def test_lever_option_errors_name_the_valid_values():
    assert parse_levers(" auto ") == "auto" and parse_levers("none") == "none"
    assert parse_levers("pointwise=matmul, temporal=conv2d") == {"pointwise": "matmul", "temporal": "conv2d"}
    for bad in ("fast", "pointwise=fold", "pointwise=matmul,pointwise=conv2d", "depthwise=matmul", ""):
        with pytest.raises(ValueError, match="temporal=conv3d|conv2d|matmul|kind=path"):
            parse_levers(bad)
    with pytest.raises(ValueError, match="expected 'auto', 'none'"):
        create("slow_r50", width=4, conv_levers="spatial=matmul")
    with pytest.raises(ValueError, match="valid paths: \\('auto', 'conv3d', 'conv2d', 'matmul'\\)"):
        PathConv3d(4, 4, (3, 1, 1), kind="temporal", path="fold")


def test_the_policy_picks_what_its_table_says(monkeypatch):
    assert all(rule.path in KIND_PATHS[rule.kind] and rule.why for rule in POLICY)
    for rule in POLICY:  # a rule below one that matches the same settings first never applies
        dtype = rule.dtypes[0] if rule.dtypes else torch.float32
        layout = "contiguous" if rule.layout == "*" else rule.layout
        first = next(r for r in POLICY if r.matches(rule.kind, rule.device, dtype, layout))
        assert choose_path(rule.kind, rule.device, dtype, layout) == first.path
    assert choose_path("pointwise", "meta", torch.float32, "contiguous") == "conv3d"  # MAC counting: the plain path
    assert choose_path("temporal", "cpu", torch.float32, "contiguous") == "conv2d"
    assert choose_path("downsample", "cpu", torch.float32, "channels_last") == "matmul"
    model = create("slow_r50", width=4)  # "auto" by default: each input's settings pick the paths
    for layout in ("contiguous", "channels_last"):
        expected = {k: choose_path(k, "cpu", torch.float32, layout) for k in KIND_PATHS}
        assert lever_paths(model, "cpu", torch.float32, layout) == expected
    monkeypatch.setattr(conv_paths, "POLICY", (conv_paths.Rule("cpu", (), "*", "temporal", "matmul", "test"),))
    conv = PathConv3d(4, 4, (3, 1, 1), padding=(1, 0, 0), bias=False, kind="temporal").double()
    called = []
    monkeypatch.setattr(conv_paths, "matmul_temporal", lambda *a: called.append(a) or F.conv3d(a[0], a[1], a[2]))
    conv(torch.randn(1, 4, 3, 2, 2, dtype=torch.float64))
    assert len(called) == 1


def test_autocast_decides_the_dtype_the_policy_sees():
    x = torch.randn(1, 2, 1, 2, 2)
    assert compute_dtype(x) == torch.float32
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert compute_dtype(x) == torch.bfloat16
        assert compute_dtype(x.double()) == torch.float64  # autocast casts float32 only
    conv = PathConv3d(2, 3, (1, 1, 1), bias=True, kind="pointwise", path="matmul")
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert conv(x).dtype == torch.bfloat16  # the bias add does not promote to float32


@pytest.mark.parametrize("path", ["matmul", "conv2d"])
def test_paths_trace_to_one_graph(path):
    import torch._dynamo

    model = create("slow_r50", num_classes=3, width=4, depths=(1, 1, 1, 1),
                   conv_levers=f"pointwise={path},downsample={path},temporal={path}")
    torch._dynamo.reset()
    explanation = torch._dynamo.explain(model)(torch.randn(2, 3, 4, 32, 32).requires_grad_())
    assert (explanation.graph_count, explanation.graph_break_count) == (1, 0), explanation.break_reasons
