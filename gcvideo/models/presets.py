"""Every row of GCNet's tables by name (GCNet, Cao et al., arXiv 1904.11492, tables 5 and 8).

``create("slow_r50_gc5", num_classes=400)`` builds a row; ``width`` builds a small version of the same
topology (same depths and block placement), which is what the tests and synthetic configs use.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from torch import nn

from gcvideo.models.conv_levers import apply_conv_levers, parse_levers
from gcvideo.models.placement import ALL_C3_C5, FIVE_BLOCKS, BlockSpec, as_specs
from gcvideo.models.resnet2d import create_resnet2d
from gcvideo.models.slow_resnet import create_slow_resnet


@dataclass(frozen=True)
class GmacsReference:
    """A compute figure as the paper prints it: absolute, or a delta over the baseline row ("+0.02"),
    to ``decimals`` places ("about +22" is a delta to 0 places)."""

    value: float
    delta: bool = False
    decimals: int = 2

    def compare(self, gmacs: float, baseline_gmacs: float) -> str:
        """"exact" when the measured figure prints as the paper's; "rounding" when a delta is off by one
        unit of its last printed place (a printed delta is often the difference of two rounded
        totals, which can differ from the rounded true delta by one unit); else "differs"."""
        measured = gmacs - baseline_gmacs if self.delta else gmacs
        if round(measured, self.decimals) == round(self.value, self.decimals):
            return "exact"
        unit = 10.0**-self.decimals
        if self.delta and abs(measured - self.value) <= 1.5 * unit:
            return "rounding"
        return "differs"

    def __str__(self) -> str:
        text = f"{self.value:.{self.decimals}f}"
        return ("+" + text if self.delta else text) if self.decimals else f"about +{text}"


@dataclass(frozen=True)
class Preset:
    """One table row: backbone family, block placement and the paper's reference figures."""

    description: str
    video: bool
    blocks: tuple[BlockSpec, ...]
    paper_params_m: float | None  # millions, to the printed 3 decimals
    paper_gmacs: Mapping[str, GmacsReference]  # input "8x224x224" -> reference
    baseline: str  # the row compute deltas are measured against


_NL5 = BlockSpec("nl", FIVE_BLOCKS, position="after_block")
_SNL5 = BlockSpec("snl", FIVE_BLOCKS, position="after_block")
_GC5 = BlockSpec("gc", FIVE_BLOCKS, position="after_block", options={"ratio": 1 / 4})
_GC_ALL_R4 = BlockSpec("gc", ALL_C3_C5, options={"ratio": 1 / 4})
_R = GmacsReference


def _video_deltas(d224: float, d256: float, decimals: int = 2) -> dict[str, GmacsReference]:
    return {"8x224x224": _R(d224, True, decimals), "8x256x256": _R(d256, True, decimals)}


PRESETS: dict[str, Preset] = {
    "slow_r50": Preset(
        "Slow-only R50 8x8 baseline", True, (), 32.454,
        {"8x224x224": _R(41.74), "8x256x256": _R(54.52)}, "slow_r50",
    ),
    "slow_r50_nl5": Preset(
        "+ 5 NL (res3: 1,3; res4: 1,3,5)", True, (_NL5,), 39.813, _video_deltas(22, 34, 0), "slow_r50"
    ),
    "slow_r50_snl5": Preset(
        "+ 5 SNL in the NL positions", True, (_SNL5,), 36.132, _video_deltas(0.03, 0.03), "slow_r50"
    ),
    "slow_r50_gc5": Preset(
        "+ 5 GC (r=1/4) in the NL positions", True, (_GC5,), 34.300, _video_deltas(0.02, 0.03), "slow_r50"
    ),
    "slow_r50_gc_all": Preset(
        "+ GC (r=1/4) in every block of res3-res5", True, (_GC_ALL_R4,), 42.455, _video_deltas(0.06, 0.08), "slow_r50"
    ),
    "resnet50": Preset("ResNet-50 baseline", False, (), 25.557, {"224x224": _R(4.09)}, "resnet50"),
    "resnet50_gc_r16": Preset(
        "+ GC r16 in c3-c5", False, (BlockSpec("gc", ALL_C3_C5, options={"ratio": 1 / 16}),), 28.079,
        {"224x224": _R(0.01, True)}, "resnet50",
    ),
    "resnet50_gc_r4": Preset(
        "+ GC r4 in c3-c5", False, (BlockSpec("gc", ALL_C3_C5, options={"ratio": 1 / 4}),), 35.558,
        {"224x224": _R(0.01, True)}, "resnet50",
    ),
    "resnet50_snl": Preset("+ SNL in c3-c5", False, (BlockSpec("snl", ALL_C3_C5),), 45.509, {}, "resnet50"),
}

# The inputs the paper's tables are measured at.
VIDEO_INPUTS = ("8x224x224", "8x256x256")
IMAGE_INPUTS = ("224x224",)


def create(
    name: str,
    *,
    num_classes: int | None = None,
    width: int = 64,
    dropout: float | None = None,
    depths: Sequence[int] = (3, 4, 6, 3),
    blocks: BlockSpec | Mapping | Sequence[BlockSpec | Mapping] | None = None,
    conv_levers: str = "auto",
) -> nn.Module:
    """Build a preset.

    Args:
        name: a key of :data:`PRESETS`.
        num_classes: classifier outputs (default 400 for video, 1000 for images).
        width: stem channels; 64 is the paper's size.
        dropout: before the classifier (default 0.5 for video as in SlowFast, 0 for images).
        depths: residual blocks per stage; the block placements must fit them.
        blocks: replaces the preset's block placement (a spec, its dict form, or a list of them).
        conv_levers: the video backbone's convolution paths (``gcvideo.models.conv_levers``): "auto" (the
            measured policy), "none" (plain ``nn.Conv3d``) or forced "kind=path" pairs. Parameters and
            outputs do not depend on it.

    Returns:
        The model, with ``build_args`` (so that ``create(**model.build_args)`` rebuilds it), ``is_video``,
        ``head_prefix`` and ``forward_features``.
    """
    if name not in PRESETS:
        raise ValueError(f"unknown model {name!r}; valid presets: {', '.join(PRESETS)}")
    preset = PRESETS[name]
    parse_levers(conv_levers)  # a bad value fails before the model is built
    specs = preset.blocks if blocks is None else as_specs(blocks)
    if num_classes is None:
        num_classes = 400 if preset.video else 1000
    if dropout is None:
        dropout = 0.5 if preset.video else 0.0
    build = create_slow_resnet if preset.video else create_resnet2d
    model = build(num_classes=num_classes, width=width, dropout=dropout, depths=tuple(depths), blocks=specs)
    if conv_levers != "none":
        apply_conv_levers(model, conv_levers)
    model.build_args: dict[str, Any] = {
        "name": name,
        "num_classes": num_classes,
        "width": width,
        "dropout": dropout,
        "depths": [int(d) for d in depths],
        "blocks": None if blocks is None else [s.to_dict() for s in specs],
        "conv_levers": conv_levers,
    }
    return model
