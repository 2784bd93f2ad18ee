"""The convolutions of a Slow-only ResNet (SlowFast, arXiv 1812.03982, table 1: kernels 1x1x1, 1x3x3, 3x1x1
and the 1x7x7 stem) computed along cheaper paths where a kernel dimension is 1, and the policy that picks
a path per kind of convolution, device, dtype and memory layout.

Kinds (``conv_kind``; the model marks its first convolution, on the clip, as ``"stem"``):

- ``"pointwise"``: 1x1x1, stride 1 (conv_a of res2-res3, every conv_c, res2's shortcut);
- ``"downsample"``: 1x1x1 with a stride (the shortcuts of res3-res5, stride (1, 2, 2));
- ``"spatial"``: 1xkxk (every conv_b; the stem);
- ``"temporal"``: kx1x1 with stride 1 (conv_a of res4-res5, 3x1x1).

Paths (the same maths as ``F.conv3d`` on the same weights; any input strides):

- ``"conv3d"``: ``F.conv3d``, the plain network.
- ``"matmul"``: a 1x1x1 convolution as one matrix product. On a channels-last input the
  ``(N*T*H*W, C)`` view is free and the product is ``F.linear`` with the ``(Cout, Cin)`` view of the
  weight; on a contiguous one, ``weight @ (C, T*H*W)`` per clip. A stride subsamples first. A kx1x1
  convolution is one product with all k taps stacked, ``(k*Cout, Cin)``, whose k outputs are added
  shifted along time (zero-padded at the ends): no k-fold copy of the input as ``F.conv3d`` makes. With a
  channels_last_3d input and weight (no autocast) it is one product per tap over only the frames the tap
  reaches (``gcvideo.layers.temporal_taps``): 10 of 12 frame-tap products for a 3x1x1 kernel on 4 frames.
- ``"conv2d"``: a kx1x1 convolution as a 2D one with kernel (k, 1) over the ``(N, C, T, H*W)`` view (free
  in both layouts). A spatial stride (1x1x1 only) subsamples first.
- ``"fold"``: a 1xkxk convolution as a 2D one over the ``N*T`` frames: ``(N*T, C, H, W)`` is a view of a
  channels_last_3d input (channels_last in 2D) and a copy of a contiguous one, whose output is copied back.

``POLICY`` is a table of rules, the first match wins; a kind no rule names runs ``"conv3d"``.
``scripts/bench_convs.py`` measures every path of every convolution of Slow-R50 and prints the policy's
pick, so the table can be checked or corrected from one run.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from gcvideo.layers import temporal_taps

KIND_PATHS: dict[str, tuple[str, ...]] = {
    "stem": ("conv3d", "fold"),
    "pointwise": ("conv3d", "matmul", "conv2d"),
    "downsample": ("conv3d", "matmul", "conv2d"),
    "spatial": ("conv3d", "fold"),
    "temporal": ("conv3d", "conv2d", "matmul"),
}
KINDS = tuple(KIND_PATHS)
LAYOUTS = ("contiguous", "channels_last")


def conv_kind(conv: nn.Conv3d) -> str | None:
    """The kind of ``conv`` ("pointwise", "downsample", "spatial", "temporal"), or None if only
    ``F.conv3d`` applies (groups, dilation, string or non-zero padding along a unit kernel dimension)."""
    if (conv.groups != 1 or tuple(conv.dilation) != (1, 1, 1) or conv.padding_mode != "zeros"
            or isinstance(conv.padding, str)):
        return None
    (kt, kh, kw), (st, sh, sw), (pt, ph, pw) = conv.kernel_size, conv.stride, conv.padding
    if (kt, kh, kw) == (1, 1, 1) and (pt, ph, pw) == (0, 0, 0):
        return "pointwise" if (st, sh, sw) == (1, 1, 1) else "downsample"
    if kt == 1 and pt == 0 and st == 1:
        return "spatial"
    if (kh, kw, ph, pw, st, sh, sw) == (1, 1, 0, 0, 1, 1, 1):
        return "temporal"
    return None


def layout_of(x: torch.Tensor) -> str:
    """"channels_last" for a channels_last_3d tensor (channels innermost), else "contiguous"."""
    return "channels_last" if x.dim() == 5 and x.stride(1) == 1 and x.shape[1] > 1 else "contiguous"


def compute_dtype(x: torch.Tensor) -> torch.dtype:
    """The dtype a convolution of ``x`` runs in: the autocast dtype for a float32 ``x`` under autocast."""
    device = x.device.type
    if x.dtype == torch.float32 and device in ("cpu", "cuda") and torch.is_autocast_enabled(device):
        return torch.get_autocast_dtype(device)
    return x.dtype


def _subsample(x: torch.Tensor, stride: tuple[int, ...]) -> torch.Tensor:
    if tuple(stride) == (1,) * len(stride):
        return x
    return x[(slice(None), slice(None), *(slice(None, None, s) for s in stride))]


def matmul_conv(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                stride: tuple[int, int, int]) -> torch.Tensor:
    """A 1x1x1 convolution of ``x`` (N, C, T, H, W) as one matrix product, in ``x``'s layout."""
    x = _subsample(x, stride)
    matrix = weight.flatten(1)  # (Cout, Cin), a view in either weight layout
    if x.stride(1) == 1:  # channels innermost: rows of (N*T*H*W, C)
        return F.linear(x.permute(0, 2, 3, 4, 1), matrix, bias).permute(0, 4, 1, 2, 3)
    n, c, t, h, w = x.shape
    out = torch.matmul(matrix, x.reshape(n, c, t * h * w))  # (N, Cout, T*H*W)
    if bias is not None:
        out = out + bias.to(out.dtype).unsqueeze(-1)
    return out.view(n, -1, t, h, w)


def _shifted_sum(taps: torch.Tensor, time_dim: int, padding: int) -> torch.Tensor:
    """``out[t] = sum_j taps[j][t + j - padding]`` (zero outside the clip): the k per-tap products of a kx1x1
    convolution, ``taps`` (k, ...) with time at ``time_dim`` of each, added into its output."""
    k, length = taps.shape[0], taps.shape[time_dim + 1]
    out_length = length + 2 * padding - k + 1
    out = None
    for j in range(k):
        shift = j - padding
        lo, hi = max(0, -shift), min(out_length, length - shift)  # output frames this tap reaches
        if hi <= lo:
            continue
        part = taps[j].narrow(time_dim, lo + shift, hi - lo)
        part = F.pad(part, (0, 0) * (part.dim() - 1 - time_dim) + (lo, out_length - hi))
        out = part if out is None else out + part
    return out


def matmul_temporal(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                    padding: tuple[int, int, int]) -> torch.Tensor:
    """A kx1x1 convolution with stride 1 of ``x`` (N, C, T, H, W) as one matrix product of the k taps
    stacked, in ``x``'s layout."""
    if temporal_taps.applies(x, weight):  # channels_last_3d input and weight: the frames each tap reaches only
        return temporal_taps.temporal_taps(x, weight, bias, padding[0])
    k, cout = weight.shape[2], weight.shape[0]
    # The k taps stacked as rows of one matrix without copying the weight where its layout allows: a
    # channels_last_3d weight is (Cout, k, Cin) in memory, so (Cout*k, Cin) rows, tap innermost, are a view
    # (and its gradient arrives in the parameter's own layout); a contiguous one is copied tap-major.
    tap_inner = weight.stride(1) == 1 and weight.shape[1] > 1
    if tap_inner:
        stacked = weight.permute(0, 2, 3, 4, 1).reshape(cout * k, -1)
    else:
        stacked = weight.flatten(2).permute(2, 0, 1).reshape(k * cout, -1)
    split = (cout, k) if tap_inner else (k, cout)
    n, c, t, h, w = x.shape
    if x.stride(1) == 1:  # channels innermost
        taps = F.linear(x.permute(0, 2, 3, 4, 1), stacked).unflatten(-1, split)
        taps = taps.movedim(-1 if tap_inner else -2, 0)
        out = _shifted_sum(taps, 1, padding[0])  # (N, T, H, W, Cout)
        out = out if bias is None else out + bias.to(out.dtype)
        return out.permute(0, 4, 1, 2, 3)
    taps = torch.matmul(stacked, x.reshape(n, c, t * h * w)).view(n, *split, t, h, w)
    taps = taps.movedim(2 if tap_inner else 1, 0)
    out = _shifted_sum(taps, 2, padding[0])  # (N, Cout, T, H, W)
    return out if bias is None else out + bias.to(out.dtype).view(-1, 1, 1, 1)


def conv2d_over_positions(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                          stride: tuple[int, int, int], padding: tuple[int, int, int]) -> torch.Tensor:
    """A kx1x1 convolution of ``x`` (N, C, T, H, W) as a 2D one with kernel (k, 1) over (N, C, T, H*W)."""
    x = _subsample(x, (1, *stride[1:]))
    h, w = x.shape[3:]
    out = F.conv2d(x.flatten(3), weight.flatten(3), bias, (stride[0], 1), (padding[0], 0))
    return out.unflatten(3, (h, w))


def fold_conv(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, stride: tuple[int, int, int],
              padding: tuple[int, int, int]) -> torch.Tensor:
    """A 1xkxk convolution of ``x`` (N, C, T, H, W) as a 2D one over its N*T frames, in ``x``'s layout."""
    n, c, t, h, w = x.shape
    frames = x.transpose(1, 2).reshape(n * t, c, h, w)  # a view of a channels_last_3d x
    out = F.conv2d(frames, weight.squeeze(2), bias, stride[1:], padding[1:])  # (N*T, Cout, H', W')
    out = out.view(n, t, *out.shape[1:]).transpose(1, 2)  # channels_last_3d if out is channels_last
    return out if x.stride(1) == 1 else out.contiguous()


@dataclass(frozen=True)
class Rule:
    """Run ``kind`` along ``path`` on ``device`` ("cuda", "cpu" or "*") for ``dtypes`` (empty: any) and
    ``layout`` ("contiguous", "channels_last" or "*"). ``why`` records the measurement behind it."""

    device: str
    dtypes: tuple[torch.dtype, ...]
    layout: str
    kind: str
    path: str
    why: str

    def matches(self, kind: str, device: str, dtype: torch.dtype, layout: str) -> bool:
        return (self.kind == kind and self.device in ("*", device) and (not self.dtypes or dtype in self.dtypes)
                and self.layout in ("*", layout))


_F32, _BF16 = (torch.float32,), (torch.bfloat16,)
# bench_convs.py on a 2-core CPU, one thread: slow_r50 width 64, 4x96x96, batch 2, forward+backward of every
# convolution of a kind against F.conv3d, three runs (docs/benchmarks.md).
_CPU = "2-core CPU, 1 thread, three runs:"
POLICY: tuple[Rule, ...] = (
    Rule("cpu", _F32, "contiguous", "downsample", "conv2d", f"{_CPU} 0.72-0.77x F.conv3d's time (matmul 0.74-0.79x)"),
    Rule("cpu", _F32, "contiguous", "temporal", "conv2d", f"{_CPU} 0.72-0.77x (matmul 0.99-1.06x)"),
    Rule("cpu", _F32, "channels_last", "pointwise", "matmul", f"{_CPU} 0.80-0.83x (conv2d 0.87-0.91x)"),
    Rule("cpu", _F32, "channels_last", "downsample", "matmul", f"{_CPU} 0.71-0.80x (conv2d 0.75-0.85x)"),
    Rule("cpu", _F32, "channels_last", "temporal", "matmul",
         f"{_CPU} 0.59x over the frames each tap reaches, two runs (stacked 0.68-0.70x; conv2d 0.74-0.77x)"),
    Rule("cpu", _BF16, "contiguous", "downsample", "conv2d", f"{_CPU} bf16 autocast, 0.69-0.71x (matmul 0.66-0.72x)"),
    Rule("cpu", _BF16, "contiguous", "temporal", "conv2d", f"{_CPU} bf16 autocast, 0.81-0.87x (matmul 1.04-1.08x)"),
    Rule("cpu", _BF16, "contiguous", "spatial", "fold", f"{_CPU} bf16 autocast, 0.95-0.97x"),
    Rule("cpu", _BF16, "channels_last", "pointwise", "matmul", f"{_CPU} bf16 autocast, 0.90-0.93x (conv2d 1.02-1.04x)"),
    Rule("cpu", _BF16, "channels_last", "downsample", "matmul", f"{_CPU} bf16 autocast, 0.71-0.74x (conv2d 0.96-1.02)"),
    Rule("cpu", _BF16, "channels_last", "spatial", "fold", f"{_CPU} bf16 autocast, 0.94-0.95x"),
    Rule("cpu", _BF16, "channels_last", "temporal", "conv2d", f"{_CPU} bf16 autocast, 0.88-0.96x (matmul 0.92-0.96x)"),
)
# Left out (F.conv3d), within 3 % of it or slower: float32 contiguous pointwise (conv2d 0.97-1.01x, matmul
# 1.34-1.36x), float32 1xkxk (fold 0.98-1.08x), the stem (fold 0.97-1.17x). With two threads PyTorch takes
# oneDNN for every convolution: the float32 contiguous rules still win (0.94-0.95x CPU time), the channels_last
# ones are even (0.80-1.03x). CUDA: not measured yet (scripts/gpu_levers.py measures it).


def choose_path(kind: str, device: str, dtype: torch.dtype, layout: str) -> str:
    """The path ``POLICY`` picks for a convolution of ``kind`` on ``device`` (a device type), in
    ``dtype`` and ``layout``; "conv3d" where no rule matches."""
    for rule in POLICY:
        if rule.matches(kind, device, dtype, layout):
            return rule.path
    return "conv3d"


class PathConv3d(nn.Conv3d):
    """``nn.Conv3d`` (the same parameters, names and shapes) computed along ``path``: one of its kind's
    paths (``KIND_PATHS``), or "auto" for the one ``choose_path`` picks for each input."""

    def __init__(self, *args, kind: str, path: str = "auto", **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if kind not in KIND_PATHS:
            raise ValueError(f"unknown convolution kind {kind!r}; valid kinds: {KINDS}")
        if path != "auto" and path not in KIND_PATHS[kind]:
            raise ValueError(f"path {path!r} does not apply to a {kind} convolution; valid paths: "
                             f"{('auto', *KIND_PATHS[kind])}")
        self.kind, self.path = kind, path

    @classmethod
    def from_conv(cls, conv: nn.Conv3d, kind: str, path: str = "auto") -> PathConv3d:
        """A ``PathConv3d`` holding ``conv``'s own parameters (shared, not copied)."""
        new = cls(conv.in_channels, conv.out_channels, conv.kernel_size, stride=tuple(int(s) for s in conv.stride),
                  padding=conv.padding, bias=conv.bias is not None, kind=kind, path=path, device="meta")
        new.weight, new.bias = conv.weight, conv.bias
        return new.train(conv.training)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, kind={self.kind}, path={self.path}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        path = self.path
        if path == "auto":
            path = choose_path(self.kind, x.device.type, compute_dtype(x), layout_of(x))
        if path == "matmul" and self.kind == "temporal":
            return matmul_temporal(x, self.weight, self.bias, self.padding)
        if path == "matmul":
            return matmul_conv(x, self.weight, self.bias, self.stride)
        if path == "conv2d":
            return conv2d_over_positions(x, self.weight, self.bias, self.stride, self.padding)
        if path == "fold":
            return fold_conv(x, self.weight, self.bias, self.stride, self.padding)
        return super().forward(x)
