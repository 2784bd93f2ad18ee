"""Image-folder data module for the 2D variants (ResNet-50 + GC / SNL; GCNet,
arXiv 1904.11492, Sec. 5, ImageNet).

``root/{train,val}/<class>/<image>`` with the standard ImageNet transforms (random-resized crop and flip
in train; resize 256 and centre crop 224 in val). Class indices come from ``root/classnames.txt`` or
``class_names_file`` when present, else from the sorted train folders (the ImageNet convention).
Unreadable images: train replaces them (seeded), val gives ``valid=False`` with a zero image.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision.transforms import v2

from gcvideo.data.annotations.video_table import VideoTable
from gcvideo.data.datamodules.base import ClassificationDataModule
from gcvideo.data.datamodules.split_record import SplitRecord
from gcvideo.errors import require_positive

log = logging.getLogger(__name__)
IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".JPEG")


class ImageFolderDataset(Dataset):
    """Items ``{"image": float (C, H, W), "label": int64, "index": int64, "valid": bool}``."""

    def __init__(self, directory: str | Path, class_names: Sequence[str], mode: str, *, crop: int = 224,
                 resize: int = 256, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD,
                 seed: int = 0, max_replacements: int = 20, flip: bool = True) -> None:
        if mode not in ("train", "val"):
            raise ValueError(f"unknown mode {mode!r}; valid: train, val")
        index = {n: i for i, n in enumerate(class_names)}
        self.samples: list[tuple[str, int]] = []
        for folder in sorted(p for p in Path(directory).iterdir() if p.is_dir()):
            if folder.name not in index:
                raise ValueError(f"{directory}: folder {folder.name!r} is not in the class list")
            self.samples += [(str(f), index[folder.name]) for f in sorted(folder.iterdir())
                             if f.suffix in IMAGE_EXTENSIONS]
        self.mode, self.crop, self.seed, self.max_replacements = mode, crop, seed, max_replacements
        flips = [v2.RandomHorizontalFlip()] if flip else []  # off for mirror-image classes
        spatial = ([v2.RandomResizedCrop(crop, antialias=True), *flips] if mode == "train"
                   else [v2.Resize(resize, antialias=True), v2.CenterCrop(crop)])
        self.transform = v2.Compose([v2.ToImage(), *spatial, v2.ToDtype(torch.float32, scale=True),
                                     v2.Normalize(list(mean), list(std))])
        self.bad_images: set[str] = set()

    def __len__(self) -> int:
        return len(self.samples)

    # The multi-view test's view of an image set: every image is one "video" of one view (its ``index``).
    num_videos = property(__len__)
    views_per_video = views_per_item = 1

    @property
    def video_paths(self) -> list[str]:
        return [path for path, _ in self.samples]

    def _load(self, i: int) -> torch.Tensor | None:
        path = self.samples[i][0]
        try:
            with Image.open(path) as image:
                return self.transform(image.convert("RGB"))
        except (OSError, ValueError) as e:
            if path not in self.bad_images:
                self.bad_images.add(path)
                log.warning("unreadable image %s (%s) [%d so far]", path, e, len(self.bad_images))
            return None

    def __getitem__(self, index: int) -> dict:
        i, image = index, self._load(index)
        rng = np.random.default_rng((self.seed, index))
        for _ in range(self.max_replacements if self.mode == "train" else 0):
            if image is not None:
                break
            i = int(rng.integers(len(self)))
            image = self._load(i)
        if image is None and self.mode == "train":
            raise RuntimeError(f"{self.max_replacements + 1} unreadable images in a row from item {index}")
        return {"image": image if image is not None else torch.zeros(3, self.crop, self.crop),
                "label": torch.tensor(self.samples[i][1], dtype=torch.int64),
                "index": torch.tensor(i, dtype=torch.int64), "valid": torch.tensor(image is not None)}


class ImageFolderDataModule(ClassificationDataModule):
    """Train / val loaders of ``root/{train,val}/<class>/`` images; ``num_classes`` needs no setup."""

    def __init__(self, root: str, *, batch_size: int = 32, num_workers: int = 4, train_crop: int = 224,
                 val_resize: int = 256, val_crop: int = 224, class_names_file: str | None = None,
                 train_dir: str = "train", val_dir: str = "val", mean: Sequence[float] = IMAGENET_MEAN,
                 std: Sequence[float] = IMAGENET_STD, seed: int = 0, train_flip: bool = True) -> None:
        super().__init__()
        require_positive("data.init_args.", {"train_crop": train_crop, "val_resize": val_resize, "val_crop": val_crop})
        self.train_flip = train_flip
        self.root, self.batch_size, self.num_workers = Path(root), batch_size, num_workers
        self.train_crop, self.val_resize, self.val_crop = train_crop, val_resize, val_crop
        self.train_dir, self.val_dir, self.mean, self.std, self.seed = train_dir, val_dir, tuple(mean), tuple(std), seed
        names_file = Path(class_names_file) if class_names_file else self.root / "classnames.txt"
        if names_file.is_file():
            self.class_list = [n.strip() for n in names_file.read_text(encoding="utf-8").splitlines() if n.strip()]
        else:
            self.class_list = sorted(p.name for p in (self.root / train_dir).iterdir() if p.is_dir())
        self.train_dataset = self.val_dataset = None
        self.split_records: dict[str, SplitRecord] = {}  # "train", "test": the images read (run records)

    def setup(self, stage: str | None = None) -> None:
        common = dict(mean=self.mean, std=self.std, seed=self.seed)
        if stage in (None, "fit") and self.train_dataset is None:
            self.train_dataset = ImageFolderDataset(self.root / self.train_dir, self.class_list, "train",
                                                    crop=self.train_crop, flip=self.train_flip, **common)
        if stage in (None, "fit", "validate", "test") and self.val_dataset is None:
            self.val_dataset = ImageFolderDataset(self.root / self.val_dir, self.class_list, "val",
                                                  crop=self.val_crop, resize=self.val_resize, **common)
        for split, folder, dataset in (("train", self.train_dir, self.train_dataset),
                                       ("test", self.val_dir, self.val_dataset)):  # test = the val images
            if dataset is not None and split not in self.split_records:
                table = VideoTable(dataset.video_paths, [label for _, label in dataset.samples])
                self.split_records[split] = SplitRecord.build(folder, table, str(self.root / folder),
                                                              self.class_list, "pil")

    @property
    def test_dataset(self) -> ImageFolderDataset | None:
        """The test stage evaluates the validation images (ImageNet's protocol)."""
        return self.val_dataset
