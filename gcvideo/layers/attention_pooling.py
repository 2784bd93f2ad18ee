"""Helpers shared by the GC and SNL blocks (GCNet, arXiv 1904.11492, Sec. 3-4).

Both blocks pool the whole feature map into one context vector with a single, query-independent
attention map ``softmax_j(W_k x_j)``. Positions are flattened to ``(B, C, N)`` so one implementation
serves 2D ``(B, C, H, W)`` and 3D ``(B, C, T, H, W)`` inputs.
"""

from __future__ import annotations

import torch
from torch import nn

VALID_DIMS = (2, 3)


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


def attention_map(mask_logits: torch.Tensor) -> torch.Tensor:
    """Softmax over all positions of ``mask_logits`` ``(B, 1, *spatial)`` -> ``(B, N)``."""
    return mask_logits.flatten(1).softmax(dim=1)  # (B, N)


def attention_pool(x: torch.Tensor, mask_logits: torch.Tensor) -> torch.Tensor:
    """Context ``sum_j softmax_j(logits) x_j`` of ``x`` ``(B, C, *spatial)`` -> ``(B, C, 1, ...)``.

    Args:
        x: Features to pool.
        mask_logits: One logit per position, ``(B, 1, *spatial)`` (the output of ``W_k``).
    """
    batch, channels = x.shape[:2]
    weights = attention_map(mask_logits).unsqueeze(2)  # (B, N, 1)
    context = torch.bmm(x.flatten(2), weights)  # (B, C, N) @ (B, N, 1) -> (B, C, 1)
    return context.view(batch, channels, *([1] * (x.dim() - 2)))  # (B, C, 1, 1[, 1])


def average_pool(x: torch.Tensor) -> torch.Tensor:
    """Global average of ``x`` ``(B, C, *spatial)`` -> ``(B, C, 1, ...)``."""
    return x.mean(dim=tuple(range(2, x.dim())), keepdim=True)
