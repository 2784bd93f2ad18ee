"""Slow-only ResNet-50 8x8 (SlowFast, arXiv 1812.03982, table 1 "Slow pathway") with GC/SNL/NL blocks.

Built with pytorchvideo's ``create_resnet`` exactly as its ``slow_r50``, so without blocks the state-dict
keys are pytorchvideo's and its Kinetics-400 checkpoint loads strictly. Two changes that add no keys:
residual blocks gain the two attention slots of :mod:`gcvideo.models.attention_slots`, and the head
pools adaptively (global average), so any T x H x W works (at 8x224x224 this equals pytorchvideo's
``AvgPool3d((8, 7, 7))``).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import torch

# pytorchvideo 0.1.5 scripts a helper at import time, which current torch flags as deprecated.
warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.*deprecated", category=FutureWarning)
from pytorchvideo.models.net import Net  # noqa: E402
from pytorchvideo.models.resnet import ResBlock, create_resnet  # noqa: E402
from torch import nn  # noqa: E402

from gcvideo.models.attention_slots import insert_attention_blocks  # noqa: E402
from gcvideo.models.placement import STAGES, BlockSpec  # noqa: E402

STAGE_DEPTHS_R50 = (3, 4, 6, 3)


class SlowResBlock(nn.Module):
    """pytorchvideo's ``ResBlock`` (same child names) with attention slots around the add."""

    def __init__(self, block: ResBlock) -> None:
        super().__init__()
        self.branch1_conv = block.branch1_conv
        self.branch1_norm = block.branch1_norm
        self.branch2 = block.branch2
        self.activation = block.activation
        self.attn_in_branch: nn.Module = nn.Identity()
        self.attn_after_add: nn.Module = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.branch1_conv is None else self.branch1_norm(self.branch1_conv(x))
        x = self.activation(shortcut + self.attn_in_branch(self.branch2(x)))
        return self.attn_after_add(x)


class SlowResNet(Net):
    """pytorchvideo ``Net`` (blocks 0 = stem, 1-4 = res2-res5, 5 = head) with ``forward_features``."""

    is_video = True
    head_prefix = "blocks.5.proj."

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled backbone feature (B, D): the head's input after global pooling, before dropout."""
        for block in self.blocks[:-1]:
            x = block(x)
        return self.blocks[-1].pool(x).flatten(1)

    @property
    def stages(self) -> dict[str, nn.ModuleList]:
        """Stage name -> its residual blocks."""
        return {name: self.blocks[i + 1].res_blocks for i, name in enumerate(STAGES)}


def _plain_int_strides(model: nn.Module) -> None:
    """pytorchvideo computes conv strides as numpy integers; torch.compile traces those as tensors, which
    makes every shape after them symbolic (dynamic-shape kernels, and a tracing error with custom autograd
    functions). Python ints behave the same in eager mode."""
    for module in model.modules():
        if isinstance(module, nn.Conv3d):
            module.stride = tuple(int(s) for s in module.stride)


def create_slow_resnet(
    *,
    num_classes: int = 400,
    width: int = 64,
    dropout: float = 0.5,
    depths: Sequence[int] = STAGE_DEPTHS_R50,
    blocks: Sequence[BlockSpec] = (),
) -> SlowResNet:
    """Slow-only ResNet 8x8 as pytorchvideo's ``slow_r50`` (depths (3, 4, 6, 3)), plus attention blocks.

    Args:
        num_classes: classifier outputs.
        width: stem channels (64 in the paper); every stage scales with it (res5 outputs 32 * width).
        dropout: dropout before the classifier (0.5 in the SlowFast recipe).
        depths: residual blocks per stage (res2-res5).
        blocks: attention block placements.
    """
    if width < 1 or num_classes < 1:
        raise ValueError(f"width and num_classes must be positive, got width={width}, num_classes={num_classes}")
    if len(depths) != 4:
        raise ValueError(f"depths needs one entry per stage res2..res5, got {tuple(depths)}")
    # pytorchvideo only knows depths 50/101/152 by name; 50 is set here and the per-stage tuple below
    # is patched in through its lookup table, so other depths need no fork of create_resnet.
    from pytorchvideo.models import resnet as pv_resnet

    saved = pv_resnet._MODEL_STAGE_DEPTH.get(50)
    pv_resnet._MODEL_STAGE_DEPTH[50] = tuple(depths)
    try:
        net = create_resnet(
            model_depth=50,
            model_num_class=num_classes,
            dropout_rate=dropout,
            stem_dim_out=width,
            stem_conv_kernel_size=(1, 7, 7),
            head_pool=nn.AdaptiveAvgPool3d,
            head_output_size=(1, 1, 1),
        )
    finally:
        pv_resnet._MODEL_STAGE_DEPTH[50] = saved
    model = SlowResNet(blocks=net.blocks)  # re-runs pytorchvideo's init on the same modules
    _plain_int_strides(model)
    for stage in model.stages.values():
        for i, block in enumerate(stage):
            stage[i] = SlowResBlock(block)
    channels = {name: width * 4 * 2**i for i, name in enumerate(STAGES)}
    insert_attention_blocks(model.stages, channels, blocks, dim=3)
    return model
