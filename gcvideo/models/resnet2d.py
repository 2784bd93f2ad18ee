"""Image ResNet-50 in torchvision's layout (He et al., arXiv 1512.03385) with GC/SNL/NL blocks.

The module and parameter names are torchvision's (``conv1``, ``layer1.0.conv1``, ``downsample.0``,
``fc``...), so torchvision ImageNet checkpoints load strictly; GCNet's blocks (arXiv 1904.11492,
sec. 5) go into the two attention slots of each bottleneck and add only their own keys.
A ``width`` knob scales every channel count, so tests and the synthetic configs can build small
versions of the same topology.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from gcvideo.models.attention_slots import insert_attention_blocks
from gcvideo.models.placement import STAGES, BlockSpec


class Bottleneck(nn.Module):
    """torchvision's ResNet v1.5 bottleneck (stride on the 3x3 conv) with attention slots."""

    expansion = 4

    def __init__(self, in_channels: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        out_channels = planes * self.expansion
        self.conv1 = nn.Conv2d(in_channels, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False), nn.BatchNorm2d(out_channels)
            )
        self.attn_in_branch: nn.Module = nn.Identity()
        self.attn_after_add: nn.Module = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.attn_in_branch(self.bn3(self.conv3(out)))
        return self.attn_after_add(self.relu(out + shortcut))


class ResNet2d(nn.Module):
    """ResNet with torchvision's key names; ``layer1``..``layer4`` are res2..res5."""

    is_video = False
    head_prefix = "fc."

    def __init__(
        self,
        *,
        depths: Sequence[int] = (3, 4, 6, 3),
        width: int = 64,
        num_classes: int = 1000,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        in_channels = width
        for i, depth in enumerate(depths):
            planes = width * 2**i
            stride = 1 if i == 0 else 2
            layer = [Bottleneck(in_channels, planes, stride)]
            in_channels = planes * Bottleneck.expansion
            layer += [Bottleneck(in_channels, planes) for _ in range(depth - 1)]
            self.add_module(f"layer{i + 1}", nn.Sequential(*layer))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        # torchvision has no dropout; an empty Dropout adds no keys and keeps its layout.
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(in_channels, num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        # torchvision's initialisation (without zero-init of the last BN, its default).
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    @property
    def stages(self) -> dict[str, nn.Sequential]:
        """Stage name -> its residual blocks."""
        return {name: getattr(self, f"layer{i + 1}") for i, name in enumerate(STAGES)}

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled backbone feature (B, D), before dropout and the classifier."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.avgpool(x).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(self.forward_features(x)))


def create_resnet2d(
    *,
    num_classes: int = 1000,
    width: int = 64,
    dropout: float = 0.0,
    depths: Sequence[int] = (3, 4, 6, 3),
    blocks: Sequence[BlockSpec] = (),
) -> ResNet2d:
    """ResNet (50 with the default depths) with attention blocks placed by ``blocks``."""
    if width < 1 or num_classes < 1:
        raise ValueError(f"width and num_classes must be positive, got width={width}, num_classes={num_classes}")
    if len(depths) != 4:
        raise ValueError(f"depths needs one entry per stage res2..res5, got {tuple(depths)}")
    model = ResNet2d(depths=depths, width=width, num_classes=num_classes, dropout=dropout)
    channels = {name: width * 4 * 2**i for i, name in enumerate(STAGES)}
    insert_attention_blocks(model.stages, channels, blocks, dim=2)
    return model
