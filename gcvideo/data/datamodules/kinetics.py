"""Lightning data module of Kinetics-style video datasets: the Slow-only ResNet-50 input
of GCNet's Kinetics experiments (arXiv 1904.11492; the recipe of SlowFast arXiv 1812.03982, Sec. 4-5).

The same module reads a real Kinetics-400 copy and the embedded synthetic dataset (``gcvideo synth``):
both have ``annotations/<split>.csv`` in the official layout. ``list_suffix=".clean"`` (or explicit
``train_list``/``val_list``/``test_list``) points it at the lists written by ``gcvideo data check``.
The videos of a split live in a ``VideoTable`` (numpy columns: DataLoader workers share it without
copying); unreadable videos are logged once per run with a total over all processes (``BadVideoLog``).
The manifest that ``gcvideo data check`` writes (``<split>.manifest.csv``) is used when present: each
video's decodable range and the backend that reads it right. Each split's ``SplitRecord`` (the list's
sha256 and the counts of listed, found and unreadable videos) is kept in ``split_records`` for the run's
records (``fit.json``, ``test/results.json``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Sequence

import torch
from lightning.pytorch.utilities import rank_zero_only
from torch.utils.data import DataLoader

from gcvideo.data.annotations import DEFAULT_PATH_PATTERN, FORMATS, load_class_names, resolve_split
from gcvideo.data.annotations.video_table import VideoTable
from gcvideo.data.clips.bad_videos import BadVideoLog
from gcvideo.data.clips.datasets import VideoDataset, VideoFilesDataset, flatten_clips
from gcvideo.data.clips.transforms import KINETICS_MEAN, KINETICS_STD, normalize_batch
from gcvideo.data.datamodules.base import ClassificationDataModule
from gcvideo.data.datamodules.split_record import SplitRecord, check_usable
from gcvideo.data.decoding.decode import check_backend
from gcvideo.data.decoding.manifest import VideoInfoTable, manifest_path
from gcvideo.errors import UserError, require_positive

log = logging.getLogger(__name__)

# What happens to an item whose video cannot be read, by trainer stage (for the bad-video log).
_BAD_VIDEO_ACTIONS = {"train": "replaced by another video in training", "validate": "left out of validation",
                      "sanity_check": "left out of validation", "test": "left out of the test (counted as missing)",
                      "predict": "written with valid=false"}


class KineticsDataModule(ClassificationDataModule):
    """Train / val / test / predict loaders of clips; ``num_classes`` and ``class_names`` need no setup.

    Args:
        root: dataset folder (``annotations/``, ``videos/``, optional ``classnames.txt``).
        frames, stride: frames per clip and the step between them (8 x 8 in the paper).
        train_short_side: (lo, hi) short-side jitter; train_crop: random crop size.
        val_short_side, val_crop: centre view of validation.
        test_short_side, test_crop, test_clips, test_crops: the multi-view test (10 x 3 of 256).
        decoder: "auto" (per file: the backend its ``gcvideo data check`` manifest row names, else PyAV
            seeking by timestamp, which is exact on every file), or another ``gcvideo.data.decoding.Decoder``
            name for every file.
        target_fps: sample clips by time at this rate (PySlowFast's TARGET_FPS: 30), so 8x8 covers the same
            seconds at any frame rate; None samples by frame index.
        manifest_dir: folder of the ``<split>.manifest.csv`` written by ``gcvideo data check --out``
            (default: next to the list file, else ``root/annotations``; used when present).
        annotation_format: "auto", "kinetics", "list" or "folders" (``gcvideo.data.annotations.formats``).
        class_names_file: class list (default ``root/classnames.txt``; without one, the Kinetics-400 list if
            the labels are all Kinetics-400 classes, else an error saying the class list is missing).
        list_suffix: read ``annotations/<split><list_suffix>.csv`` (e.g. ".clean").
        predict_paths: video files for ``predict`` (test-style views, label -1).
        predict_clips, predict_crops: views per predicted video.
        train_flip: random horizontal flip in training (off for classes that are mirror images).
        uint8_batches: training batches travel as uint8 and are normalised on the device
            (``on_after_batch_transfer``): 4x fewer bytes to collate, pin and copy. Validation, test and
            predict batches, and the datasets read directly, stay normalised float32.
        clips_per_video: training clips cut from one decoding pass over a video (k random windows, each
            with its own augmentation; PySlowFast's TRAIN_CROP_NUM_TEMPORAL). ``batch_size`` still counts
            clips per step (so the lr scaling rule is unchanged) and must be a multiple of k; an epoch
            still visits every video once, so it holds k times as many clips and steps: divide
            ``max_epochs``, the warm-up and the schedule's epochs by k to keep the recipe's clips seen.
            Opt-in: the paper's recipe is 1.
        max_missing: refuse to train when a larger fraction of the listed training videos is known
            unusable (no file, or ``bad`` in the manifest); None: no limit (above 5 % a warning).
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
                 train_flip: bool = True, uint8_batches: bool = True, clips_per_video: int = 1,
                 target_fps: float | None = 30.0, manifest_dir: str | None = None,
                 max_missing: float | None = None) -> None:
        super().__init__()
        # checked here, when the command line builds the module: one line naming the option, not a traceback
        # from inside the dataset once training has started
        sizes = {"frames": frames, "stride": stride, "train_crop": train_crop, "val_crop": val_crop,
                 "test_crop": test_crop, "test_clips": test_clips, "test_crops": test_crops,
                 "predict_clips": predict_clips, "predict_crops": predict_crops, "val_short_side": val_short_side,
                 "test_short_side": test_short_side, "train_short_side": min(train_short_side)}
        require_positive("data.init_args.", sizes)
        if clips_per_video < 1 or batch_size % clips_per_video:
            raise UserError(f"data.batch_size ({batch_size} clips per step) must be a multiple of "
                            f"data.clips_per_video ({clips_per_video})")
        if max_missing is not None and not 0 <= max_missing <= 1:
            raise UserError(f"data.init_args.max_missing must be a fraction in [0, 1], got {max_missing}")
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
        self.uint8_batches, self.clips_per_video = uint8_batches, clips_per_video
        self.class_list = load_class_names(root, class_names_file, splits=tuple(self.splits.values()),
                                             list_files=tuple(self.lists.values()))
        self.target_fps, self.manifest_dir, self.max_missing = target_fps, manifest_dir, max_missing
        self.sources: dict[str, str] = {}  # stage -> the list file or folder read
        self.split_records: dict[str, SplitRecord] = {}
        self.train_dataset = self.val_dataset = self.test_dataset = self.predict_dataset = None
        self.bad_videos = BadVideoLog()
        self._bad_videos_epoch: int | None = None

    def records(self, stage: str) -> VideoTable:
        """Annotated videos of "train", "val" or "test" (a ``VideoTable``; ``list(...)`` gives records)."""
        table, _, source = resolve_split(self.root, self.splits[stage], self.class_list,
                                         annotation_format=self.annotation_format, list_file=self.lists[stage],
                                         list_suffix=self.list_suffix, path_pattern=self.path_pattern)
        self.sources[stage] = source
        found = table.columns.get("file_found")
        if found is not None and not found.all() and rank_zero_only.rank == 0:
            first = table.path(int((~found).argmax()))
            log.warning("%s: %d of %d rows have no video file (with any video extension; e.g. %s); they count as "
                        "unreadable: `gcvideo data check --root %s --split %s` writes a list without them",
                        source, int((~found).sum()), len(table), first, self.root, self.splits[stage])
        return table

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
        infos = self.video_infos(stage, list(records.paths))
        common = dict(frames=self.frames, stride=self.stride, decoder=self.decoder, mean=self.mean, std=self.std,
                      target_fps=self.target_fps, video_infos=infos)
        record = SplitRecord.build(self.splits[stage], records, self.sources[stage], self.class_list, self.decoder,
                                   infos)
        self.split_records[stage] = record
        if stage == "train":
            check_usable(record, self.max_missing, warn=rank_zero_only.rank == 0)  # every process refuses
            return VideoDataset(records, "train", short_side=self.train_short_side,
                                crop=self.train_crop, seed=self.seed, flip=self.train_flip,
                                output="uint8" if self.uint8_batches else "float",
                                clips_per_video=self.clips_per_video, **common)
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

    # --- unreadable videos: once per run (gcvideo.data.clips.bad_videos) ----------------------------------------
    def on_before_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Take the workers' failure reports out of the batch and log each new bad video once per run."""
        if not isinstance(batch, dict):
            return batch
        trainer = self.trainer
        stage = trainer.state.stage.value if trainer is not None and trainer.state.stage is not None else None
        if trainer is not None and trainer.training and trainer.current_epoch != self._bad_videos_epoch:
            if self._bad_videos_epoch is not None:  # every rank is at its first batch of a new epoch
                self.bad_videos.sync(f"after epoch {self._bad_videos_epoch}")
            self._bad_videos_epoch = trainer.current_epoch
        self.bad_videos.note_batch(batch, _BAD_VIDEO_ACTIONS.get(stage, "left out"))
        return batch

    def teardown(self, stage: str) -> None:
        """At the end of fit, validate, test and predict: the run's bad videos over all processes."""
        self.bad_videos.sync(f"end of {getattr(stage, 'value', stage)}", final=True)  # stage: a TrainerFn
        self._bad_videos_epoch = None

    def train_dataloader(self) -> DataLoader:
        if self.clips_per_video == 1:
            return self.stage_loader(self.train_dataset, shuffle=True)
        return self.stage_loader(self.train_dataset, shuffle=True, batch_size=self.batch_size // self.clips_per_video,
                                 collate_fn=flatten_clips)

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Normalise uint8 clips where they arrived (the GPU): the one place uint8 batches become inputs."""
        video = batch.get("video") if isinstance(batch, dict) else None
        if isinstance(video, torch.Tensor) and video.dtype == torch.uint8:
            batch = {**batch, "video": normalize_batch(video, self.mean, self.std)}
        return batch

    def predict_dataloader(self) -> DataLoader:
        if self.predict_dataset is None:
            raise RuntimeError("give data.init_args.predict_paths for predict")
        return self.stage_loader(self.predict_dataset, shuffle=False)
