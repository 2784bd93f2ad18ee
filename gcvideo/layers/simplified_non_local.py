"""Simplified non-local (SNL) block: GCNet (Cao et al., arXiv 1904.11492), Sec. 4.1, Fig. 3(b).

``z_i = x_i + W_v sum_j softmax_j(W_k x_j) x_j``: one query-independent attention map shared by every
position. ``W_v`` is applied after the pooling (it is linear, so this equals pooling ``W_v x``) and costs
one C x C matrix-vector product per sample. One implementation serves 2D and 3D, in either memory
layout without copies (see ``attention_pooling``); the one feature-map-sized output is the broadcast add.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .attention_pooling import (
    attention_map,
    attention_pool,
    autocast_off,
    broadcast_shape,
    check_dim,
    check_input,
    conv_matrix,
    conv_nd,
)


class SimplifiedNonLocalBlock(nn.Module):
    """SNL block; identity at initialisation (``W_v`` is zero).

    Parameters: ``conv_mask`` is W_k (1x1 conv C -> 1 with bias; the same name and role as in the GC
    block), ``conv_value`` is W_v (1x1 conv C -> C with bias). Both biases are needed for the paper's
    parameter counts (ResNet-50 + SNL in c3-c5 = 45.509M), so they are kept. W_k's bias adds the same
    constant to every logit and cancels in the softmax.

    Args:
        channels: Input and output channels C.
        dim: 2 for ``(B, C, H, W)`` inputs, 3 for ``(B, C, T, H, W)``.
    """

    def __init__(self, channels: int, *, dim: int = 2) -> None:
        super().__init__()
        self.dim = check_dim(dim)
        self.channels = channels
        self.conv_mask = conv_nd(dim, channels, 1)  # W_k
        self.conv_value = conv_nd(dim, channels, channels)  # W_v
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """W_k as GC's ``conv_mask`` (kaiming fan_in, zero bias); W_v zero so the block starts as the identity."""
        nn.init.kaiming_normal_(self.conv_mask.weight, mode="fan_in", nonlinearity="relu")
        nn.init.zeros_(self.conv_mask.bias)
        nn.init.zeros_(self.conv_value.weight)
        nn.init.zeros_(self.conv_value.bias)

    def attention(self, x: torch.Tensor) -> torch.Tensor:
        """The single attention map ``softmax_j(W_k x_j)``, ``(B, N)`` (analysis only)."""
        check_input(x, self.channels, self.dim)
        with autocast_off(x):
            return attention_map(x, self.conv_mask)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(x, self.channels, self.dim)
        with autocast_off(x):
            context = attention_pool(x, self.conv_mask)  # (B, C)
            weight = conv_matrix(self.conv_value)  # W_v as a (C, C) matrix
            value = F.linear(context.to(weight.dtype), weight, self.conv_value.bias)  # (B, C)
            return x + value.to(x.dtype).view(broadcast_shape(x))  # broadcast over all positions

    def extra_repr(self) -> str:
        return f"{self.channels}, dim={self.dim}"
