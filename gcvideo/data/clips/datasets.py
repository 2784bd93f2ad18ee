"""Map-style Kinetics clip datasets: train / val / test items and bad-video tolerance.

- train: a random window of ``frames`` frames every ``stride`` frames; a video that cannot be read is
  replaced by another one (a fixed choice seeded by ``seed`` and the index).
- val: the centre window, one view.
- test: ``clips`` windows spaced uniformly from the first to the last possible start; one item per
  window carries all its ``crops`` crops along the long side, stacked: ``video`` is (crops, C, T, H, W)
  and ``index = video_index * clips + clip_index``. Each window is therefore decoded once for its crops,
  whatever the number of processes and workers (with one item per view, a distributed sampler would
  send the views of a window to different ranks, each decoding it again). View ``clip_index * crops + k``
  is crop ``k`` of the item. An unreadable video gives items with ``valid=False`` and a zero ``video`` of the right shape.
Every item has a ``bad_videos`` string: "" or the videos that failed for it
(``gcvideo.data.clips.bad_videos``), which the data module logs once per run; the dataset itself does not
log them (each worker would).
A window longer than the video repeats the video's last frame (indices are clamped, as PySlowFast does);
use ``gcvideo data check --min-frames`` to drop such videos instead. With ``target_fps``, windows are
placed and sampled by time (``gcvideo.data.clips.sampling``); ``video_infos`` (a manifest of
``gcvideo data check``) gives each video's decodable range and backend (``gcvideo.data.decoding.decode``).

Output stage: ``output="float"`` gives normalised float32 clips (C, T, H, W); ``output="uint8"``
gives the same clips as uint8 (C, T, H, W), 4x fewer bytes to collate and copy, to be normalised where
they are used (``gcvideo.data.clips.transforms.normalize_batch``, on the GPU in ``KineticsDataModule``).
``clips_per_video=k`` (train only, opt-in) cuts k independent random windows, each with its own spatial
augmentation, from one decoding pass over the video (windows that overlap or share a keyframe are
decoded once): a train item then has ``video`` (k, C, T, H, W) and ``label``, ``video_index``, ``valid``
of shape (k,); ``flatten_clips`` collates such items into an ordinary batch of clips.
The videos are held in a ``VideoTable`` (numpy columns), which DataLoader workers share without copying.
"""

from __future__ import annotations

import logging
import os
from typing import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset, default_collate

from gcvideo.data.annotations.video_table import VideoRecord, VideoTable
from gcvideo.data.clips.bad_videos import FAILURE_KEY, encode_failures
from gcvideo.data.clips.sampling import clip_indices, sampling_length, window_start
from gcvideo.data.clips.transforms import (
    KINETICS_MEAN,
    KINETICS_STD,
    MODES,
    OUTPUTS,
    frames_to_video,
    long_side_crop,
    normalize,
    resize_short_side,
    short_side_range,
    spatial_transform,
    to_uint8_clip,
)
from gcvideo.data.decoding.decode import DecodeError, check_backend, decode_frames
from gcvideo.data.decoding.video_info import VideoInfo

log = logging.getLogger(__name__)


class VideoDataset(Dataset):
    """Clips of annotated videos; items are dicts (see the module docstring and contracts).

    Args:
        records: the videos and labels: a ``VideoTable`` (``gcvideo.data.annotations.formats``), or records
            (turned into one).
        mode: "train", "val" or "test".
        short_side: an int, or a (lo, hi) range jittered in train.
        clips, crops: test windows per video and crops per window (val and train use one).
        flip: random horizontal flip in train mode (off for mirror-image classes).
        output: "float" (normalised float32) or "uint8" (normalise later, e.g. on the GPU).
        clips_per_video: train clips cut from one decoding pass (see the module docstring).
        decoder: "auto" (the backend that reads each file right) or a backend name.
        target_fps: sample clips by time at this rate (30 for Kinetics, as PySlowFast); None: by frame index.
        video_infos: per-video ``VideoInfo`` or None, indexable by video index (a manifest's
            ``VideoInfoTable``): decodable range, backend and rotation without probing the file.
    """

    def __init__(self, records: VideoTable | Sequence[VideoRecord], mode: str, *, frames: int = 8, stride: int = 8,
                 short_side: int | Sequence[int] = 256, crop: int = 224, clips: int = 10, crops: int = 3,
                 decoder: str = "auto", mean: Sequence[float] = KINETICS_MEAN,
                 std: Sequence[float] = KINETICS_STD, seed: int = 0, max_replacements: int = 20,
                 flip: bool = True, output: str = "float", clips_per_video: int = 1,
                 target_fps: float | None = None, video_infos: Sequence[VideoInfo | None] | None = None) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; valid: {', '.join(MODES)}")
        if output not in OUTPUTS:
            raise ValueError(f"unknown output {output!r}; valid: {', '.join(OUTPUTS)}")
        if clips_per_video < 1 or (clips_per_video > 1 and mode != "train"):
            raise ValueError(f"clips_per_video must be >= 1, and 1 outside training; got {clips_per_video} ({mode})")
        self.output, self.clips_per_video = output, clips_per_video
        if frames < 1 or stride < 1 or crop < 1 or clips < 1 or crops < 1:
            raise ValueError("frames, stride, crop, clips and crops must be >= 1")
        if target_fps is not None and target_fps <= 0:
            raise ValueError(f"target_fps must be > 0 (or None to sample by frame index), got {target_fps}")
        table = records if isinstance(records, VideoTable) else VideoTable.from_records(records)
        self.table = VideoTable(table.paths, table.labels, columns=table.columns)  # source rows not needed
        self.mode, self.frames, self.stride, self.crop = mode, frames, stride, crop
        self.short_side = short_side_range(short_side)
        self.clips, self.crops = (clips, crops) if mode == "test" else (1, 1)
        self.decoder, self.target_fps, self.video_infos = check_backend(decoder), target_fps, video_infos
        self.mean, self.std, self.seed, self.max_replacements = tuple(mean), tuple(std), seed, max_replacements
        self.spatial = spatial_transform(mode, self.short_side, crop, flip=flip) if mode != "test" else None
        self.bad_videos: dict[str, str] = {}  # path -> reason, met by this process (not tried again)

    @property
    def records(self) -> VideoTable:
        return self.table

    @property
    def num_videos(self) -> int:
        return len(self.table)

    @property
    def items_per_video(self) -> int:
        """Items per video: its test windows (one item per window), else 1."""
        return self.clips

    @property
    def views_per_item(self) -> int:
        """Views carried by one item: the crops of a test window, else 1."""
        return self.crops

    @property
    def views_per_video(self) -> int:
        return self.clips * self.crops

    @property
    def video_paths(self) -> list[str]:
        return list(self.table.paths)

    def __len__(self) -> int:
        return self.num_videos * self.items_per_video

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

    def _note_bad(self, error: DecodeError) -> tuple[str, str]:
        """Remember a bad video in this process; returns (path, reason) for the item to carry."""
        reason = self.bad_videos.setdefault(error.path, f"{error.reason} ({error.detail})" if error.detail
                                            else error.reason)
        log.debug("unreadable video %s: %s", error.path, reason)
        return error.path, reason

    def _clip(self, video_index: int, clip_index: int) -> torch.Tensor:
        """Train/val: the clip (C, T, H, W), or k clips (k, C, T, H, W); test: the window's crops
        (crops, C, T, H, W)."""
        path = self.table.path(video_index)
        if path in self.bad_videos:  # known bad in this process: its other windows need no second try
            raise DecodeError(path, self.bad_videos[path])
        info = self.video_info(video_index)
        select = self._indices(clip_index)
        if self.clips_per_video > 1:  # train: a new random window at every call of the selector
            one = select
            select = lambda n: np.concatenate([one(n) for _ in range(self.clips_per_video)])  # noqa: E731
        frames = decode_frames(path, select, self.decoder, info)
        if self.mode != "test":
            clips = [self._output(self.spatial(frames_to_video(clip))) for clip in frames.split(self.frames)]
            return clips[0] if self.clips_per_video == 1 else torch.stack(clips)
        window = resize_short_side(frames_to_video(frames), self.short_side[0])  # one resize for all crops
        return torch.stack([normalize(long_side_crop(window, self.crop, k, self.crops), self.mean, self.std)
                            for k in range(self.crops)])

    def _output(self, video: torch.Tensor) -> torch.Tensor:
        """The output stage: uint8 (T, C, H, W) -> (C, T, H, W), normalised float32 or uint8."""
        return normalize(video, self.mean, self.std) if self.output == "float" else to_uint8_clip(video)

    def _item(self, video_index: int, clip_index: int, video: torch.Tensor | None,
              failures: Sequence[tuple[str, str]] = ()) -> dict:
        shape = (3, self.frames, self.crop, self.crop)
        if self.mode == "test":
            shape = (self.crops, *shape)
        item = {"video": video if video is not None else torch.zeros(shape),
                "label": torch.tensor(self.table.label(video_index), dtype=torch.int64),
                "video_index": torch.tensor(video_index, dtype=torch.int64),
                "valid": torch.tensor(video is not None),
                FAILURE_KEY: encode_failures(failures)}
        if self.mode == "test":
            item["clip_index"] = torch.tensor(clip_index, dtype=torch.int64)
        return item

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items")
        video_index, clip_index = divmod(index, self.items_per_video)
        if self.mode != "train":
            try:
                return self._item(video_index, clip_index, self._clip(video_index, clip_index))
            except DecodeError as e:
                return self._item(video_index, clip_index, None, [self._note_bad(e)])
        rng = np.random.default_rng((self.seed, index))
        failures = []
        for _ in range(self.max_replacements + 1):
            try:
                if self.clips_per_video == 1:
                    return self._item(video_index, 0, self._clip(video_index, 0), failures)
                clips = self._clip(video_index, 0)  # (k, C, T, H, W): k clips of one video
                item = self._item(video_index, 0, clips[0], failures)
                item = {key: value.expand(len(clips)).clone() if isinstance(value, torch.Tensor) else value
                        for key, value in item.items() if key != "video"}  # label, video_index, valid per clip
                return {**item, "video": clips}
            except DecodeError as e:
                failures.append(self._note_bad(e))
                video_index = int(rng.integers(self.num_videos))
        raise RuntimeError(f"{self.max_replacements + 1} unreadable videos in a row from item {index}: "
                           f"run `gcvideo data check` and train on the clean list")


def flatten_clips(items: list[dict]) -> dict:
    """Collate train items of ``clips_per_video`` clips each into one batch of clips (B * k, ...); the
    per-video ``bad_videos`` strings stay one per item."""
    return {key: value.flatten(0, 1) if isinstance(value, torch.Tensor) else value
            for key, value in default_collate(items).items()}


class VideoFilesDataset(VideoDataset):
    """Test-style items of a list of video files (for predict): one item per window with all its crops,
    label -1."""

    def __init__(self, paths: Sequence[str | os.PathLike], *, frames: int = 8, stride: int = 8,
                 short_side: int = 256, crop: int = 256, clips: int = 1, crops: int = 1,
                 decoder: str = "auto", mean: Sequence[float] = KINETICS_MEAN,
                 std: Sequence[float] = KINETICS_STD, target_fps: float | None = None) -> None:
        paths = [os.fspath(p) for p in paths]
        super().__init__(VideoTable(paths, np.full(len(paths), -1)), "test", frames=frames, stride=stride,
                         short_side=short_side, crop=crop, clips=clips, crops=crops, decoder=decoder,
                         mean=mean, std=std, target_fps=target_fps)
