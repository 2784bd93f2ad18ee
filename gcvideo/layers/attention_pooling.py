"""Helpers shared by the GC and SNL blocks (GCNet, arXiv 1904.11492, Sec. 3-4).

Both blocks pool the whole feature map into one context vector with a single, query-independent
attention map ``softmax_j(W_k x_j)``. They run close to the memory-bandwidth floor in either memory
layout: positions are flattened to a ``(B, N, C)`` view that is free for contiguous and for
channels_last(_3d) tensors (``flatten_positions``), the logits ``W_k x_j`` and the context
``sum_j a_j x_j`` are batched vector-matrix products on that view (no copy of the feature map), and the
backward pass writes one feature-map-sized gradient, in the input's layout (``_AttentionPool``). One
implementation serves 2D ``(B, C, H, W)`` and 3D ``(B, C, T, H, W)`` inputs.
"""

from __future__ import annotations

import contextlib
import math

import torch
from torch import nn

VALID_DIMS = (2, 3)
AUTOCAST_DEVICES = ("cpu", "cuda", "xpu", "mps", "hpu")  # device types with an autocast mode


def check_dim(dim: int) -> int:
    """Return ``dim`` if it is 2 or 3, else raise ValueError naming the valid values."""
    if isinstance(dim, bool) or dim not in VALID_DIMS:
        raise ValueError(f"dim must be one of {VALID_DIMS} (2: (B, C, H, W), 3: (B, C, T, H, W)), got {dim!r}")
    return dim


def check_input(x: torch.Tensor, channels: int, dim: int) -> None:
    """Raise ValueError unless ``x`` is ``(B, channels, *spatial)`` with ``dim`` spatial axes."""
    if x.dim() != dim + 2 or x.shape[1] != channels:
        layout = "(B, C, H, W)" if dim == 2 else "(B, C, T, H, W)"
        raise ValueError(f"expected input {layout} with C={channels} for dim={dim}, got shape {tuple(x.shape)}")


def conv_nd(dim: int, in_channels: int, out_channels: int, bias: bool = True) -> nn.Module:
    """A 1x1 (2D) or 1x1x1 (3D) convolution."""
    conv = nn.Conv2d if dim == 2 else nn.Conv3d
    return conv(in_channels, out_channels, kernel_size=1, bias=bias)


def conv_matrix(conv: nn.Module) -> torch.Tensor:
    """The weight of a 1x1(x1) convolution as an ``(out, in)`` matrix (a view, in any memory format)."""
    return conv.weight.flatten(1)


def autocast_off(x: torch.Tensor) -> contextlib.AbstractContextManager:
    """Autocast off on ``x``'s device: the blocks pick their dtypes themselves.

    Under autocast, the feature-map-sized products would be cast to the autocast dtype (a full copy when
    ``x`` is float32) and the small transforms would cast their weights on every call. The blocks run
    the products in ``x``'s dtype and the ``(B, C)`` transforms in their parameters' dtype instead.
    """
    # Only where autocast is on: torch.compile (2.14 and earlier) fails an assertion ("Global autocast
    # state changed while dynamo tracing") when an autograd.Function's backward enters an autocast
    # context, and the backward is traced inside the forward's autocast-off region. A fixed set of device
    # types rather than torch.amp.is_autocast_available, which dynamo cannot trace in torch < 2.14 (a
    # graph break at every block).
    device = x.device.type
    if device in AUTOCAST_DEVICES and torch.is_autocast_enabled(device):
        return torch.autocast(device, enabled=False)
    return contextlib.nullcontext()


def flatten_positions(x: torch.Tensor) -> torch.Tensor:
    """``x`` ``(B, C, *spatial)`` as ``(B, N, C)``: a view for contiguous and channels_last(_3d) tensors."""
    return x.movedim(1, -1).flatten(1, -2)


def unflatten_positions(xs: torch.Tensor, spatial: tuple[int, ...]) -> torch.Tensor:
    """The inverse of ``flatten_positions``: ``(B, N, C)`` -> ``(B, C, *spatial)``, a view."""
    return xs.unflatten(1, spatial).movedim(-1, 1)


def _vecmat(v: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """``(B, K) @ (B, K, M) -> (B, M)``; ``m`` may be transposed. The vector goes on the left: CPU BLAS
    is up to 15x slower for a matrix times a column vector in ``bmm``."""
    return torch.bmm(v.unsqueeze(1), m).squeeze(1)


def _softmax_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.promote_types(dtype, torch.float32)  # float32 for bf16/fp16, float64 stays


def _attention(xs: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """``softmax_j(w . x_j + b)`` of ``xs`` ``(B, N, C)``, in float32 or wider: ``(B, N)``.

    The logits are one number per position, so the float32 softmax (as autocast would do it) costs
    nothing next to the two passes over ``x``; it keeps the attention weights accurate in bf16 training.
    """
    logits = _vecmat(weight.expand(xs.shape[0], -1), xs.mT)  # (B, N), one pass over x
    return (logits + bias).softmax(dim=1, dtype=_softmax_dtype(xs.dtype))  # + float32 bias: float32 already


class _AttentionPool(torch.autograd.Function):
    """``context = sum_j a_j x_j`` with ``a = softmax_j(w . x_j + b)``, on ``xs`` ``(B, N, C)``.

    Autograd of the plain expression writes two feature-map-sized gradients (one per product) in the
    row-major layout of the products and adds them; here the gradient of ``xs``, ``a_j g + s_j w`` with
    ``s`` the softmax backward of ``u_j = x_j . g``, is written once, in ``xs``'s own layout, so adding it
    to the fusion's gradient is a plain elementwise pass. Two passes read ``x`` (``u`` and the gradient of
    ``w``); everything else is ``(B, N)`` or ``(B, C)``.
    """

    @staticmethod
    def forward(ctx, xs: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        attention = _attention(xs, weight, bias)  # (B, N)
        attention_x = attention.to(xs.dtype)
        context = _vecmat(attention_x, xs)  # (B, C), one pass over x
        ctx.save_for_backward(xs, weight, attention, attention_x)
        ctx.bias_shape = bias.shape
        return context

    @staticmethod
    def backward(ctx, grad_context: torch.Tensor):
        xs = ctx.saved_tensors[0]
        with autocast_off(xs):  # the dtypes below are chosen, even if backward is called under autocast
            return _AttentionPool._backward(ctx, grad_context)

    @staticmethod
    def _backward(ctx, grad_context: torch.Tensor):
        xs, weight, attention, attention_x = ctx.saved_tensors
        grad_context = grad_context.to(xs.dtype)
        grad_attention = _vecmat(grad_context, xs.mT).to(attention.dtype)  # (B, N): u_j = x_j . g, one pass
        weighted = attention * grad_attention
        # softmax backward: s = a * (u - sum_j a_j u_j)
        grad_logits = torch.addcmul(weighted, attention, weighted.sum(dim=1, keepdim=True), value=-1)
        grad_logits_x = grad_logits.to(xs.dtype)
        grad_weight = _vecmat(grad_logits_x, xs).sum(0) if ctx.needs_input_grad[1] else None  # one pass
        grad_bias = grad_logits.sum().reshape(ctx.bias_shape) if ctx.needs_input_grad[2] else None  # 0 + rounding
        grad_xs = None
        if ctx.needs_input_grad[0]:  # a_j g + s_j w, written in xs's layout
            if xs.stride(-1) == 1:  # channels innermost (channels_last): (B, N, C) row-major
                grad_xs = attention_x.unsqueeze(2) * grad_context.unsqueeze(1)
            else:  # positions innermost (contiguous): (B, C, N) row-major, seen as (B, N, C)
                grad_xs = (grad_context.unsqueeze(2) * attention_x.unsqueeze(1)).mT
            grad_xs.addcmul_(grad_logits_x.unsqueeze(2), weight)
        return grad_xs, grad_weight, grad_bias


def attention_pool(x: torch.Tensor, conv_mask: nn.Module) -> torch.Tensor:
    """Context ``sum_j softmax_j(W_k x_j) x_j`` of ``x`` ``(B, C, *spatial)`` -> ``(B, C)`` in ``x``'s dtype.

    Args:
        x: Features to pool.
        conv_mask: ``W_k``, a 1x1(x1) convolution C -> 1 with bias (used as a ``(C,)`` vector).
    """
    weight = conv_matrix(conv_mask).reshape(-1).to(x.dtype)  # (C,)
    return _AttentionPool.apply(flatten_positions(x), weight, conv_mask.bias)


def attention_map(x: torch.Tensor, conv_mask: nn.Module) -> torch.Tensor:
    """The attention map ``softmax_j(W_k x_j)`` of ``x`` ``(B, C, *spatial)``: ``(B, N)``, float32 or wider.

    Positions ``j`` are numbered row-major over ``(H, W)`` or ``(T, H, W)``, whatever ``x``'s layout.
    """
    weight = conv_matrix(conv_mask).reshape(-1).to(x.dtype)
    return _attention(flatten_positions(x), weight, conv_mask.bias)


def average_pool(x: torch.Tensor) -> torch.Tensor:
    """Global average of ``x`` ``(B, C, *spatial)`` -> ``(B, C)`` (any memory layout, no copy).

    A sum then a division on ``(B, C)``: ``mean`` of a bf16 tensor copies it to float32 first on CPU.
    """
    return x.sum(dim=tuple(range(2, x.dim()))) / math.prod(x.shape[2:])


def broadcast_shape(x: torch.Tensor) -> tuple[int, ...]:
    """``(B, C, 1, 1[, 1])``: a ``(B, C)`` term viewed to broadcast over all positions of ``x``."""
    return (x.shape[0], x.shape[1]) + (1,) * (x.dim() - 2)
