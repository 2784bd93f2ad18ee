"""Where attention blocks go in a ResNet: a small typed spec, validated at build time.

GCNet (arXiv 1904.11492, sec. 5) places GC after the last 1x1 conv and its BN of a bottleneck, before
the residual add (``after_conv3``); the non-local paper (arXiv 1711.07971, sec. 4) places NL after the
residual block (``after_block``), in every other block of res3 and res4 ("+5 blocks").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Union

STAGES = ("res2", "res3", "res4", "res5")
POSITIONS = ("after_conv3", "after_block")
KINDS = ("gc", "snl", "nl")

StageIndices = Union[Sequence[int], str]  # explicit 0-based block indices, or "all"


@dataclass(frozen=True)
class BlockSpec:
    """Which attention block goes where.

    Args:
        kind: "gc", "snl" or "nl".
        stages: stage name ("res2".."res5") -> 0-based indices of the residual blocks that get one, or
            "all".
        position: "after_conv3" (inside the residual branch, before the add) or "after_block" (after
            the residual add and its ReLU).
        options: keyword options of the block (e.g. ``{"ratio": 0.25}`` for GC).
    """

    kind: str
    stages: Mapping[str, StageIndices]
    position: str = "after_conv3"
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown block kind {self.kind!r}; valid kinds: {', '.join(KINDS)}")
        if self.position not in POSITIONS:
            raise ValueError(f"unknown position {self.position!r}; valid positions: {', '.join(POSITIONS)}")
        for stage, indices in self.stages.items():
            if stage not in STAGES:
                raise ValueError(f"unknown stage {stage!r}; valid stages: {', '.join(STAGES)}")
            if isinstance(indices, str) and indices != "all":
                raise ValueError(f"stage {stage}: indices must be a list of ints or 'all', got {indices!r}")

    def indices_for(self, stage: str, depth: int) -> tuple[int, ...]:
        """The block indices of ``stage`` (which has ``depth`` residual blocks) that get a block."""
        indices = self.stages.get(stage, ())
        if isinstance(indices, str):  # "all", checked in __post_init__
            return tuple(range(depth))
        indices = tuple(int(i) for i in indices)
        bad = [i for i in indices if not 0 <= i < depth]
        if bad:
            raise ValueError(
                f"stage {stage} has {depth} residual blocks (valid indices 0..{depth - 1}); got {bad}"
            )
        if len(set(indices)) != len(indices):
            raise ValueError(f"stage {stage}: repeated block indices {list(indices)}")
        return indices

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable form that :meth:`from_any` reads back."""
        stages = {s: (i if isinstance(i, str) else [int(j) for j in i]) for s, i in self.stages.items()}
        options = {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.options.items()}
        return {"kind": self.kind, "stages": stages, "position": self.position, "options": options}

    @classmethod
    def from_any(cls, spec: BlockSpec | Mapping[str, Any]) -> BlockSpec:
        """Accept a spec or its dict form (as found in YAML configs and exported metadata)."""
        if isinstance(spec, BlockSpec):
            return spec
        valid = {"kind", "stages", "position", "options"}
        unknown = set(spec) - valid
        if unknown:
            raise ValueError(f"unknown block spec keys {sorted(unknown)}; valid keys: {sorted(valid)}")
        return cls(**spec)


def as_specs(blocks: BlockSpec | Mapping | Sequence[BlockSpec | Mapping] | None) -> tuple[BlockSpec, ...]:
    """Normalise None / one spec / a list of specs (or their dict forms) to a tuple of specs."""
    if blocks is None:
        return ()
    if isinstance(blocks, (BlockSpec, Mapping)):
        return (BlockSpec.from_any(blocks),)
    return tuple(BlockSpec.from_any(b) for b in blocks)


# "+5 blocks": after blocks 1, 3 of res3 and 1, 3, 5 of res4 (0-based), as in PySlowFast.
FIVE_BLOCKS: dict[str, tuple[int, ...]] = {"res3": (1, 3), "res4": (1, 3, 5)}
# "+all": every residual block of res3, res4 and res5 (c3-c5).
ALL_C3_C5: dict[str, str] = {"res3": "all", "res4": "all", "res5": "all"}
