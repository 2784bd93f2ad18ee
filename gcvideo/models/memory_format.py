"""Channels-last memory format for gcvideo's backbones (faster convolutions on GPUs with tensor cores).

``Module.to(memory_format=torch.channels_last_3d)`` converts every 4-D and 5-D parameter and fails on the
GC block's LayerNorm weight ``(planes, 1, 1, 1)`` (rank 4, which channels_last_3d does not apply to);
only the convolution weights need the format. ``to_channels_last`` converts exactly those, Conv2d weights
to channels_last and Conv3d weights to channels_last_3d, so it serves image and video models alike;
``channels_last_input`` converts a batch to match.
"""

from __future__ import annotations

import torch
from torch import nn

FORMAT_BY_CONV = {nn.Conv2d: torch.channels_last, nn.Conv3d: torch.channels_last_3d}


def to_channels_last(model: nn.Module) -> nn.Module:
    """Convert every Conv2d/Conv3d weight of ``model`` to channels_last(_3d), in place; returns ``model``.

    Other parameters keep their layout. The attention blocks' 1x1 convolution weights may take either
    layout: they are read as matrices through views that work in both.
    """
    for module in model.modules():
        for conv, fmt in FORMAT_BY_CONV.items():
            if isinstance(module, conv):  # subclasses too (gcvideo.layers.conv_paths.PathConv3d)
                module.to(memory_format=fmt)
    return model


def channels_last_input(x: torch.Tensor) -> torch.Tensor:
    """``x`` in channels_last_3d (5-D video batches) or channels_last (4-D image batches)."""
    if x.dim() not in (4, 5):
        raise ValueError(f"expected a 4-D image or 5-D video batch, got shape {tuple(x.shape)}")
    return x.contiguous(memory_format=torch.channels_last_3d if x.dim() == 5 else torch.channels_last)
