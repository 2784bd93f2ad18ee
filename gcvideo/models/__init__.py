"""Backbones of GCNet's tables: Slow-only ResNet-50 (video) and ResNet-50 (images) with GC/SNL/NL blocks.

``create(name, ...)`` builds a preset, ``load(path)`` an exported backbone, ``count_parameters`` and
``count_macs`` give the table's figures, ``inflate_2d_to_3d`` turns an image checkpoint into a video one,
``to_channels_last`` converts a backbone's convolutions to the channels-last memory format,
``apply_conv_levers`` sets the paths its convolutions compute along (``create(..., conv_levers=...)``).
"""

from gcvideo.models.complexity import count_macs, count_parameters
from gcvideo.models.conv_levers import apply_conv_levers
from gcvideo.models.inflate import inflate_2d_to_3d
from gcvideo.models.io import export_backbone, load
from gcvideo.models.memory_format import channels_last_input, to_channels_last
from gcvideo.models.placement import BlockSpec
from gcvideo.models.presets import PRESETS, create

__all__ = [
    "PRESETS",
    "BlockSpec",
    "apply_conv_levers",
    "channels_last_input",
    "count_macs",
    "count_parameters",
    "create",
    "export_backbone",
    "inflate_2d_to_3d",
    "load",
    "to_channels_last",
]
