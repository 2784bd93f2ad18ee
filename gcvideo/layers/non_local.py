"""Non-local (NL) block: Wang et al., "Non-local Neural Networks" (arXiv 1711.07971), Sec. 3.2-3.3,
as used for the NL rows of GCNet (Cao et al., arXiv 1904.11492), Sec. 3, Fig. 3(a).

``z_i = x_i + BN(W_z y_i)``, ``y_i = sum_j f(theta_i, phi_j) g_j`` with theta, phi, g 1x1 convs
C -> C/2, phi and g computed on a max-pooled input (2x2; 1x2x2 in 3D). ``f`` is the embedded Gaussian
``softmax_j(theta_i . phi_j / sqrt(C/2))`` or the dot product ``theta_i . phi_j / N_k``.

Layout and maths match ``pytorchvideo.layers.nonlocal_net.NonLocal`` (built by ``create_nonlocal``):
key names ``conv_theta``, ``conv_phi``, ``conv_g``, ``conv_out`` (1x1 convs with bias), ``norm``
(BatchNorm, affine) and a parameter-free ``pool``, so its weights load with ``strict=True``. Speed:
positions are flattened to ``(B, N, d)`` views (free in either memory layout); the softmax runs along the
path that ``attention_paths.POLICY`` picks for the device, dtype and head dim (fused SDPA kernels or
bmm-softmax-bmm), and the dot product is computed as ``theta (phi^T g / N_k)``, linear in the number of
positions.
"""

from __future__ import annotations

from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .attention_paths import PATHS, attend, matmul_like
from .attention_pooling import check_dim, check_input, conv_nd, flatten_positions, unflatten_positions

VALID_INSTANTIATIONS = ("softmax", "dot_product")


class NonLocalBlock(nn.Module):
    """NL block; identity at initialisation (BatchNorm gamma and beta are zero).

    Args:
        channels: Input and output channels C.
        dim: 2 for ``(B, C, H, W)`` inputs, 3 for ``(B, C, T, H, W)``.
        inner_channels: Width d of theta, phi, g; default ``channels // 2``.
        pool: Max-pool the keys and values with kernel = stride = 2x2 (2D) or 1x2x2 (3D).
        instantiation: "softmax" (embedded Gaussian, scaled by ``d ** -0.5``) or "dot_product"
            (divided by the number of key positions).
        softmax_path: How the softmax attention is computed: "auto" (``attention_paths.POLICY``) or
            one of ``attention_paths.PATHS`` (same outputs; speed and memory differ).
    """

    def __init__(
        self,
        channels: int,
        *,
        dim: int = 2,
        inner_channels: Optional[int] = None,
        pool: bool = True,
        instantiation: str = "softmax",
        softmax_path: str = "auto",
    ) -> None:
        super().__init__()
        self.dim = check_dim(dim)
        if instantiation not in VALID_INSTANTIATIONS:
            raise ValueError(f"instantiation must be one of {VALID_INSTANTIATIONS}, got {instantiation!r}")
        inner = channels // 2 if inner_channels is None else inner_channels
        if isinstance(inner, bool) or not isinstance(inner, int) or inner < 1:
            raise ValueError(f"inner_channels must be a positive int or None (-> channels // 2), got {inner_channels!r}")
        if not isinstance(pool, bool):
            raise ValueError(f"pool must be True or False, got {pool!r}")
        if softmax_path not in ("auto", *PATHS):
            raise ValueError(f"softmax_path must be one of {('auto', *PATHS)}, got {softmax_path!r}")
        self.softmax_path = softmax_path
        self.channels, self.inner_channels, self.instantiation = channels, inner, instantiation
        self.pool_size = ((2, 2) if dim == 2 else (1, 2, 2)) if pool else None
        pool_cls = nn.MaxPool2d if dim == 2 else nn.MaxPool3d
        self.pool = pool_cls(self.pool_size, stride=self.pool_size) if pool else None
        self.conv_theta = conv_nd(dim, channels, inner)
        self.conv_phi = conv_nd(dim, channels, inner)
        self.conv_g = conv_nd(dim, channels, inner)
        self.conv_out = conv_nd(dim, inner, channels)  # W_z
        self.norm = (nn.BatchNorm2d if dim == 2 else nn.BatchNorm3d)(channels)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Convs N(0, 0.01) with zero bias (the NL release); BatchNorm gamma = 0 so the block is the identity."""
        for conv in (self.conv_theta, self.conv_phi, self.conv_g, self.conv_out):
            nn.init.normal_(conv.weight, std=0.01)
            nn.init.zeros_(conv.bias)
        self.norm.reset_parameters()
        nn.init.zeros_(self.norm.weight)

    def key_shape(self, spatial: Sequence[int]) -> tuple[int, ...]:
        """The key/value grid for an input grid ``spatial`` (``(H, W)`` or ``(T, H, W)``)."""
        spatial = tuple(int(s) for s in spatial)
        if len(spatial) != self.dim:
            raise ValueError(f"spatial must have {self.dim} sizes for dim={self.dim}, got {spatial}")
        if self.pool_size is None:
            return spatial
        return tuple(s // k for s, k in zip(spatial, self.pool_size))  # MaxPool floors

    def _embed(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """theta ``(B, N, d)``, phi ``(B, Nk, d)``, g ``(B, Nk, d)``: views in the convolutions' layout."""
        keys_in = x if self.pool is None else self.pool(x)
        theta = flatten_positions(self.conv_theta(x))
        phi = flatten_positions(self.conv_phi(keys_in))
        g = flatten_positions(self.conv_g(keys_in))
        return theta, phi, g

    def attention(self, x: torch.Tensor) -> torch.Tensor:
        """All query maps ``f(theta_i, phi_j)``, ``(B, N, Nk)`` (analysis only: materialises them)."""
        check_input(x, self.channels, self.dim)
        theta, phi, _ = self._embed(x)
        affinity = torch.bmm(theta, phi.mT)  # (B, N, Nk)
        if self.instantiation == "softmax":
            return (affinity * self.inner_channels**-0.5).softmax(dim=2)
        return affinity / phi.shape[1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(x, self.channels, self.dim)
        theta, phi, g = self._embed(x)
        if self.instantiation == "softmax":
            y = attend(theta, phi, g, self.inner_channels**-0.5, self.softmax_path)  # (B, N, d)
        else:
            context = torch.bmm(phi.mT, g) / phi.shape[1]  # (B, d, d) = sum_j phi_j g_j^T / Nk
            y = matmul_like(theta, context, theta)  # (B, N, d), in theta's layout
        # (B, d, *spatial), contiguous as in pytorchvideo: W_z on a channels_last y made cuDNN's bf16 backward
        # take 1.52x pytorchvideo's peak memory at res4 on an H100 (contiguous: 0.95x, and 7% faster).
        y = unflatten_positions(y, tuple(x.shape[2:])).contiguous()
        return x + self.norm(self.conv_out(y))

    def extra_repr(self) -> str:
        return (
            f"{self.channels}, dim={self.dim}, inner_channels={self.inner_channels}, "
            f"pool={self.pool_size is not None}, instantiation={self.instantiation!r}"
            + (f", softmax_path={self.softmax_path!r}" if self.softmax_path != "auto" else "")
        )
