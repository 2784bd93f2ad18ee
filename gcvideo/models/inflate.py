"""2D -> 3D inflation: an image ResNet-50 checkpoint (torchvision keys, with or without GC/SNL/NL blocks)
into the Slow-only ResNet (pytorchvideo keys), as in I3D (Carreira & Zisserman, arXiv 1705.07750, sec. 2.2)
and the SlowFast paper's ImageNet initialisation.

Kernels with a temporal extent T > 1 are inflated either "centre" (the 2D kernel in the middle slice,
zeros elsewhere: the 3D net on a static video gives exactly the 2D net's output) or "mean" (the 2D kernel
divided by T in every slice, as I3D). Block weights only gain a unit temporal axis.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch
from torch import nn

INFLATE_MODES = ("centre", "mean")

# torchvision bottleneck child -> pytorchvideo ResBlock child
_BLOCK_RENAMES = {
    "conv1": "branch2.conv_a",
    "bn1": "branch2.norm_a",
    "conv2": "branch2.conv_b",
    "bn2": "branch2.norm_b",
    "conv3": "branch2.conv_c",
    "bn3": "branch2.norm_c",
    "downsample.0": "branch1_conv",
    "downsample.1": "branch1_norm",
}
_LAYER_KEY = re.compile(r"^layer(\d)\.(\d+)\.(.+)$")


def torchvision_to_pytorchvideo_key(key: str) -> str:
    """Name of a torchvision ResNet key in gcvideo's Slow-only ResNet (pytorchvideo layout)."""
    if key.startswith(("conv1.", "bn1.")):
        return key.replace("conv1.", "blocks.0.conv.", 1).replace("bn1.", "blocks.0.norm.", 1)
    if key.startswith("fc."):
        return "blocks.5.proj." + key[len("fc.") :]
    match = _LAYER_KEY.match(key)
    if match is None:
        raise ValueError(f"not a torchvision ResNet key: {key!r}")
    stage, index, rest = match.groups()
    for old, new in _BLOCK_RENAMES.items():
        if rest.startswith(old + "."):
            rest = new + rest[len(old) :]
            break
    return f"blocks.{stage}.res_blocks.{index}.{rest}"


def inflate_weight(weight_2d: torch.Tensor, shape_3d: torch.Size, mode: str = "centre") -> torch.Tensor:
    """Give a 2D tensor the 3D shape ``shape_3d`` (one more axis, at position 2, of size T >= 1)."""
    if mode not in INFLATE_MODES:
        raise ValueError(f"unknown inflation mode {mode!r}; valid modes: {', '.join(INFLATE_MODES)}")
    if weight_2d.dim() + 1 != len(shape_3d) or weight_2d.shape[:2] != shape_3d[:2] or weight_2d.shape[2:] != shape_3d[3:]:
        raise ValueError(f"cannot inflate a tensor of shape {tuple(weight_2d.shape)} to {tuple(shape_3d)}")
    temporal = shape_3d[2]
    if mode == "mean":
        return weight_2d.unsqueeze(2).repeat_interleave(temporal, dim=2) / temporal
    out = weight_2d.new_zeros(shape_3d)
    out[:, :, temporal // 2] = weight_2d
    return out


def inflate_2d_to_3d(
    state_dict_2d: Mapping[str, torch.Tensor],
    model_3d: nn.Module,
    *,
    mode: str = "centre",
    include_head: bool = True,
) -> dict[str, torch.Tensor]:
    """Map a torchvision-layout 2D state dict onto ``model_3d``'s keys and shapes.

    Strict: every key of both sides must match (the 3D classifier may be left out with
    ``include_head=False``), otherwise a ValueError lists the keys that do not fit.

    Returns:
        A state dict for ``model_3d.load_state_dict(..., strict=include_head)``.
    """
    target = model_3d.state_dict()
    head_prefix = getattr(model_3d, "head_prefix", "blocks.5.proj.")
    out: dict[str, torch.Tensor] = {}
    unexpected, mismatched = [], []
    for key, value in state_dict_2d.items():
        if not include_head and key.startswith("fc."):
            continue
        try:
            new_key = torchvision_to_pytorchvideo_key(key)
        except ValueError:
            unexpected.append(key)
            continue
        if new_key not in target:
            unexpected.append(key)
            continue
        shape = target[new_key].shape
        if value.shape == shape:
            out[new_key] = value.clone()
        elif value.dim() + 1 == len(shape):
            try:
                out[new_key] = inflate_weight(value, shape, mode)
            except ValueError:
                mismatched.append(f"{key} {tuple(value.shape)} -> {new_key} {tuple(shape)}")
        else:
            mismatched.append(f"{key} {tuple(value.shape)} -> {new_key} {tuple(shape)}")
    missing = [k for k in target if k not in out and (include_head or not k.startswith(head_prefix))]
    if unexpected or mismatched or missing:
        raise ValueError(
            "2D checkpoint does not fit the 3D model:"
            + (f"\n  unexpected 2D keys: {unexpected}" if unexpected else "")
            + (f"\n  shape mismatches: {mismatched}" if mismatched else "")
            + (f"\n  3D keys without a 2D source: {missing}" if missing else "")
        )
    return out
