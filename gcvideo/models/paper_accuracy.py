"""GCNet's accuracy figures for the rows gcvideo builds (Cao et al., arXiv 1904.11492): the action-recognition
table (Kinetics-400, Slow-only ResNet-50 8x8, 10 clips x 3 crops) and the ImageNet table (ResNet-50, 224x224).

``gcvideo table --runs`` prints them next to measured runs. The values are approximate (``approximate``):
they are as summarised from the printed tables, not checked against them digit by digit; a row the paper
does not print has None. pytorchvideo's model-zoo ``slow_r50`` (74.58 / 91.63 with 10 x 3 views) is the
published checkpoint closest to the baseline row.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PaperAccuracy:
    """Top-1 / top-5 in percent as the paper prints them (None: not printed)."""

    top1: float | None
    top5: float | None
    approximate: bool = True


# Kinetics-400: GCNet's action-recognition table (Slow-only R50 8x8, 10 clips x 3 crops).
# ImageNet: GCNet's ImageNet table (ResNet-50, single 224 crop); top-5 is not used here.
PAPER_ACCURACY: dict[str, PaperAccuracy] = {
    "slow_r50": PaperAccuracy(74.9, 91.9),
    "slow_r50_nl5": PaperAccuracy(75.9, 92.3),
    "slow_r50_snl5": PaperAccuracy(75.8, 92.4),
    "slow_r50_gc5": PaperAccuracy(75.8, 92.3),
    "slow_r50_gc_all": PaperAccuracy(76.0, 92.3),
    "resnet50": PaperAccuracy(76.9, None),
    "resnet50_gc_r16": PaperAccuracy(77.7, None),
    "resnet50_gc_r4": PaperAccuracy(None, None),
    "resnet50_snl": PaperAccuracy(None, None),
}

# The published checkpoint closest to the Kinetics baseline row (pytorchvideo's model zoo, 10 x 3 views).
PYTORCHVIDEO_SLOW_R50 = PaperAccuracy(74.58, 91.63, approximate=False)
