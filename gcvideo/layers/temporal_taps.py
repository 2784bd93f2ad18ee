"""A kx1x1 convolution with stride 1 (the temporal conv_a of Slow-R50's res4-res5, SlowFast arXiv 1812.03982,
table 1) as matrix products of its k taps over only the frames each tap reaches.

With zero padding along time, ``F.conv3d`` and a product of all k taps stacked multiply every frame by every
tap, padding included: with a 3x1x1 kernel on 4 frames, 2 of the 12 frame-tap products land outside the
clip. Here each tap ``j`` (time shift ``s = j - padding``) multiplies only the input frames ``t + s`` of the
output frames ``t`` it reaches, and adds into those output rows in place, so neither the skipped products nor
a padded copy per tap are made. Forward and backward read a channels_last_3d input as rows of
``(T*H*W, C)`` per clip and a channels_last_3d weight as ``(Cout, k, Cin)``: both views, no copy, and the
weight's gradient is written in the weight's own layout.
"""

from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable


def reached_frames(k: int, padding: int, frames: int) -> list[tuple[int, int, int, int]]:
    """``(tap, first output frame, end output frame, shift)`` of each tap that reaches an output frame:
    output frames ``lo <= t < hi`` read input frame ``t + shift``."""
    out_frames = frames + 2 * padding - k + 1
    taps = []
    for j in range(k):
        shift = j - padding
        lo, hi = max(0, -shift), min(out_frames, frames - shift)
        if hi > lo:
            taps.append((j, lo, hi, shift))
    return sorted(taps, key=lambda tap: tap[1] - tap[2])  # the widest first: it may write instead of adding


def applies(x: torch.Tensor, weight: torch.Tensor) -> bool:
    """Whether ``temporal_taps`` takes these tensors: both channels_last_3d, one dtype, no autocast on their
    device (under autocast the stacked product's ``F.linear`` casts as autocast does)."""
    device = x.device.type
    autocast = device in ("cpu", "cuda") and torch.is_autocast_enabled(device)
    return (x.dim() == 5 and x.stride(1) == 1 and x.is_contiguous(memory_format=torch.channels_last_3d)
            and weight.stride(1) == 1 and weight.is_contiguous(memory_format=torch.channels_last_3d)
            and x.dtype == weight.dtype and not autocast)


def _rows(x: torch.Tensor) -> torch.Tensor:
    """(N, T*H*W, C) rows of a channels_last_3d (N, C, T, H, W) tensor: a view."""
    n, c, t, h, w = x.shape
    return x.permute(0, 2, 3, 4, 1).reshape(n, t * h * w, c)


def _taps_of(weight: torch.Tensor) -> torch.Tensor:
    """(Cout, k, Cin) taps of a channels_last_3d (Cout, Cin, k, 1, 1) weight: a view."""
    cout, cin, k = weight.shape[:3]
    return weight.permute(0, 2, 3, 4, 1).reshape(cout, k, cin)


class TemporalTaps(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,  # noqa: D102
                padding: int) -> torch.Tensor:
        n, _, t, h, w = x.shape
        cout, k, hw = weight.shape[0], weight.shape[2], h * w
        rows, taps = _rows(x), _taps_of(weight)
        out_frames = t + 2 * padding - k + 1
        out = x.new_empty(n, out_frames, h, w, cout)
        out_rows = out.view(n, out_frames * hw, cout)
        reached = reached_frames(k, padding, t)
        j, lo, hi, shift = reached[0]
        if (lo, hi, shift) == (0, out_frames, 0) and out_frames == t:  # a tap on every frame: one product for all
            torch.mm(rows.reshape(-1, rows.shape[-1]), taps[:, j].t(), out=out_rows.view(-1, cout))
            reached = reached[1:]
        else:
            out_rows.zero_()
        for j, lo, hi, shift in reached:
            for i in range(n):
                out_rows[i, lo * hw:hi * hw].addmm_(rows[i, (lo + shift) * hw:(hi + shift) * hw], taps[:, j].t())
        if bias is not None:
            out_rows += bias
        ctx.save_for_backward(x, weight)
        ctx.padding, ctx.has_bias = padding, bias is not None
        return out.permute(0, 4, 1, 2, 3)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: torch.Tensor):  # noqa: D102
        x, weight = ctx.saved_tensors
        n, c, t, h, w = x.shape
        cout, k, hw = weight.shape[0], weight.shape[2], h * w
        rows, taps = _rows(x), _taps_of(weight)
        grad = grad.permute(0, 2, 3, 4, 1).contiguous()  # a no-op for a channels_last_3d gradient
        out_frames = grad.shape[1]
        grad_rows = grad.view(n, out_frames * hw, cout)
        grad_x = x.new_empty(n, t, h, w, c)
        gx_rows = grad_x.view(n, t * hw, c)
        grad_w = torch.empty_like(weight, memory_format=torch.channels_last_3d)
        gw_taps = _taps_of(grad_w)
        reached = reached_frames(k, ctx.padding, t)
        written = set()
        j, lo, hi, shift = reached[0]
        if (lo, hi, shift) == (0, out_frames, 0) and out_frames == t:
            flat_grad, flat_rows = grad_rows.reshape(-1, cout), rows.reshape(-1, c)
            torch.mm(flat_grad, taps[:, j], out=gx_rows.view(-1, c))
            gw_taps[:, j].addmm_(flat_grad.t(), flat_rows, beta=0)
            written.add(j)
            reached = reached[1:]
        else:
            gx_rows.zero_()
        for j, lo, hi, shift in reached:
            for i in range(n):
                g, r = grad_rows[i, lo * hw:hi * hw], rows[i, (lo + shift) * hw:(hi + shift) * hw]
                gx_rows[i, (lo + shift) * hw:(hi + shift) * hw].addmm_(g, taps[:, j])
                gw_taps[:, j].addmm_(g.t(), r, beta=1 if j in written else 0)  # beta 0: the memory is unset
                written.add(j)
        for j in set(range(k)) - written:  # a tap that reaches no output frame (a kernel longer than the clip)
            gw_taps[:, j].zero_()
        grad_b = grad_rows.sum(dim=(0, 1)) if ctx.has_bias else None
        return grad_x.permute(0, 4, 1, 2, 3), grad_w, grad_b, None


def temporal_taps(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, padding: int) -> torch.Tensor:
    """``F.conv3d(x, weight, bias, padding=(padding, 0, 0))`` for a (Cout, Cin, k, 1, 1) ``weight``, over the frames
    each tap reaches; ``x`` and ``weight`` channels_last_3d (``applies``). The output is channels_last_3d."""
    return TemporalTaps.apply(x, weight, bias, padding)
