"""Backbones: published layouts load strictly with equal outputs, blocks start as the identity,
inflation is exact, bad specs fail clearly, and the paper's parameter/compute figures hold."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from gcvideo.models import BlockSpec, PRESETS, count_macs, count_parameters, create, inflate_2d_to_3d
from gcvideo.models.inflate import inflate_weight
from gcvideo.models.placement import FIVE_BLOCKS

VIDEO = [n for n, p in PRESETS.items() if p.video]
IMAGE = [n for n, p in PRESETS.items() if not p.video]
SMALL = 8  # width of the small versions: res5 has 256 channels


def _randomise(model: nn.Module, seed: int = 0) -> nn.Module:
    """Non-trivial values everywhere (zero-initialised block weights and BN statistics included)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if t.is_floating_point():
                if name.endswith("running_var"):
                    t.copy_(torch.rand(t.shape, generator=g) + 0.5)
                else:
                    t.copy_(torch.randn(t.shape, generator=g) * 0.1 + (1.0 if name.endswith("weight") and t.dim() == 1 else 0.0))
    return model.eval()


def test_state_dict_keys_are_pytorchvideo_slow_r50():
    from pytorchvideo.models.hub.resnet import slow_r50

    with torch.device("meta"):
        ours, ref = create("slow_r50"), slow_r50(pretrained=False)
    assert list(ours.state_dict()) == list(ref.state_dict())
    assert {k: v.shape for k, v in ours.state_dict().items()} == {k: v.shape for k, v in ref.state_dict().items()}


def test_pytorchvideo_weights_load_strictly_with_equal_outputs():
    from pytorchvideo.models.resnet import create_resnet

    torch.manual_seed(0)
    ref = create_resnet(model_depth=50, model_num_class=5, stem_dim_out=SMALL, stem_conv_kernel_size=(1, 7, 7),
                        head_pool_kernel_size=(8, 7, 7))
    _randomise(ref)
    ours = create("slow_r50", num_classes=5, width=SMALL).eval()
    ours.load_state_dict(ref.state_dict(), strict=True)
    x = torch.randn(1, 3, 8, 224, 224)  # pytorchvideo's head pools exactly 8x7x7 here
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x), rtol=1e-4, atol=1e-5)
        assert ours(torch.randn(1, 3, 8, 256, 256)).shape == (1, 5)  # adaptive head: test crops of 256


def test_torchvision_resnet50_loads_strictly_with_equal_outputs():
    from torchvision.models import resnet50

    torch.manual_seed(0)
    ref = _randomise(resnet50(num_classes=7))
    ours = create("resnet50", num_classes=7).eval()
    ours.load_state_dict(ref.state_dict(), strict=True)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", list(PRESETS))
def test_blocks_start_as_identity_and_add_only_their_keys(name):
    preset = PRESETS[name]
    baseline = _randomise(create(preset.baseline, num_classes=3, width=SMALL))
    model = create(name, num_classes=3, width=SMALL).eval()
    result = model.load_state_dict(baseline.state_dict(), strict=False)
    assert not result.unexpected_keys
    assert all(".attn_in_branch." in k or ".attn_after_add." in k for k in result.missing_keys)
    assert bool(result.missing_keys) == bool(preset.blocks)
    x = torch.randn(1, 3, 4, 32, 32) if preset.video else torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(x), baseline(x))


@pytest.mark.parametrize("name", ["slow_r50_gc_all", "slow_r50_nl5", "resnet50_snl"])
def test_every_parameter_gets_a_gradient(name):
    model = _randomise(create(name, num_classes=3, width=4)).train()
    video = PRESETS[name].video
    # Big enough that res5 keeps several positions (attention over one position has no gradient).
    x = torch.randn(2, 3, 4, 32, 32) if video else torch.randn(2, 3, 64, 64)
    x.requires_grad_(True)
    model(x).logsumexp(1).sum().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    # The attention-pooling logits' bias shifts every logit equally, so softmax makes its gradient exactly
    # zero; it exists for layout compatibility with the official weights.
    assert [n for n in missing if not n.endswith("conv_mask.bias")] == []
    assert x.grad.abs().sum() > 0


def test_forward_features_and_build_args_round_trip():
    model = create("slow_r50_gc5", num_classes=3, width=SMALL).eval()
    x = torch.randn(2, 3, 4, 32, 32)
    with torch.no_grad():
        feats = model.forward_features(x)
        assert feats.shape == (2, 32 * SMALL)
        head = model.blocks[5].proj
        torch.testing.assert_close(head(feats), model(x))
    rebuilt = create(**model.build_args)
    rebuilt.load_state_dict(model.state_dict(), strict=True)
    assert model.head_prefix == "blocks.5.proj." and create("resnet50", width=4).head_prefix == "fc."
    custom = create("resnet50", width=4, blocks={"kind": "gc", "stages": {"res5": [0]}, "options": {"ratio": 0.5}})
    create(**custom.build_args).load_state_dict(custom.state_dict(), strict=True)


_SNL_ALL = BlockSpec("snl", {"res3": "all", "res4": "all", "res5": "all"})
_NL5 = BlockSpec("nl", FIVE_BLOCKS, position="after_block")


@pytest.mark.parametrize(
    ("name_2d", "blocks_2d", "name_3d", "blocks_3d"),
    [
        ("resnet50_gc_r4", None, "slow_r50_gc_all", None),
        ("resnet50_snl", None, "slow_r50", _SNL_ALL),
        ("resnet50", _NL5, "slow_r50_nl5", None),
    ],
)
def test_inflation_round_trip_on_a_static_video(name_2d, blocks_2d, name_3d, blocks_3d):
    model_2d = _randomise(create(name_2d, num_classes=4, width=SMALL, blocks=blocks_2d))
    model_3d = create(name_3d, num_classes=4, width=SMALL, blocks=blocks_3d).eval()
    model_3d.load_state_dict(inflate_2d_to_3d(model_2d.state_dict(), model_3d, mode="centre"), strict=True)
    image = torch.randn(1, 3, 64, 64)
    video = image.unsqueeze(2).repeat(1, 1, 4, 1, 1)  # the image as a 4-frame static video
    with torch.no_grad():
        torch.testing.assert_close(model_3d(video), model_2d(image), rtol=1e-4, atol=1e-4)


def test_inflation_modes_and_strictness():
    w = torch.randn(6, 5, 1, 1)
    centre = inflate_weight(w, torch.Size([6, 5, 3, 1, 1]), "centre")
    assert torch.equal(centre[:, :, 1], w) and not centre[:, :, 0].any() and not centre[:, :, 2].any()
    mean = inflate_weight(w, torch.Size([6, 5, 3, 1, 1]), "mean")
    torch.testing.assert_close(mean.sum(2), w)
    with pytest.raises(ValueError, match="valid modes: centre, mean"):
        inflate_weight(w, torch.Size([6, 5, 3, 1, 1]), "zero")
    model_3d = create("slow_r50_gc_all", num_classes=4, width=4)
    with pytest.raises(ValueError, match="3D keys without a 2D source"):
        inflate_2d_to_3d(create("resnet50", num_classes=4, width=4).state_dict(), model_3d)
    with pytest.raises(ValueError, match="shape mismatches"):
        inflate_2d_to_3d(create("resnet50_gc_r4", num_classes=9, width=4).state_dict(), model_3d)
    headless = inflate_2d_to_3d(create("resnet50_gc_r4", num_classes=9, width=4).state_dict(), model_3d,
                                include_head=False)
    assert not any(k.startswith("blocks.5.") for k in headless)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "slow_r101"}, "valid presets: slow_r50, "),
        ({"name": "slow_r50", "blocks": {"kind": "nl", "stages": {"res3": [4]}}},
         r"stage res3 has 4 residual blocks \(valid indices 0..3\); got \[4\]"),
        ({"name": "slow_r50", "blocks": {"kind": "nl", "stages": {"res6": [0]}}}, "valid stages: res2, res3, res4, res5"),
        ({"name": "slow_r50", "blocks": {"kind": "se", "stages": {"res3": [0]}}}, "valid kinds: gc, snl, nl"),
        ({"name": "slow_r50", "blocks": {"kind": "gc", "stages": {"res3": "all"}, "position": "before"}},
         "valid positions: after_conv3, after_block"),
        ({"name": "slow_r50", "blocks": {"kind": "gc", "stages": {"res3": "some"}}}, "list of ints or 'all'"),
        ({"name": "slow_r50", "blocks": {"kind": "gc", "stages": {"res3": [0]}, "options": {"ratoi": 0.5}}},
         "valid options"),
        ({"name": "slow_r50", "blocks": {"kind": "gc", "stage": {"res3": [0]}}}, "valid keys"),
        ({"name": "resnet50", "depths": (3, 4, 6)}, "one entry per stage"),
        ({"name": "resnet50", "width": 0}, "must be positive"),
        ({"name": "resnet50", "blocks": [{"kind": "gc", "stages": {"res3": [0]}}, {"kind": "snl", "stages": {"res3": [0]}}]},
         "two attention blocks"),
    ],
)
def test_bad_specs_fail_with_clear_messages(kwargs, message):
    with pytest.raises(ValueError, match=message):
        create(**{"width": 4, **kwargs})


# Exact parameter counts of GCNet's Kinetics and ImageNet tables (arXiv 1904.11492).
PAPER_PARAMS = {
    "slow_r50": 32_454_096, "slow_r50_nl5": 39_812_560, "slow_r50_snl5": 36_132_309, "slow_r50_gc5": 34_300_373,
    "slow_r50_gc_all": 42_455_005, "resnet50": 25_557_032, "resnet50_gc_r16": 28_078_773,
    "resnet50_gc_r4": 35_557_941, "resnet50_snl": 45_508_661,
}


@pytest.mark.parametrize("name", list(PRESETS))
def test_parameter_counts_match_the_paper(name):
    with torch.device("meta"):
        model = create(name)
    params = count_parameters(model)
    assert params == PAPER_PARAMS[name]
    assert round(params / 1e6, 3) == PRESETS[name].paper_params_m


def test_compute_matches_the_paper():
    with torch.device("meta"):
        slow, nl5, resnet = create("slow_r50"), create("slow_r50_nl5"), create("resnet50")
    assert round(count_macs(slow, (1, 3, 8, 224, 224)) / 1e9, 2) == 41.74
    assert round(count_macs(slow, (1, 3, 8, 256, 256)) / 1e9, 2) == 54.52
    assert round(count_macs(resnet, (1, 3, 224, 224)) / 1e9, 2) == 4.09
    # The NL attention matmuls are counted: 5 blocks add about 22 GMACs at 224 (the paper prints "about +22").
    extra = count_macs(nl5, (1, 3, 8, 224, 224)) - count_macs(slow, (1, 3, 8, 224, 224))
    assert round(extra / 1e9) == 22


def test_macs_formula_for_one_conv():
    conv = nn.Conv2d(4, 6, 3, padding=1, bias=False)
    assert count_macs(conv, (2, 4, 5, 5)) == 2 * 6 * 5 * 5 * 4 * 3 * 3


def _conv_and_linear_macs(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Closed-form MACs of the convolutions and linear layers, from the output shapes seen by forward hooks:
    ``outputs x (in_channels / groups) x kernel volume`` per convolution, ``outputs x in_features`` per
    linear layer. A baseline ResNet has no other multiply-accumulates (no attention matmuls)."""
    total = 0

    def count(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        nonlocal total
        if isinstance(module, nn.Linear):
            total += output.numel() * module.in_features
        else:
            total += output.numel() * module.in_channels // module.groups * math.prod(module.kernel_size)

    layers = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Conv3d, nn.Linear))]
    handles = [layer.register_forward_hook(count) for layer in layers]
    with torch.no_grad():
        model.eval()(torch.empty(input_shape, device="meta"))
    for handle in handles:
        handle.remove()
    return total


# As GCNet prints them (arXiv 1904.11492): parameters in millions and GMACs ("GFLOPs") of the baselines of
# its ImageNet table (ResNet-50, 224x224) and its Kinetics-400 table (Slow-only R50 8x8, 8x224x224 and
# 8x256x256).
PUBLISHED = {("resnet50", "224x224"): (25.557, 4.09), ("slow_r50", "8x224x224"): (32.454, 41.74),
             ("slow_r50", "8x256x256"): (32.454, 54.52)}


def test_table_cli_json(capsys):
    import json

    from gcvideo.cli.main import main

    assert main(["table", "--json", "--models", "resnet50", "slow_r50"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0] == {"model": "resnet50", "input": "224x224", "params": 25_557_032, "macs": rows[0]["macs"]}
    assert [r["input"] for r in rows] == ["224x224", "8x224x224", "8x256x256"]
    assert all(isinstance(r["macs"], int) for r in rows)
    for row in rows:
        params_m, gmacs = PUBLISHED[(row["model"], row["input"])]
        assert (round(row["params"] / 1e6, 3), round(row["macs"] / 1e9, 2)) == (params_m, gmacs), row
        with torch.device("meta"):
            model = create(row["model"])
        assert row["params"] == sum(p.numel() for p in model.parameters())
        shape = (1, 3, *(int(v) for v in row["input"].split("x")))
        assert row["macs"] == _conv_and_linear_macs(model, shape), row


def _forward_backward(model: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    x = x.detach().requires_grad_()
    model.zero_grad(set_to_none=True)
    out = model(x)
    out.logsumexp(1).sum().backward()
    # conv_mask.bias shifts every attention logit equally: its gradient is zero up to rounding.
    return [out, x.grad, *(p.grad for n, p in model.named_parameters() if not n.endswith("conv_mask.bias"))]


@pytest.mark.parametrize("name", list(PRESETS))
def test_channels_last_model_equals_contiguous_forward_and_backward(name):
    import copy

    from gcvideo.models import channels_last_input, to_channels_last

    # float64 (rounding differences of the two layouts' kernels would grow through 16 residual blocks);
    # eval: BN statistics fixed, no dropout.
    model = _randomise(create(name, num_classes=5, width=SMALL)).double()
    fast = to_channels_last(copy.deepcopy(model))
    fmt = torch.channels_last_3d if PRESETS[name].video else torch.channels_last
    convs = [m for m in fast.modules() if isinstance(m, (nn.Conv2d, nn.Conv3d))]
    assert convs and all(m.weight.is_contiguous(memory_format=fmt) for m in convs)
    g = torch.Generator().manual_seed(1)
    shape = (2, 3, 4, 32, 32) if PRESETS[name].video else (2, 3, 64, 64)
    x = torch.randn(shape, generator=g, dtype=torch.float64)
    expected = _forward_backward(model, x)
    got = _forward_backward(fast, channels_last_input(x))
    assert got[1].is_contiguous(memory_format=fmt)
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9 * float(b.abs().max()))


def test_module_to_channels_last_3d_fails_on_gc_where_to_channels_last_does_not():
    from gcvideo.models import to_channels_last

    model = create("slow_r50_gc5", num_classes=3, width=4)
    with pytest.raises(RuntimeError, match="rank 5"):  # GC's LayerNorm weight is (planes, 1, 1, 1)
        model.to(memory_format=torch.channels_last_3d)
    to_channels_last(model)
    norm = model.get_submodule("blocks.2.res_blocks.1.attn_after_add.channel_add_conv.1")
    assert norm.weight.shape == (8, 1, 1, 1) and norm.weight.is_contiguous()


@pytest.mark.slow
@pytest.mark.parametrize("name", ["slow_r50_gc_all", "slow_r50_nl5", "slow_r50_snl5", "resnet50_gc_r16"])
def test_channels_last_presets_compile_to_one_graph(name):
    import torch._dynamo

    from gcvideo.models import channels_last_input, to_channels_last

    model = to_channels_last(create(name, num_classes=3, width=4)).train()
    x = torch.randn(2, 3, 4, 32, 32) if PRESETS[name].video else torch.randn(2, 3, 64, 64)
    torch._dynamo.reset()
    explanation = torch._dynamo.explain(model)(channels_last_input(x).requires_grad_())
    assert (explanation.graph_count, explanation.graph_break_count) == (1, 0), explanation.break_reasons
    # pytorchvideo builds conv strides as numpy ints, which torch.compile would trace as tensors.
    assert all(type(s) is int for m in model.modules() if isinstance(m, nn.Conv3d) for s in m.stride)
