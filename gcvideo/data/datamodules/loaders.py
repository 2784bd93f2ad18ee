"""The DataLoader settings both data modules share."""

from __future__ import annotations

from typing import Callable

import torch
from torch.utils.data import DataLoader, Dataset


def make_loader(dataset: Dataset, batch_size: int, num_workers: int, *, shuffle: bool,
                collate_fn: Callable | None = None) -> DataLoader:
    """Training shuffles and drops the last partial batch; workers persist between epochs; memory is
    pinned only when a GPU will read it."""
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, drop_last=shuffle,
                      num_workers=num_workers, persistent_workers=num_workers > 0,
                      pin_memory=torch.cuda.is_available(), collate_fn=collate_fn)
