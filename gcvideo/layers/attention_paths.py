"""The NL block's embedded-Gaussian attention ``y_i = sum_j softmax_j(q_i . k_j * scale) v_j`` (Wang et al.,
"Non-local Neural Networks", arXiv 1711.07971, Sec. 3.2), computed along one of several paths, and the
policy that picks the path per device, dtype and head dim.

Paths (the same maths; queries ``(B, N, d)``, keys and values ``(B, Nk, d)``, any strides):

- ``"sdpa"``: ``F.scaled_dot_product_attention``; PyTorch picks the kernel (flash, memory-efficient,
  cuDNN or its math fallback).
- ``"sdpa_flash"``, ``"sdpa_efficient"``, ``"sdpa_cudnn"``: that one SDPA kernel, forced (a
  RuntimeError where it does not apply, e.g. flash with a head dim above 256 or in float32).
- ``"math"``: bmm -> softmax -> bmm in the inputs' dtype (autocast off: no float32 copy of the
  ``N x Nk`` matrix), the scale folded into the first product. pytorchvideo's NonLocal computes the same
  products; this path holds one ``N x Nk`` matrix for the backward where pytorchvideo holds two under
  autocast (a float32 softmax and its bf16 copy) and makes no layout copies.
- ``"chunked"``: ``"math"`` over blocks of queries of at most ``CHUNK_ELEMENTS`` matrix entries: less
  peak memory without autograd (inference); with autograd the saved matrices are the same.

``POLICY`` is a table of rules, the first match wins; ``scripts/bench_blocks.py --device cuda`` measures
every path next to pytorchvideo's NonLocal and prints what the policy picks, so the table can be
checked or corrected from one run.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

from .attention_pooling import autocast_off

SDPA_BACKENDS = {
    "sdpa_flash": SDPBackend.FLASH_ATTENTION,
    "sdpa_efficient": SDPBackend.EFFICIENT_ATTENTION,
    "sdpa_cudnn": SDPBackend.CUDNN_ATTENTION,
}
PATHS = ("sdpa", *SDPA_BACKENDS, "math", "chunked")
CHUNK_ELEMENTS = 2**24  # attention-matrix entries per chunk of the "chunked" path (32 MiB in bf16)


@dataclass(frozen=True)
class Rule:
    """Use ``path`` on ``device`` ("cuda", "cpu", ... or "*") for ``dtypes`` (empty: any) up to
    ``max_head_dim`` (None: any). ``why`` records the measurement behind it."""

    device: str
    dtypes: tuple[torch.dtype, ...]
    max_head_dim: int | None
    path: str
    why: str

    def matches(self, device: str, dtype: torch.dtype, head_dim: int) -> bool:
        return (self.device in ("*", device) and (not self.dtypes or dtype in self.dtypes)
                and (self.max_head_dim is None or head_dim <= self.max_head_dim))


_HALF = (torch.bfloat16, torch.float16)
POLICY: tuple[Rule, ...] = (
    Rule("cuda", _HALF, 256, "sdpa",
         "H100, res3, bf16 autocast, batch 8: 0.54x pytorchvideo's NonLocal forward+backward time and 0.50x "
         "its peak memory (cuDNN's kernel as fast, flash 0.59x, memory-efficient 2.54x the time)"),
    Rule("cuda", (), None, "math",
         "H100, batch 8: res4 bf16 (head dim 512 rules out flash) 0.61x pytorchvideo's forward+backward time "
         "where SDPA took 1.38x; res3 fp32 0.81x time, 0.82x memory (SDPA 1.11x time); res4 fp32 0.92x time"),
    Rule("cpu", (), 256, "sdpa",
         "CPU, res3 (float32, 1 thread): the fused kernel for CPU takes 0.29x pytorchvideo's forward+backward "
         "peak memory and 0.88x its time"),
    Rule("cpu", (), None, "math",
         "CPU, res4 (head dim 512): the fused kernel took 1.05-1.07x pytorchvideo's forward+backward time, "
         "math 0.98-1.00x with 0.86x its peak memory"),
    Rule("*", (), None, "sdpa", "other devices: PyTorch's own kernel choice"),
)


def choose_path(device: str, dtype: torch.dtype, head_dim: int) -> str:
    """The path ``POLICY`` picks for queries on ``device`` (a device type) of ``dtype`` and ``head_dim``."""
    for rule in POLICY:
        if rule.matches(device, dtype, head_dim):
            return rule.path
    return "sdpa"


def matmul_like(a: torch.Tensor, b: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``a @ b`` (batched), laid out as ``like``: row-major if ``like``'s last dim has stride 1 (a
    channels_last feature map seen as ``(B, N, C)``), else column-major (a contiguous one)."""
    if like.stride(-1) == 1:
        return torch.bmm(a, b)
    return torch.bmm(b.mT, a.mT).mT


def _math(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float) -> torch.Tensor:
    empty = q.new_empty(())  # ignored with beta=0
    with autocast_off(q):
        affinity = torch.baddbmm(empty, q, k.mT, beta=0.0, alpha=scale)  # (B, N, Nk)
        return matmul_like(affinity.softmax(dim=-1), v, q)  # (B, N, d)


def _chunked(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float) -> torch.Tensor:
    size = max(1, CHUNK_ELEMENTS // max(1, q.shape[0] * k.shape[1]))
    if size >= q.shape[1]:
        return _math(q, k, v, scale)
    parts = [_math(q[:, i : i + size], k, v, scale) for i in range(0, q.shape[1], size)]
    if q.stride(-1) == 1:
        return torch.cat(parts, dim=1)
    return torch.cat([p.mT for p in parts], dim=2).mT  # column-major, as q


def _sdpa(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float) -> torch.Tensor:
    # (B, N, d) -> (B, 1, N, d), contiguous as the fused kernels need (free for channels_last inputs).
    q, k, v = (t.unsqueeze(1).contiguous() for t in (q, k, v))
    return F.scaled_dot_product_attention(q, k, v, scale=scale).squeeze(1)


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float, path: str = "auto") -> torch.Tensor:
    """``softmax(q k^T * scale) v``: ``(B, N, d)`` from queries ``(B, N, d)`` and keys/values ``(B, Nk, d)``.

    Args:
        path: One of ``PATHS``, or "auto" for ``choose_path``.
    """
    if path == "auto":
        path = choose_path(q.device.type, q.dtype, q.shape[-1])
    if path == "math":
        return _math(q, k, v, scale)
    if path == "chunked":
        return _chunked(q, k, v, scale)
    if path in SDPA_BACKENDS:
        with sdpa_kernel([SDPA_BACKENDS[path]]):
            return _sdpa(q, k, v, scale)
    if path == "sdpa":
        return _sdpa(q, k, v, scale)
    raise ValueError(f"unknown attention path {path!r}; valid paths: {('auto', *PATHS)}")
