"""Put attention blocks into the residual blocks of a ResNet, following a :class:`BlockSpec`.

Each residual block of gcvideo's backbones has two slots, ``attn_in_branch`` (after the last conv+BN,
before the add: GCNet sec. 5, ``after_conv3``) and ``attn_after_add`` (after the add and ReLU: the
non-local paper's placement, ``after_block``). Both are ``nn.Identity()`` when empty, so an empty slot
adds no parameters and no state-dict keys, and ``forward`` reads as a straight line.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from torch import nn

from gcvideo.layers import create_block
from gcvideo.models.placement import BlockSpec

SLOT_BY_POSITION = {"after_conv3": "attn_in_branch", "after_block": "attn_after_add"}


def insert_attention_blocks(
    stages: Mapping[str, Sequence[nn.Module]],
    channels: Mapping[str, int],
    specs: Sequence[BlockSpec],
    *,
    dim: int,
) -> None:
    """Fill the slots named by ``specs``.

    Args:
        stages: stage name ("res2".."res5") -> its residual blocks (each with both slots).
        channels: stage name -> output channels of its residual blocks.
        specs: block placements; two blocks in the same slot are an error.
        dim: 2 for images, 3 for video.
    """
    for spec in specs:
        for stage in spec.stages:
            blocks = stages[stage]
            slot = SLOT_BY_POSITION[spec.position]
            for index in spec.indices_for(stage, len(blocks)):
                if not isinstance(getattr(blocks[index], slot), nn.Identity):
                    raise ValueError(f"{stage} block {index}: two attention blocks at position {spec.position}")
                block = create_block(spec.kind, channels[stage], dim=dim, options=dict(spec.options))
                setattr(blocks[index], slot, block)
