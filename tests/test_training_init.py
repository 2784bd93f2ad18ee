"""``init_from``: a pytorchvideo-format checkpoint, a gcvideo checkpoint, an exported backbone and a
torchvision ResNet-50 state dict load their matching keys; the head is dropped when the class count
differs; GC blocks (identity at init) added to a baseline reproduce the baseline's features exactly."""

from __future__ import annotations

import pytest
import torch
from pytorchvideo.models.resnet import create_resnet

from gcvideo.models import create
from gcvideo.models.io import export_backbone
from gcvideo.training import Classifier, init_from


def _pytorchvideo_slow(width: int, classes: int) -> torch.nn.Module:
    """A narrow Slow-only R50 built by pytorchvideo itself (as its ``slow_r50``)."""
    torch.manual_seed(1)
    net = create_resnet(model_depth=50, model_num_class=classes, dropout_rate=0.5, stem_dim_out=width,
                        stem_conv_kernel_size=(1, 7, 7), head_pool_kernel_size=(4, 1, 1))
    with torch.no_grad():
        for name, p in net.named_parameters():
            p.add_(0.05 * torch.randn_like(p))
        for name, b in net.named_buffers():
            if name.endswith("running_var"):
                b.uniform_(0.5, 1.5)
    return net.eval()


def test_pytorchvideo_checkpoint_into_gc_model_gives_the_baseline_features(tmp_path):
    reference = _pytorchvideo_slow(width=4, classes=400)
    path = tmp_path / "SLOW_8x8_R50.pyth"
    torch.save({"model_state": reference.state_dict(), "epoch": 196, "cfg": "yaml text"}, path)
    model = create("slow_r50_gc5", num_classes=5, width=4).eval()
    report = init_from(model, path)
    assert report.head_dropped and report.unexpected == [] and report.mismatched == []
    assert all(".attn_after_add." in k or k.startswith("blocks.5.proj.") for k in report.missing)
    assert len(report.loaded) == len(reference.state_dict()) - 2  # everything but the 400-class head
    x = torch.randn(2, 3, 4, 32, 32)
    with torch.no_grad():
        trunk = x
        for block in reference.blocks[:5]:
            trunk = block(trunk)
        assert torch.allclose(model.forward_features(x), trunk.mean(dim=(2, 3, 4)), atol=1e-6)
    baseline = create("slow_r50", num_classes=400, width=4).eval()
    assert init_from(baseline, path).missing == [] and not init_from(baseline, path).head_dropped
    with torch.no_grad():
        assert torch.allclose(baseline(x), reference(x), atol=1e-6)


def _trained_statistics(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``state`` with BatchNorm statistics unlike a fresh model's (mean 0, variance 1, no batches): a file
    whose statistics were not loaded cannot pass for one whose were."""
    g = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for key, value in state.items():
            if key.endswith("running_mean"):
                value.copy_(torch.randn(value.shape, generator=g))
            elif key.endswith("running_var"):
                value.copy_(torch.rand(value.shape, generator=g) + 0.5)
            elif key.endswith("num_batches_tracked"):
                value.fill_(7)
    return state


def test_gcvideo_checkpoint_and_exported_backbone(tmp_path):
    source = Classifier("slow_r50", num_classes=3, width=4)
    _trained_statistics(source.state_dict())  # in place: the state dict's tensors are the module's
    ckpt = tmp_path / "last.ckpt"
    torch.save({"state_dict": source.state_dict(), "hyper_parameters": dict(source.hparams)}, ckpt)
    target = create("slow_r50_snl5", num_classes=3, width=4)
    report = init_from(target, ckpt)
    assert not report.head_dropped and all(".attn_after_add." in k for k in report.missing)
    for key, value in source.model.state_dict().items():
        assert torch.equal(target.state_dict()[key], value)
    exported = export_backbone(source.model, tmp_path / "b.safetensors")
    target = create("slow_r50", num_classes=7, width=4)
    report = init_from(target, exported)
    assert report.missing == ["blocks.5.proj.bias", "blocks.5.proj.weight"]  # backbone-only file
    assert report.loaded == sorted(k for k in source.model.state_dict() if not k.startswith("blocks.5.proj."))
    for key in report.loaded:
        assert torch.equal(target.state_dict()[key], source.model.state_dict()[key]), key


def test_module_applies_init_from_in_setup(tmp_path):
    source = create("slow_r50", num_classes=3, width=4)
    path = tmp_path / "w.pth"
    torch.save({"module." + k: v for k, v in source.state_dict().items()}, path)  # a DDP-saved state dict
    module = Classifier("slow_r50_gc5", num_classes=3, width=4, init_from=str(path))
    assert not torch.equal(module.model.blocks[0].conv.weight, source.blocks[0].conv.weight)
    module.setup("fit")
    assert torch.equal(module.model.blocks[0].conv.weight, source.blocks[0].conv.weight)


def test_torchvision_resnet50_into_a_2d_model(tmp_path):
    torchvision = pytest.importorskip("torchvision")
    path = tmp_path / "resnet50.pth"
    reference = _trained_statistics(torchvision.models.resnet50().state_dict())
    torch.save(reference, path)  # full size: a 2D ResNet-50 is cheap
    image = create("resnet50_gc_r16", num_classes=10)
    report = init_from(image, path)
    assert report.head_dropped and report.unexpected == [] and report.mismatched == []
    assert report.missing and all(".attn_in_branch." in k or k.startswith("fc.") for k in report.missing)
    assert report.loaded == sorted(k for k in reference if not k.startswith("fc."))  # all but the 1000-class head
    for key in report.loaded:
        assert torch.equal(image.state_dict()[key], reference[key]), key
    with pytest.raises(ValueError, match="inflate must be one of"):
        init_from(image, path, inflate="nearest")


def test_2d_weights_inflate_into_a_3d_model(tmp_path):
    """A torchvision-layout state dict (gcvideo's 2D ResNet-50 at width 4 has torchvision's key names) is
    inflated into the Slow-only model: on a clip of one repeated frame it computes the 2D features."""
    torch.manual_seed(0)
    image = create("resnet50", num_classes=10, width=4).eval()
    with torch.no_grad():
        for name, b in image.named_buffers():
            if name.endswith("running_var"):
                b.uniform_(0.5, 1.5)
    path = tmp_path / "r50_narrow.pth"
    torch.save(image.state_dict(), path)
    video = create("slow_r50_gc5", num_classes=10, width=4).eval()
    report = init_from(video, path)  # centre: the 3x1x1 kernels of res4/res5 get the 2D weights in the middle
    assert "inflated to 3D" in report.source and report.unexpected == [] and report.mismatched == []
    assert not report.head_dropped and all(".attn_after_add." in k for k in report.missing)
    frame = torch.randn(2, 3, 32, 32)
    clip = frame.unsqueeze(2).expand(-1, -1, 4, -1, -1).contiguous()
    with torch.no_grad():
        assert torch.allclose(video.forward_features(clip), image.forward_features(frame), atol=1e-5)
    mean = create("slow_r50", num_classes=10, width=4)
    init_from(mean, path, inflate="mean")
    conv = mean.blocks[3].res_blocks[0].branch2.conv_a.weight  # res4: temporal kernel 3
    assert conv.shape[2] == 3 and torch.allclose(conv.sum(2), image.layer3[0].conv1.weight, atol=1e-7)


def test_nothing_matching_is_an_error(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"encoder.weight": torch.zeros(3)}, path)
    with pytest.raises(ValueError, match="no tensor matches"):
        init_from(create("slow_r50", num_classes=3, width=4), path)
    torch.save([1, 2], path)
    with pytest.raises(ValueError, match="expected a checkpoint dict"):
        init_from(create("slow_r50", num_classes=3, width=4), path)
