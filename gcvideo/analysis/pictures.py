"""Pictures of attention maps over the input frames, like GCNet's figure 1 (arXiv 1904.11492).

NL: one row per query point (marked with a star on its own frame), one column per shown frame, the
query's attention over that frame's key positions overlaid on the frame. SNL/GC: one row, the single
attention map. Drawn with matplotlib's Agg canvas (no display needed); each cell is
``cell_inches * dpi`` pixels square, so a picture is ``(columns * cell, rows * cell)`` pixels.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from torch import Tensor

from .hooks import BlockMaps


def display_frames(clip: Tensor) -> Tensor:
    """A normalised clip ``(3, T, H, W)`` (or an image ``(3, H, W)``) -> ``(T, H, W, 3)`` in [0, 1]."""
    if clip.dim() == 3:
        clip = clip.unsqueeze(1)  # (3, 1, H, W)
    if clip.dim() != 4 or clip.shape[0] != 3:
        raise ValueError(f"expected a clip (3, T, H, W) or an image (3, H, W), got shape {tuple(clip.shape)}")
    clip = clip.detach().float().cpu()
    low, high = clip.amin(dim=(1, 2, 3), keepdim=True), clip.amax(dim=(1, 2, 3), keepdim=True)
    return ((clip - low) / (high - low).clamp_min(1e-6)).permute(1, 2, 3, 0)  # (T, H, W, 3)


def _shown_frames(key_frames: int, must_show: list[int], count: int) -> list[int]:
    """Up to ``count`` evenly spaced key-grid frames, always including ``must_show``."""
    even = torch.linspace(0, key_frames - 1, min(count, key_frames)).round().long().tolist()
    chosen = sorted(set(must_show))
    for frame in even:
        if len(chosen) >= max(count, len(set(must_show))):
            break
        if frame not in chosen:
            chosen.append(frame)
    return sorted(chosen)


def attention_picture(
    clip: Tensor, maps: BlockMaps, path: str | Path, *, frames: int = 4, cell_inches: float = 2.0, dpi: int = 64
) -> tuple[int, int]:
    """Draw one block's maps on one clip and save a PNG.

    Args:
        clip: The model's input clip ``(3, T, H, W)`` (or image ``(3, H, W)``), normalised.
        maps: The block's maps on this clip (``StatisticsCollector.maps``).
        path: Output PNG.
        frames: Frames shown per row (at most the key grid's frame count).
        cell_inches: Size of one cell; with ``dpi`` gives its size in pixels.
        dpi: Pixels per inch.

    Returns:
        The picture's (width, height) in pixels.
    """
    video = display_frames(clip)  # (T, H, W, 3)
    key_grid = maps.key_grid if len(maps.key_grid) == 3 else (1, *maps.key_grid)
    grid = maps.grid if len(maps.grid) == 3 else (1, *maps.grid)
    heat = maps.maps.float().reshape(maps.maps.shape[0], *key_grid)  # (Q, Tk, Hk, Wk)
    # each map's strongest frame is always shown: a peak in a frame left out draws as an empty map
    peak_frames = heat.flatten(2).amax(2).argmax(1).tolist()
    height, width = video.shape[1:3]
    heat = F.interpolate(heat, size=(height, width), mode="bilinear", align_corners=False)  # (Q, Tk, H, W)
    queries = [q if len(q) == 3 else (0, *q) for q in maps.queries]
    query_frames = [q[0] * key_grid[0] // grid[0] for q in queries]
    shown = _shown_frames(key_grid[0], query_frames + peak_frames, frames)
    rows, cols = heat.shape[0], len(shown)

    fig = Figure(figsize=(cols * cell_inches, rows * cell_inches), dpi=dpi)
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=0.9, wspace=0.03, hspace=0.03)
    axes = fig.subplots(rows, cols, squeeze=False)
    for row in range(rows):
        vmax = float(heat[row].max())  # one colour scale per query: maps of frames compare directly
        for col, key_frame in enumerate(shown):
            axis = axes[row][col]
            video_frame = min(key_frame * video.shape[0] // key_grid[0], video.shape[0] - 1)
            axis.imshow(video[video_frame].numpy())
            axis.imshow(heat[row, key_frame].numpy(), cmap="jet", alpha=0.5, vmin=0.0, vmax=max(vmax, 1e-12))
            axis.set_xticks([])
            axis.set_yticks([])
            if queries and query_frames[row] == key_frame:
                t, h, w = queries[row]
                x_pixel, y_pixel = (w + 0.5) * width / grid[2], (h + 0.5) * height / grid[1]
                axis.plot([x_pixel], [y_pixel], marker="*", markersize=14, color="white", markeredgecolor="black")
            if row == 0:
                axis.set_title(f"frame {video_frame}", fontsize=8)
            if col == 0:  # how peaked the map is: its maximum over the uniform map's value
                axis.set_ylabel(f"peak {vmax * maps.maps.shape[1]:.3g}x uniform", fontsize=7)
    label = "query points (stars)" if queries else "single attention map"
    fig.suptitle(f"{maps.block} ({maps.kind.upper()}), clip {maps.clip}: {label}", fontsize=9)
    fig.savefig(str(path), dpi=dpi)
    return int(round(cols * cell_inches * dpi)), int(round(rows * cell_inches * dpi))
