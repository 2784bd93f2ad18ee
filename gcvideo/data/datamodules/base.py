"""What both data modules share: the class list, the DataLoader settings and the stage loaders."""

from __future__ import annotations

from typing import Callable

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset


def make_loader(dataset: Dataset, batch_size: int, num_workers: int, *, shuffle: bool,
                collate_fn: Callable | None = None) -> DataLoader:
    """Training shuffles and drops the last partial batch; workers persist between epochs; memory is
    pinned only when a GPU will read it."""
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, drop_last=shuffle,
                      num_workers=num_workers, persistent_workers=num_workers > 0,
                      pin_memory=torch.cuda.is_available(), collate_fn=collate_fn)


class ClassificationDataModule(L.LightningDataModule):
    """A data module of labelled clips or images.

    Subclasses set ``class_list`` (the class names in label order) in ``__init__``, so ``num_classes`` and
    ``class_names`` are known without ``setup`` (LightningCLI links them to the model before any data is
    read), and ``setup`` builds ``train_dataset``, ``val_dataset`` and ``test_dataset`` (None until then).
    """

    batch_size: int
    num_workers: int
    class_list: list[str]
    train_dataset: Dataset | None = None
    val_dataset: Dataset | None = None
    test_dataset: Dataset | None = None

    @property
    def class_names(self) -> list[str]:
        return list(self.class_list)

    @property
    def num_classes(self) -> int:
        return len(self.class_list)

    def stage_loader(self, dataset: Dataset | None, *, shuffle: bool, batch_size: int | None = None,
                     collate_fn: Callable | None = None) -> DataLoader:
        if dataset is None:
            raise RuntimeError("call setup() first")
        return make_loader(dataset, batch_size or self.batch_size, self.num_workers, shuffle=shuffle,
                           collate_fn=collate_fn)

    def train_dataloader(self) -> DataLoader:
        return self.stage_loader(self.train_dataset, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self.stage_loader(self.val_dataset, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self.stage_loader(self.test_dataset, shuffle=False)
