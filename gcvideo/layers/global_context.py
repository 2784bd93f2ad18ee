"""Global context (GC) block: GCNet (Cao et al., arXiv 1904.11492), Sec. 4.2, Fig. 4(d).

Context modelling (attention pooling ``sum_j softmax_j(W_k x_j) x_j``, or average pooling) ->
bottleneck transform (1x1 conv C -> C*r, LayerNorm, ReLU, 1x1 conv C*r -> C) -> fusion with every
position (broadcast add, and/or a sigmoid channel scale as in SE). One implementation serves 2D and 3D.

Parameter names and conventions follow the official GCNet code and mmcv's ``ContextBlock`` so their
2D weights load with ``strict=True`` and give the same outputs: ``conv_mask`` (C -> 1, with bias),
``channel_add_conv.{0,1,3}`` and ``channel_mul_conv.{0,1,3}`` (conv with bias, LayerNorm with affine,
ReLU, conv with bias). The convolutions only ever see one position per sample, so they run as matrix
products on ``(B, C)``: the context is the only thing computed from the feature map, and the fusion the
only feature-map-sized output (see ``attention_pooling``).
"""

from __future__ import annotations

from typing import Sequence, Union

import torch
import torch.nn.functional as F
from torch import nn

from .attention_pooling import (
    attention_map,
    attention_pool,
    autocast_off,
    average_pool,
    broadcast_shape,
    check_dim,
    check_input,
    conv_matrix,
    conv_nd,
)

VALID_POOLING = ("att", "avg")
VALID_FUSION = ("add", "mul", ("mul", "add"))
VALID_MUL_GATES = ("sigmoid", "2sigmoid")

Fusion = Union[str, Sequence[str]]


def _parse_fusion(fusion: Fusion) -> tuple[str, ...]:
    """Normalise ``fusion`` to ``("add",)``, ``("mul",)`` or ``("mul", "add")`` (the order applied)."""
    items = (fusion,) if isinstance(fusion, str) else tuple(fusion) if isinstance(fusion, (list, tuple)) else ()
    if not items or len(set(items)) != len(items) or not set(items) <= {"add", "mul"}:
        raise ValueError(f"fusion must be one of {VALID_FUSION} (a list works too), got {fusion!r}")
    return tuple(f for f in ("mul", "add") if f in items)


class GlobalContextBlock(nn.Module):
    """GC block ``z = x * sigmoid(T_mul(c)) + T_add(c)``, ``c`` the pooled global context.

    Fusion "mul" then "add" when both are on, as in the official code and mmcv; mmcv ``ContextBlock``
    weights (any pooling and fusion) load strictly and give mmcv's outputs. The last conv of each
    transform starts at zero (weight and bias), so with fusion "add" (the paper's default, used in every
    table row) the block is exactly the identity at initialisation. The paper's "mul" gate
    ``sigmoid(.)`` starts at 0.5, i.e. ``x * 0.5``; ``mul_gate="2sigmoid"`` scales it to
    ``2 * sigmoid(.)``, which starts at exactly 1.0 (identity at init) at the cost of mmcv equivalence.

    Args:
        channels: Input and output channels C.
        dim: 2 for ``(B, C, H, W)`` inputs, 3 for ``(B, C, T, H, W)``.
        ratio: Bottleneck ratio r, hidden width ``round(C * r)`` (1/16 on ImageNet, 1/4 on Kinetics).
            mmcv uses ``int(C * r)``: the same whenever ``C * r`` is an integer.
        pooling: "att" (attention pooling, Eq. 3) or "avg" (global average pooling, as SE).
        fusion: "add", "mul" or ("mul", "add").
        mul_gate: The "mul" fusion's gate: "sigmoid" (the paper, official code and mmcv) or "2sigmoid"
            (``2 * sigmoid``: identity at initialisation).
    """

    def __init__(
        self,
        channels: int,
        *,
        dim: int = 2,
        ratio: float = 1 / 16,
        pooling: str = "att",
        fusion: Fusion = "add",
        mul_gate: str = "sigmoid",
    ) -> None:
        super().__init__()
        self.dim = check_dim(dim)
        if pooling not in VALID_POOLING:
            raise ValueError(f"pooling must be one of {VALID_POOLING}, got {pooling!r}")
        self.fusion = _parse_fusion(fusion)
        if mul_gate not in VALID_MUL_GATES:
            raise ValueError(f"mul_gate must be one of {VALID_MUL_GATES}, got {mul_gate!r}")
        if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not ratio > 0:
            raise ValueError(f"ratio must be a number > 0 (e.g. 1/16 or 1/4), got {ratio!r}")
        planes = round(channels * ratio)
        if planes < 2:  # LayerNorm over one channel outputs its bias alone: the block would ignore x
            raise ValueError(
                f"ratio={ratio} gives round(channels * ratio) = {planes} hidden channels for C={channels}; "
                "the LayerNorm transform needs at least 2"
            )
        self.channels, self.ratio, self.planes = channels, ratio, planes
        self.pooling, self.mul_gate = pooling, mul_gate
        # Attributes absent from the state dict stay None, exactly as in mmcv.
        self.conv_mask = conv_nd(dim, channels, 1) if pooling == "att" else None  # W_k
        self.channel_add_conv = self._transform() if "add" in self.fusion else None
        self.channel_mul_conv = self._transform() if "mul" in self.fusion else None
        self.reset_parameters()

    def _transform(self) -> nn.Sequential:
        # Indices 0, 1, 3 carry weights: the mmcv/official key names. ``forward`` applies them as
        # matrices on (B, C) (``_apply_transform``); calling the Sequential on (B, C, 1, 1[, 1]) is the same.
        return nn.Sequential(
            conv_nd(self.dim, self.channels, self.planes),
            nn.LayerNorm([self.planes] + [1] * self.dim),
            nn.ReLU(inplace=True),
            conv_nd(self.dim, self.planes, self.channels),
        )

    def reset_parameters(self) -> None:
        """mmcv's initialisation: kaiming fan_in for ``conv_mask``, zeros for each transform's last conv."""
        if self.conv_mask is not None:
            nn.init.kaiming_normal_(self.conv_mask.weight, mode="fan_in", nonlinearity="relu")
            nn.init.zeros_(self.conv_mask.bias)
        for transform in (self.channel_add_conv, self.channel_mul_conv):
            if transform is not None:
                nn.init.zeros_(transform[3].weight)
                nn.init.zeros_(transform[3].bias)

    def _apply_transform(self, transform: nn.Sequential, context: torch.Tensor) -> torch.Tensor:
        """conv -> LayerNorm -> ReLU -> conv on ``context`` ``(B, C)``, in the parameters' dtype."""
        conv_in, norm, _, conv_out = transform
        hidden = F.linear(context.to(conv_in.weight.dtype), conv_matrix(conv_in), conv_in.bias)  # (B, C*r)
        hidden = F.layer_norm(hidden, (self.planes,), norm.weight.flatten(), norm.bias.flatten(), norm.eps)
        return F.linear(F.relu(hidden), conv_matrix(conv_out), conv_out.bias)  # (B, C)

    def context(self, x: torch.Tensor) -> torch.Tensor:
        """Context modelling: ``x`` ``(B, C, *spatial)`` -> ``(B, C)`` in ``x``'s dtype."""
        if self.conv_mask is None:
            return average_pool(x)
        return attention_pool(x, self.conv_mask)

    def attention(self, x: torch.Tensor) -> torch.Tensor:
        """The single attention map ``softmax_j(W_k x_j)``, ``(B, N)`` (analysis only)."""
        if self.conv_mask is None:
            raise ValueError("pooling='avg' has no attention map; only pooling='att' does")
        check_input(x, self.channels, self.dim)
        with autocast_off(x):
            return attention_map(x, self.conv_mask)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(x, self.channels, self.dim)
        with autocast_off(x):
            context = self.context(x)  # (B, C)
            shape = broadcast_shape(x)  # (B, C, 1, 1[, 1]): broadcast over all positions
            add = None
            if self.channel_add_conv is not None:
                add = self._apply_transform(self.channel_add_conv, context).to(x.dtype).view(shape)
            if self.channel_mul_conv is None:
                return x + add  # the one feature-map-sized pass of the fusion
            gate = torch.sigmoid(self._apply_transform(self.channel_mul_conv, context))
            if self.mul_gate == "2sigmoid":
                gate = 2.0 * gate  # exactly 1.0 at initialisation
            gate = gate.to(x.dtype).view(shape)
            return x * gate if add is None else torch.addcmul(add, x, gate)  # x * gate + add in one pass

    def extra_repr(self) -> str:
        gate = f", mul_gate={self.mul_gate!r}" if "mul" in self.fusion else ""
        return (f"{self.channels}, dim={self.dim}, ratio={self.ratio}, pooling={self.pooling!r}, "
                f"fusion={self.fusion}{gate}")
