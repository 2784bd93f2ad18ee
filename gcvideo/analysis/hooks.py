"""Forward hooks that measure GCNet's query-independence statistics on a model's context blocks.

GCNet (arXiv 1904.11492), sec. 3.1: for each NL, SNL or GC block, the block's input features, what it
adds (output - input) and, for NL, the attention maps of sampled query positions, on a few clips.
Statistics are accumulated as the clips stream through (``BlockStatistics``), so nothing grows with
the number of clips. NL attention rows are computed only for the sampled queries from the block's own
weights (``nl_attention_rows``): at res3 of Slow-R50 the full map is 6272 x 1568 per clip.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from gcvideo.layers import BLOCKS, GlobalContextBlock, NonLocalBlock

from .statistics import BlockStatistics, sample_pairs

KIND_OF_CLASS = {cls: kind for kind, cls in BLOCKS.items()}


def find_blocks(model: nn.Module) -> dict[str, nn.Module]:
    """The NL, SNL and GC blocks of ``model`` by module name, in forward-definition order.

    Raises:
        ValueError: The model has none.
    """
    blocks = {name: module for name, module in model.named_modules() if type(module) in KIND_OF_CLASS}
    if not blocks:
        raise ValueError(
            f"{type(model).__name__} has no NL, SNL or GC block to analyse "
            f"(looked for {sorted(cls.__name__ for cls in KIND_OF_CLASS)}); use a model with blocks, "
            "e.g. slow_r50_nl5, slow_r50_snl5, slow_r50_gc5 or slow_r50_gc_all"
        )
    return blocks


def block_kind(block: nn.Module) -> str:
    """"nl", "snl" or "gc"."""
    return KIND_OF_CLASS[type(block)]


def has_attention_map(block: nn.Module) -> bool:
    """GC with average pooling has no attention map; every other block has one."""
    return not (isinstance(block, GlobalContextBlock) and block.conv_mask is None)


def nl_attention_rows(block: NonLocalBlock, x: Tensor, queries: Tensor) -> Tensor:
    """Attention rows ``f(theta_i, phi_j)`` of the given queries only, from the block's weights.

    Equal to ``block.attention(x).gather(1, queries)`` without materialising the N x Nk maps.

    Args:
        block: The NL block.
        x: Its input ``(B, C, *spatial)``.
        queries: ``(B, Q)`` flattened query positions (int64).

    Returns:
        ``(B, Q, Nk)``: softmax rows, or dot-product affinities divided by Nk.
    """
    batch, channels = x.shape[:2]
    flat = x.flatten(2)  # (B, C, N)
    picked = flat.gather(2, queries.unsqueeze(1).expand(batch, channels, -1))  # (B, C, Q)
    picked = picked.reshape(batch, channels, queries.shape[1], *([1] * (block.dim - 1)))  # (B, C, Q, 1[, 1])
    theta = block.conv_theta(picked).flatten(2)  # (B, d, Q)
    keys_in = x if block.pool is None else block.pool(x)
    phi = block.conv_phi(keys_in).flatten(2)  # (B, d, Nk)
    affinity = torch.bmm(theta.transpose(1, 2), phi)  # (B, Q, Nk)
    if block.instantiation == "softmax":
        return (affinity * block.inner_channels**-0.5).softmax(dim=2)
    return affinity / phi.shape[2]


def picture_queries(grid: tuple[int, ...]) -> list[tuple[int, ...]]:
    """Four query points of a block's grid (quarter points of the middle frame), as in GCNet fig. 1."""
    *time, height, width = grid
    rows = sorted({height // 4, (3 * height) // 4})
    cols = sorted({width // 4, (3 * width) // 4})
    return [(*(t // 2 for t in time), r, c) for r in rows for c in cols]


@dataclass
class BlockMaps:
    """Attention maps of one block on one clip, kept for the pictures.

    ``maps`` is ``(Q, Nk)`` over the key grid for NL (one row per query in ``queries``, points of the
    block's ``grid``), or ``(1, N)`` over ``grid`` for SNL/GC (``queries`` empty).
    """

    clip: int
    block: str
    kind: str
    grid: tuple[int, ...]
    key_grid: tuple[int, ...]
    queries: list[tuple[int, ...]]
    maps: Tensor


@dataclass
class StatisticsCollector:
    """Registers hooks on every context block of ``model`` and accumulates their statistics.

    Use as a context manager around the forward passes (under ``torch.no_grad``). Clips are numbered
    in the order the model sees them; the maps of the first ``picture_clips`` clips are kept.

    Args:
        model: The network (its blocks are found with ``find_blocks``).
        pairs_per_clip: Position pairs sampled per clip and block (all pairs when fewer exist).
        seed: Seed of the pair sampling (one generator per block).
        picture_clips: How many clips' attention maps to keep for pictures.
    """

    model: nn.Module
    pairs_per_clip: int = 1024
    seed: int = 0
    picture_clips: int = 2
    blocks: dict[str, nn.Module] = field(init=False)
    stats: dict[str, BlockStatistics] = field(init=False)
    maps: list[BlockMaps] = field(init=False, default_factory=list)
    clips_seen: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        if self.pairs_per_clip < 1:
            raise ValueError(f"pairs_per_clip must be >= 1, got {self.pairs_per_clip}")
        self.blocks = find_blocks(self.model)
        self.stats = {name: BlockStatistics() for name in self.blocks}
        self._generators = {
            name: torch.Generator().manual_seed(self.seed + index) for index, name in enumerate(self.blocks)
        }
        self._handles: list[torch.utils.hooks.RemovableHandle] = []
        self._batch_start = 0
        self._grids: dict[str, tuple[int, ...]] = {}

    def __enter__(self) -> "StatisticsCollector":
        self._handles.append(self.model.register_forward_pre_hook(self._count_clips))
        for name, block in self.blocks.items():
            self._handles.append(block.register_forward_hook(self._hook(name)))
        return self

    def __exit__(self, *exc: object) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def _count_clips(self, module: nn.Module, inputs: tuple[Tensor, ...]) -> None:
        self._batch_start = self.clips_seen
        self.clips_seen += int(inputs[0].shape[0])

    def _hook(self, name: str):
        def hook(module: nn.Module, inputs: tuple[Tensor, ...], output: Tensor) -> None:
            self._measure(name, module, inputs[0], output)

        return hook

    def _measure(self, name: str, block: nn.Module, x: Tensor, output: Tensor) -> None:
        batch, grid = x.shape[0], tuple(int(s) for s in x.shape[2:])
        positions = x[0, 0].numel()
        self._grids[name] = grid
        inputs = x.float().flatten(2)  # (B, C, N)
        added = output.float().flatten(2) - inputs  # (B, C, N): what the block adds
        pairs = [sample_pairs(positions, self.pairs_per_clip, self._generators[name]) for _ in range(batch)]
        stats = self.stats[name]
        for b in range(batch):
            stats.add_features(inputs[b], added[b], pairs[b].to(x.device))
        kind = block_kind(block)
        if kind == "nl":
            queries = torch.stack([p.flatten() for p in pairs]).to(x.device)  # (B, 2P)
            rows = nl_attention_rows(block, x, queries).float()  # (B, 2P, Nk)
            rows = rows.view(batch, -1, 2, rows.shape[-1])  # (B, P, 2, Nk)
            stats.add_attention(
                rows[:, :, 0].flatten(0, 1), rows[:, :, 1].flatten(0, 1), distributions=block.instantiation == "softmax"
            )
        self._keep_maps(name, kind, block, x, grid)

    def _keep_maps(self, name: str, kind: str, block: nn.Module, x: Tensor, grid: tuple[int, ...]) -> None:
        keep = min(x.shape[0], self.picture_clips - self._batch_start)
        if keep <= 0 or not has_attention_map(block):
            return
        if kind == "nl":
            points = picture_queries(grid)
            index = [sum(p * s for p, s in zip(point, _strides(grid))) for point in points]
            queries = torch.tensor(index, device=x.device).expand(keep, -1)  # (keep, Q)
            rows = nl_attention_rows(block, x[:keep], queries)  # (keep, Q, Nk)
            key_grid = tuple(block.key_shape(grid))
        else:
            points, key_grid = [], grid
            rows = block.attention(x[:keep]).unsqueeze(1)  # (keep, 1, N)
        for b in range(keep):
            self.maps.append(
                BlockMaps(self._batch_start + b, name, kind, grid, key_grid, points, rows[b].float().cpu())
            )

    def summary(self) -> dict[str, dict[str, object]]:
        """Per block: kind, options, feature grid and the statistics (``BlockStatistics.summary``)."""
        return {
            name: {
                "kind": block_kind(block),
                "block": block.extra_repr(),
                "grid": list(self._grids.get(name, ())),
                **self.stats[name].summary(),
            }
            for name, block in self.blocks.items()
        }


def _strides(grid: tuple[int, ...]) -> list[int]:
    """Row-major strides of a grid (flattened position = sum(index * stride))."""
    strides, step = [], 1
    for size in reversed(grid):
        strides.append(step)
        step *= size
    return strides[::-1]
