"""Context blocks of GCNet (Cao et al., arXiv 1904.11492): GC (Sec. 4.2), SNL (Sec. 4.1) and NL (Sec. 3).

Every block takes the channel count first, ``dim=2|3`` for image or video features, and maps
``x (B, C, *spatial)`` to the same shape with its own residual add, in either memory layout (contiguous
or channels_last) without copying the feature map. Every block is the identity at initialisation, except
GC with the paper's "mul" fusion gate ``sigmoid`` (it starts at ``x * 0.5``, as mmcv's; no preset uses
it). ``create_block`` turns a kind name and an options mapping into a block.
"""

from __future__ import annotations

import inspect
from typing import Mapping, Optional

from torch import nn

from .global_context import GlobalContextBlock
from .non_local import NonLocalBlock
from .simplified_non_local import SimplifiedNonLocalBlock

BLOCKS: dict[str, type[nn.Module]] = {
    "gc": GlobalContextBlock,
    "snl": SimplifiedNonLocalBlock,
    "nl": NonLocalBlock,
}


def block_options(kind: str) -> tuple[str, ...]:
    """Option names accepted by ``create_block(kind, ...)`` (the block's keyword-only arguments but ``dim``)."""
    if kind not in BLOCKS:
        raise ValueError(f"unknown block kind {kind!r}; valid kinds: {sorted(BLOCKS)}")
    params = inspect.signature(BLOCKS[kind]).parameters.values()
    return tuple(p.name for p in params if p.kind is p.KEYWORD_ONLY and p.name != "dim")


def create_block(kind: str, channels: int, *, dim: int, options: Optional[Mapping] = None) -> nn.Module:
    """Build a context block by name.

    Args:
        kind: "gc", "snl" or "nl".
        channels: Input and output channels C.
        dim: 2 for image features ``(B, C, H, W)``, 3 for video features ``(B, C, T, H, W)``.
        options: Keyword options of that block (e.g. ``{"ratio": 0.25}`` for "gc").

    Raises:
        ValueError: Unknown kind or option name (the message names the valid ones), or a bad value.
    """
    valid = block_options(kind)
    options = dict(options or {})
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ValueError(f"unknown option(s) {unknown} for block {kind!r}; valid options: {list(valid)}")
    return BLOCKS[kind](channels, dim=dim, **options)


__all__ = [
    "BLOCKS",
    "GlobalContextBlock",
    "NonLocalBlock",
    "SimplifiedNonLocalBlock",
    "block_options",
    "create_block",
]
