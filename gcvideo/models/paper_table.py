"""GCNet's parameter and compute figures, measured for every preset (arXiv 1904.11492, tables 5 and 8)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import torch

from gcvideo.models.complexity import count_macs, count_parameters
from gcvideo.models.presets import IMAGE_INPUTS, PRESETS, VIDEO_INPUTS, create


@dataclass(frozen=True)
class TableRow:
    """One measured row: a preset at one input size, next to the paper's reference figures."""

    model: str
    input: str
    params: int
    macs: int
    paper_params_m: float | None
    paper_gmacs: str | None  # as printed, e.g. "41.74" or "+0.02"
    params_match: bool | None
    gmacs_match: str | None  # "exact", "rounding" or "differs" (see GmacsReference.compare)

    def as_json(self) -> dict[str, object]:
        return {"model": self.model, "input": self.input, "params": self.params, "macs": self.macs}


def input_shape(size: str) -> tuple[int, ...]:
    """"8x224x224" -> (1, 3, 8, 224, 224); "224x224" -> (1, 3, 224, 224)."""
    return (1, 3, *(int(v) for v in size.split("x")))


def measure_rows(names: Iterable[str] | None = None) -> Iterator[TableRow]:
    """Build each preset at full size on the meta device and count it at the paper's inputs."""
    names = list(PRESETS) if names is None else list(names)
    unknown = [n for n in names if n not in PRESETS]
    if unknown:
        raise ValueError(f"unknown model(s) {unknown}; valid presets: {', '.join(PRESETS)}")
    baseline_macs: dict[tuple[str, str], int] = {}

    def macs_of(name: str, size: str) -> tuple[int, int]:
        if (name, size) not in baseline_macs:
            with torch.device("meta"):
                model = create(name)
            baseline_macs[(name, size)] = count_macs(model, input_shape(size))
            baseline_macs[(name, "params")] = count_parameters(model)
        return baseline_macs[(name, size)], baseline_macs[(name, "params")]

    for name in names:
        preset = PRESETS[name]
        for size in VIDEO_INPUTS if preset.video else IMAGE_INPUTS:
            macs, params = macs_of(name, size)
            reference = preset.paper_gmacs.get(size)
            gmacs_match = None
            if reference is not None:
                base_macs, _ = macs_of(preset.baseline, size)
                gmacs_match = reference.compare(macs / 1e9, base_macs / 1e9)
            paper_m = preset.paper_params_m
            yield TableRow(
                model=name,
                input=size,
                params=params,
                macs=macs,
                paper_params_m=paper_m,
                paper_gmacs=None if reference is None else str(reference),
                params_match=None if paper_m is None else round(params / 1e6, 3) == paper_m,
                gmacs_match=gmacs_match,
            )
