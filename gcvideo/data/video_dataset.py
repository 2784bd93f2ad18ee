"""Map-style Kinetics clip datasets: train / val / test views and bad-video tolerance (issue 3).

- train: a random window of ``frames`` frames every ``stride`` frames; a video that cannot be read is
  replaced by another one (a fixed choice seeded by ``seed`` and the index), logged once and counted.
- val: the centre window, one view; test: ``clips`` windows spaced uniformly from the first to the last
  possible start, times ``crops`` crops along the long side, one item per view, ordered as
  ``index = video_index * (clips * crops) + clip_index * crops + crop_index``.
  An unreadable video gives items with ``valid=False`` and a zero ``video`` of the right shape.
A window longer than the video repeats the video's last frame (indices are clamped, as PySlowFast does);
use ``gcvideo data check --min-frames`` to drop such videos instead. With ``target_fps``, windows are
placed and sampled by time (``gcvideo.data.clip_sampling``); ``video_infos`` (a manifest of
``gcvideo data check``) gives each video's decodable range and backend (``gcvideo.data.decoding``).
"""

from __future__ import annotations

import logging
import os
from typing import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from gcvideo.data.annotations import VideoRecord
from gcvideo.data.clip_sampling import clip_indices, sampling_length, window_start
from gcvideo.data.decoding import DecodeError, check_backend, decode_frames
from gcvideo.data.transforms import (KINETICS_MEAN, KINETICS_STD, MODES, frames_to_video, long_side_crop,
                                     normalize, resize_short_side, short_side_range, spatial_transform)
from gcvideo.data.video_info import VideoInfo

log = logging.getLogger(__name__)


class VideoDataset(Dataset):
    """Clips of annotated videos; items are dicts (see the module docstring and contracts).

    Args:
        records: the videos and labels (``gcvideo.data.annotations``).
        mode: "train", "val" or "test".
        short_side: an int, or a (lo, hi) range jittered in train.
        clips, crops: test views per video (val and train use one).
        flip: random horizontal flip in train mode (off for mirror-image classes).
        decoder: "auto" (the backend that reads each file right) or a backend name.
        target_fps: sample clips by time at this rate (30 for Kinetics, as PySlowFast); None: by frame index.
        video_infos: per-video ``VideoInfo`` or None, indexable by video index (a manifest's
            ``VideoInfoTable``): decodable range, backend and rotation without probing the file.
    """

    def __init__(self, records: Sequence[VideoRecord], mode: str, *, frames: int = 8, stride: int = 8,
                 short_side: int | Sequence[int] = 256, crop: int = 224, clips: int = 10, crops: int = 3,
                 decoder: str = "auto", mean: Sequence[float] = KINETICS_MEAN,
                 std: Sequence[float] = KINETICS_STD, seed: int = 0, max_replacements: int = 20,
                 flip: bool = True, target_fps: float | None = None,
                 video_infos: Sequence[VideoInfo | None] | None = None) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; valid: {', '.join(MODES)}")
        if frames < 1 or stride < 1 or crop < 1 or clips < 1 or crops < 1:
            raise ValueError("frames, stride, crop, clips and crops must be >= 1")
        if target_fps is not None and target_fps <= 0:
            raise ValueError(f"target_fps must be > 0 (or None to sample by frame index), got {target_fps}")
        self.records = list(records)
        self.mode, self.frames, self.stride, self.crop = mode, frames, stride, crop
        self.short_side = short_side_range(short_side)
        self.clips, self.crops = (clips, crops) if mode == "test" else (1, 1)
        self.decoder, self.target_fps, self.video_infos = check_backend(decoder), target_fps, video_infos
        self.mean, self.std, self.seed, self.max_replacements = tuple(mean), tuple(std), seed, max_replacements
        self.spatial = spatial_transform(mode, self.short_side, crop, flip=flip) if mode != "test" else None
        self.bad_videos: dict[str, str] = {}  # path -> reason, in this process
        self._cache: tuple[tuple[int, int], torch.Tensor] | None = None  # test: last resized window

    @property
    def num_videos(self) -> int:
        return len(self.records)

    @property
    def views_per_video(self) -> int:
        return self.clips * self.crops

    @property
    def video_paths(self) -> list[str]:
        return [r.path for r in self.records]

    def __len__(self) -> int:
        return self.num_videos * self.views_per_video

    def video_info(self, video_index: int) -> VideoInfo | None:
        """What the manifest knows about a video (None: the decoder looks at the file itself)."""
        return None if self.video_infos is None else self.video_infos[video_index]

    def _indices(self, clip_index: int):
        span = (self.frames - 1) * self.stride + 1

        def select(count: int) -> np.ndarray:
            n = sampling_length(count, self.target_fps)  # frames, or 1/target_fps slots when by time
            if self.mode == "train":
                start = int(torch.randint(0, max(n - span, 0) + 1, ()).item())
            else:
                start = window_start(n, span, clip_index, self.clips)
            return clip_indices(count, start, self.frames, self.stride, self.target_fps)

        return select

    def _note_bad(self, error: DecodeError) -> None:
        if error.path not in self.bad_videos:
            self.bad_videos[error.path] = error.reason
            action = "replaced by another video" if self.mode == "train" else "excluded (valid=False)"
            log.warning("unreadable video %s, %s: %s [%d unreadable in this %s dataset so far]",
                        error.path, action, error, len(self.bad_videos), self.mode)

    def _clip(self, video_index: int, clip_index: int, crop_index: int) -> torch.Tensor:
        path = self.records[video_index].path
        if path in self.bad_videos:  # known bad in this process: the other 29 test views need no second try
            raise DecodeError(path, self.bad_videos[path], "failed before")
        info = self.video_info(video_index)
        if self.mode != "test":
            frames = decode_frames(path, self._indices(clip_index), self.decoder, info)
            return normalize(self.spatial(frames_to_video(frames)), self.mean, self.std)
        key = (video_index, clip_index)
        if self._cache is None or self._cache[0] != key:  # the crops of one window share one decode+resize
            frames = decode_frames(path, self._indices(clip_index), self.decoder, info)
            self._cache = key, resize_short_side(frames_to_video(frames), self.short_side[0])
        return normalize(long_side_crop(self._cache[1], self.crop, crop_index, self.crops), self.mean, self.std)

    def _item(self, video_index: int, clip_index: int, crop_index: int, video: torch.Tensor | None) -> dict:
        item = {"video": video if video is not None else torch.zeros(3, self.frames, self.crop, self.crop),
                "label": torch.tensor(self.records[video_index].label, dtype=torch.int64),
                "video_index": torch.tensor(video_index, dtype=torch.int64),
                "valid": torch.tensor(video is not None)}
        if self.mode == "test":
            item["clip_index"] = torch.tensor(clip_index, dtype=torch.int64)
            item["crop_index"] = torch.tensor(crop_index, dtype=torch.int64)
        return item

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items")
        video_index, view = divmod(index, self.views_per_video)
        clip_index, crop_index = divmod(view, self.crops)
        if self.mode != "train":
            try:
                return self._item(video_index, clip_index, crop_index, self._clip(video_index, clip_index, crop_index))
            except DecodeError as e:
                self._note_bad(e)
                return self._item(video_index, clip_index, crop_index, None)
        rng = np.random.default_rng((self.seed, index))
        for _ in range(self.max_replacements + 1):
            try:
                return self._item(video_index, 0, 0, self._clip(video_index, 0, 0))
            except DecodeError as e:
                self._note_bad(e)
                video_index = int(rng.integers(self.num_videos))
        raise RuntimeError(f"{self.max_replacements + 1} unreadable videos in a row from item {index}: "
                           f"run `gcvideo data check` and train on the clean list")


class VideoFilesDataset(VideoDataset):
    """Test-style views of a list of video files (for predict): items as test items with label -1."""

    def __init__(self, paths: Sequence[str | os.PathLike], *, frames: int = 8, stride: int = 8,
                 short_side: int = 256, crop: int = 256, clips: int = 1, crops: int = 1,
                 decoder: str = "auto", mean: Sequence[float] = KINETICS_MEAN,
                 std: Sequence[float] = KINETICS_STD, target_fps: float | None = None) -> None:
        super().__init__([VideoRecord(os.fspath(p), -1) for p in paths], "test", frames=frames, stride=stride,
                         short_side=short_side, crop=crop, clips=clips, crops=crops, decoder=decoder,
                         mean=mean, std=std, target_fps=target_fps)
