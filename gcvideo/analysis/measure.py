"""Run a trained model over clips with the statistics hooks on, and draw its attention pictures.

This is the work behind ``gcvideo analyze`` (GCNet, arXiv 1904.11492, sec. 3.1 and fig. 1): a seeded
random subset of a dataset's items goes through the model in batches; undecodable items (``valid``
False) are skipped and counted.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset

from gcvideo.models.io import MissingClassifierError
from gcvideo.progress import progress_bar

from .hooks import StatisticsCollector
from .pictures import attention_picture


def _input_of(batch: dict[str, Any]) -> torch.Tensor:
    for key in ("video", "image"):
        if key in batch:
            return batch[key]
    raise ValueError(f"dataset items need a 'video' or 'image' entry, got keys {sorted(batch)}")


def measure(
    model: nn.Module,
    dataset: Dataset,
    *,
    clips: int = 16,
    batch_size: int = 4,
    num_workers: int = 0,
    pairs_per_clip: int = 1024,
    seed: int = 0,
    picture_clips: int = 2,
    picture_dir: str | Path | None = None,
    device: str | torch.device = "cpu",
    progress: bool = True,
) -> dict[str, Any]:
    """Statistics of every NL/SNL/GC block of ``model`` on ``clips`` items of ``dataset``.

    Args:
        model: A network with context blocks (eval mode is set here).
        dataset: Items are dicts with ``video`` (or ``image``) and optionally ``valid``.
        clips: How many items to analyse (a seeded random subset; all if the dataset is smaller).
        batch_size, num_workers: Of the DataLoader.
        pairs_per_clip, seed: Position pairs sampled per clip and block, and the seed of all sampling.
        picture_clips: For this many clips, draw every block's attention maps.
        picture_dir: Where the PNGs go (no pictures when None).
        device: Where the model runs.
        progress: Show a progress bar.

    Returns:
        ``{"clips", "skipped", "pairs_per_clip", "seed", "blocks": {name: summary}, "pictures": [paths]}``.
    """
    if clips < 1:
        raise ValueError(f"clips must be >= 1, got {clips}")
    if len(dataset) == 0:
        raise ValueError("the dataset has no items to analyse")
    model = model.to(device).eval()
    order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed))[:clips].tolist()
    loader = DataLoader(Subset(dataset, order), batch_size=batch_size, num_workers=num_workers, shuffle=False)
    collector = StatisticsCollector(
        model, pairs_per_clip=pairs_per_clip, seed=seed, picture_clips=picture_clips if picture_dir else 0
    )
    kept: list[torch.Tensor] = []
    skipped = 0
    with torch.no_grad(), collector, \
            progress_bar(total=len(order), desc="analyze", unit="clip", disable=not progress) as bar:
        for batch in loader:
            x = _input_of(batch)
            valid = batch.get("valid", torch.ones(x.shape[0], dtype=torch.bool))
            skipped += int((~valid).sum())
            x = x[valid]
            if len(x):
                if len(kept) < picture_clips:
                    kept.extend(x[: picture_clips - len(kept)].clone())
                try:
                    model(x.to(device, non_blocking=True))
                except MissingClassifierError:  # a backbone-only export: its blocks ran (and were measured)
                    pass
            bar.update(len(valid))
    if collector.clips_seen == 0:
        raise ValueError(f"none of the {len(order)} selected items could be decoded ({skipped} skipped)")
    pictures: list[str] = []
    if picture_dir is not None:
        picture_dir = Path(picture_dir)
        picture_dir.mkdir(parents=True, exist_ok=True)
        for maps in collector.maps:
            path = picture_dir / f"clip{maps.clip:02d}_{maps.block.replace('.', '_')}.png"
            attention_picture(kept[maps.clip], maps, path)
            pictures.append(str(path))
    return {
        "clips": collector.clips_seen,
        "skipped": skipped,
        "pairs_per_clip": pairs_per_clip,
        "seed": seed,
        "js_units": "nats",
        "blocks": collector.summary(),
        "pictures": pictures,
    }
