"""A kx1x1 convolution over the frames each tap reaches (gcvideo.layers.temporal_taps) equals F.conv3d in
float64, forward and backward, for kernels shorter and longer than the clip, with and without padding and
bias; it computes only the frame-tap products inside the clip and is what the matmul path runs on
channels_last_3d tensors."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gcvideo.layers import temporal_taps
from gcvideo.layers.conv_paths import PathConv3d
from gcvideo.layers.temporal_taps import applies, reached_frames

CL = torch.channels_last_3d


def test_reached_frames_are_the_products_inside_the_clip():
    # 3x1x1, padding 1, 4 frames: tap 1 on every frame, tap 0 on outputs 1-3 (inputs 0-2), tap 2 on outputs 0-2.
    assert reached_frames(3, 1, 4) == [(1, 0, 4, 0), (0, 1, 4, -1), (2, 0, 3, 1)]
    assert sum(hi - lo for _, lo, hi, _ in reached_frames(3, 1, 4)) == 10  # of 3 x 4 with the padding
    for k, padding, frames in [(3, 0, 4), (5, 2, 3), (1, 0, 2), (3, 1, 1)]:
        out_frames = frames + 2 * padding - k + 1
        expected = sum(1 for t in range(out_frames) for j in range(k) if 0 <= t + j - padding < frames)
        assert sum(hi - lo for _, lo, hi, _ in reached_frames(k, padding, frames)) == expected


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("k,padding,frames", [(3, 1, 4), (3, 0, 4), (5, 2, 3), (3, 1, 1), (1, 0, 3), (3, 2, 2)])
def test_equals_conv3d_forward_and_backward(k, padding, frames, bias):
    g = torch.Generator().manual_seed(k * 10 + padding + frames)
    x = torch.randn(3, 6, frames, 2, 3, dtype=torch.float64, generator=g).contiguous(memory_format=CL)
    weight = torch.randn(5, 6, k, 1, 1, dtype=torch.float64, generator=g).contiguous(memory_format=CL)
    b = torch.randn(5, dtype=torch.float64, generator=g) if bias else None
    inputs = [t.detach().requires_grad_() for t in (x, weight, *([b] if bias else []))]
    expected = F.conv3d(*inputs, padding=(padding, 0, 0))
    out_grad = torch.randn(expected.shape, dtype=torch.float64, generator=g)
    expected_grads = torch.autograd.grad(expected, inputs, out_grad)
    fresh = [t.detach().requires_grad_() for t in inputs]
    got = temporal_taps.temporal_taps(fresh[0], fresh[1], fresh[2] if bias else None, padding)
    got_grads = torch.autograd.grad(got, fresh, out_grad.contiguous(memory_format=CL))
    assert got.is_contiguous(memory_format=CL)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)
    for a, e in zip(got_grads, expected_grads, strict=True):
        torch.testing.assert_close(a, e, rtol=1e-12, atol=1e-12)
    same_layout = all(a == b for a, b, size in zip(got_grads[1].stride(), weight.stride(), weight.shape) if size > 1)
    assert same_layout  # the gradient in the weight's own layout (strides of unit dimensions do not matter)


def test_applies_to_channels_last_tensors_of_one_dtype_without_autocast():
    x = torch.randn(1, 4, 3, 2, 2).contiguous(memory_format=CL)
    weight = torch.randn(4, 4, 3, 1, 1).contiguous(memory_format=CL)
    assert applies(x, weight)
    assert not applies(x.contiguous(), weight) and not applies(x, weight.contiguous())
    assert not applies(x.double(), weight)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert not applies(x, weight)


def test_the_matmul_path_runs_it_on_channels_last(monkeypatch):
    calls = []
    real = temporal_taps.temporal_taps
    monkeypatch.setattr(temporal_taps, "temporal_taps", lambda *a: calls.append(a[3]) or real(*a))
    plain = nn.Conv3d(4, 5, (3, 1, 1), padding=(1, 0, 0), bias=False).double()
    fast = PathConv3d.from_conv(copy.deepcopy(plain), "temporal", "matmul")
    x = torch.randn(2, 4, 4, 3, 3, dtype=torch.float64)
    fast(x)
    assert calls == []  # contiguous: the stacked product
    fast.to(memory_format=CL)
    torch.testing.assert_close(fast(x.contiguous(memory_format=CL)), plain(x), rtol=1e-12, atol=1e-12)
    assert calls == [1]


def test_under_bf16_autocast_the_matmul_path_takes_the_stacked_product(monkeypatch):
    """channels_last + bf16 autocast (``--trainer.precision bf16-mixed`` on a CPU): the taps function is not
    used (autocast casts F.linear's operands), and the forced matmul path trains like F.conv3d under autocast."""
    monkeypatch.setattr(temporal_taps, "temporal_taps", lambda *a: pytest.fail("taps under autocast"))
    torch.manual_seed(0)
    plain = nn.Conv3d(8, 6, (3, 1, 1), padding=(1, 0, 0), bias=False).to(memory_format=CL)
    fast = PathConv3d.from_conv(copy.deepcopy(plain), "temporal", "matmul")
    x = torch.randn(2, 8, 4, 3, 3).contiguous(memory_format=CL)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        expected, got = plain(x), fast(x)
    assert got.dtype == expected.dtype == torch.bfloat16
    torch.testing.assert_close(got.float(), expected.float(), rtol=2e-2, atol=2e-2)
    got.float().sum().backward()
    expected.float().sum().backward()
    torch.testing.assert_close(fast.weight.grad, plain.weight.grad, rtol=2e-2, atol=5e-2)
