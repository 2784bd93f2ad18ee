"""Lightning data module of Kinetics-style video datasets (issue 3; PAPER.md "Slow-only ResNet-50").

The same module reads a real Kinetics-400 copy and the embedded synthetic dataset (``gcvideo synth``):
both have ``annotations/<split>.csv`` in the official layout. ``list_suffix=".clean"`` (or explicit
``train_list``/``val_list``/``test_list``) points it at the lists written by ``gcvideo data check``; the
manifest that command writes next to them (``<split>.manifest.csv``) is used when present.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Sequence

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset

from gcvideo.data.annotations import DEFAULT_PATH_PATTERN, FORMATS, load_class_names, resolve_split
from gcvideo.data.decoding import check_backend
from gcvideo.data.manifest import VideoInfoTable, manifest_path
from gcvideo.data.transforms import KINETICS_MEAN, KINETICS_STD
from gcvideo.data.video_dataset import VideoDataset, VideoFilesDataset

log = logging.getLogger(__name__)


def make_loader(dataset: Dataset, batch_size: int, num_workers: int, *, shuffle: bool) -> DataLoader:
    """The loader both data modules use: training shuffles and drops the last partial batch; workers
    persist between epochs; memory is pinned only when a GPU will read it."""
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, drop_last=shuffle,
                      num_workers=num_workers, persistent_workers=num_workers > 0,
                      pin_memory=torch.cuda.is_available())


class KineticsDataModule(L.LightningDataModule):
    """Train / val / test / predict loaders of clips; ``num_classes`` and ``class_names`` need no setup.

    Args:
        root: dataset folder (``annotations/``, ``videos/``, optional ``classnames.txt``).
        frames, stride: frames per clip and the step between them (8 x 8 in the paper).
        train_short_side: (lo, hi) short-side jitter; train_crop: random crop size.
        val_short_side, val_crop: centre view of validation.
        test_short_side, test_crop, test_clips, test_crops: the multi-view test (10 x 3 of 256).
        decoder: "auto" (per file: decord where it reads the file right, else an exact backend), or one of
            "decord", "torchcodec", "pyav", "pyav_sequential" for every file.
        target_fps: sample clips by time at this rate (PySlowFast's TARGET_FPS: 30), so 8x8 covers the same
            seconds at any frame rate; None samples by frame index.
        manifest_dir: folder of the ``<split>.manifest.csv`` written by ``gcvideo data check --out``
            (default: next to the list file, else ``root/annotations``; used when present).
        annotation_format: "auto", "kinetics", "list" or "folders" (``gcvideo.data.annotations``).
        class_names_file: class list (default ``root/classnames.txt``, else the Kinetics-400 list).
        list_suffix: read ``annotations/<split><list_suffix>.csv`` (e.g. ".clean").
        predict_paths: video files for ``predict`` (test-style views, label -1).
        predict_clips, predict_crops: views per predicted video.
        train_flip: random horizontal flip in training (off for classes that are mirror images).
    """

    def __init__(self, root: str, *, frames: int = 8, stride: int = 8, batch_size: int = 8, num_workers: int = 4,
                 train_crop: int = 224, train_short_side: tuple[int, int] = (256, 320), val_short_side: int = 256,
                 val_crop: int = 224, test_short_side: int = 256, test_crop: int = 256, test_clips: int = 10,
                 test_crops: int = 3, decoder: str = "auto", annotation_format: str = "auto",
                 class_names_file: str | None = None, train_split: str = "train", val_split: str = "val",
                 test_split: str = "test", train_list: str | None = None, val_list: str | None = None,
                 test_list: str | None = None, list_suffix: str = "", path_pattern: str = DEFAULT_PATH_PATTERN,
                 predict_paths: list[str] | None = None, predict_clips: int = 1, predict_crops: int = 1,
                 mean: Sequence[float] = KINETICS_MEAN, std: Sequence[float] = KINETICS_STD, seed: int = 0,
                 train_flip: bool = True, target_fps: float | None = 30.0, manifest_dir: str | None = None) -> None:
        super().__init__()
        if annotation_format not in FORMATS:
            raise ValueError(f"unknown annotation_format {annotation_format!r}; valid: {', '.join(FORMATS)}")
        check_backend(decoder)
        self.root, self.frames, self.stride = root, frames, stride
        self.batch_size, self.num_workers = batch_size, num_workers
        self.train_crop, self.train_short_side = train_crop, tuple(train_short_side)
        self.val_short_side, self.val_crop = val_short_side, val_crop
        self.test_short_side, self.test_crop = test_short_side, test_crop
        self.test_clips, self.test_crops = test_clips, test_crops
        self.decoder, self.annotation_format, self.seed = decoder, annotation_format, seed
        self.splits = {"train": train_split, "val": val_split, "test": test_split}
        self.lists = {"train": train_list, "val": val_list, "test": test_list}
        self.list_suffix, self.path_pattern = list_suffix, path_pattern
        self.predict_paths, self.predict_clips, self.predict_crops = predict_paths, predict_clips, predict_crops
        self.mean, self.std = tuple(mean), tuple(std)
        self.train_flip = train_flip
        self.target_fps, self.manifest_dir = target_fps, manifest_dir
        self._class_names = load_class_names(root, class_names_file)
        self.train_dataset = self.val_dataset = self.test_dataset = self.predict_dataset = None

    @property
    def class_names(self) -> list[str]:
        return list(self._class_names)

    @property
    def num_classes(self) -> int:
        return len(self._class_names)

    def records(self, stage: str) -> list:
        """Annotated videos of "train", "val" or "test"."""
        records, _, _ = resolve_split(self.root, self.splits[stage], self._class_names,
                                      annotation_format=self.annotation_format, list_file=self.lists[stage],
                                      list_suffix=self.list_suffix, path_pattern=self.path_pattern)
        return records

    def video_infos(self, stage: str, video_paths: Sequence[str]) -> VideoInfoTable | None:
        """The manifest rows of a stage's videos (``gcvideo data check``), or None without a manifest."""
        split = self.splits[stage]
        folders = [self.manifest_dir] if self.manifest_dir else []
        folders += [Path(self.lists[stage]).parent] if self.lists[stage] else []
        folders.append(Path(self.root) / "annotations")
        found = next((manifest_path(d, split) for d in folders if manifest_path(d, split).is_file()), None)
        if found is None:
            return None
        table = VideoInfoTable.from_manifest(found, self.root, video_paths)
        log.info("%s: manifest %s covers %d of %d videos", stage, found, table.found, len(video_paths))
        return table

    def _dataset(self, stage: str) -> VideoDataset:
        records = self.records(stage)
        common = dict(frames=self.frames, stride=self.stride, decoder=self.decoder, mean=self.mean, std=self.std,
                      target_fps=self.target_fps, video_infos=self.video_infos(stage, [r.path for r in records]))
        if stage == "train":
            return VideoDataset(records, "train", short_side=self.train_short_side,
                                crop=self.train_crop, seed=self.seed, flip=self.train_flip, **common)
        if stage == "val":
            return VideoDataset(records, "val", short_side=self.val_short_side, crop=self.val_crop, **common)
        return VideoDataset(records, "test", short_side=self.test_short_side, crop=self.test_crop,
                            clips=self.test_clips, crops=self.test_crops, **common)

    def setup(self, stage: str | None = None) -> None:
        if stage in (None, "fit") and self.train_dataset is None:
            self.train_dataset = self._dataset("train")
        if stage in (None, "fit", "validate") and self.val_dataset is None:
            self.val_dataset = self._dataset("val")
        if stage in (None, "test") and self.test_dataset is None:
            self.test_dataset = self._dataset("test")
        if stage in (None, "predict") and self.predict_dataset is None and self.predict_paths:
            self.predict_dataset = VideoFilesDataset(
                self.predict_paths, frames=self.frames, stride=self.stride, short_side=self.test_short_side,
                crop=self.test_crop, clips=self.predict_clips, crops=self.predict_crops, decoder=self.decoder,
                mean=self.mean, std=self.std, target_fps=self.target_fps)

    def _loader(self, dataset, shuffle: bool) -> DataLoader:
        if dataset is None:
            raise RuntimeError("call setup() first (or give predict_paths for predict)")
        return make_loader(dataset, self.batch_size, self.num_workers, shuffle=shuffle)

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_dataset, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_dataset, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_dataset, shuffle=False)

    def predict_dataloader(self) -> DataLoader:
        return self._loader(self.predict_dataset, shuffle=False)
