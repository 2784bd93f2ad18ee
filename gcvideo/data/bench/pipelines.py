"""``gcvideo data bench``: clips per second of the clip pipelines, per worker.

Measured in one process with one thread (what one DataLoader worker does): the train and val pipelines
with each backend (normalised float32 clips, one clip per decoded video; ``--mode training`` in
``gcvideo.data.bench.workers`` measures the training pipeline's speed-ups), a floor (PyAV decoding the
same val frames, no transforms), and pytorchvideo's ``EncodedVideo`` (PyAV) cutting the same centre clip
followed by the same resize/crop/normalisation.
"""

from __future__ import annotations

import time
from typing import Callable

import numpy as np
import torch
from torchvision.transforms import v2

from gcvideo.data.annotations import load_class_names, resolve_split
from gcvideo.data.clips.datasets import VideoDataset, window_start
from gcvideo.data.clips.transforms import KINETICS_MEAN, KINETICS_STD
from gcvideo.data.decoding.decode import decode_frames


def _rate(fn: Callable[[int], object], n: int) -> float:
    fn(0)  # warm-up (imports, first open)
    start = time.perf_counter()
    for i in range(n):
        fn(i)
    return n / (time.perf_counter() - start)


def _pytorchvideo_clip(path: str, frames: int, stride: int, resize: v2.Transform) -> torch.Tensor:
    from pytorchvideo.data.encoded_video import EncodedVideo

    video = EncodedVideo.from_path(path, decode_audio=False, decoder="pyav")
    fps = float(video._container.streams.video[0].average_rate)  # noqa: SLF001  (no public fps)
    n = int(round(float(video.duration) * fps))
    span = (frames - 1) * stride + 1
    start = window_start(n, span, 0, 1)
    clip = video.get_clip(start / fps, (start + span) / fps)["video"]  # (C, T, H, W) float 0..255
    video.close()
    clip = clip[:, ::stride][:, :frames].permute(1, 0, 2, 3)  # (T, C, H, W)
    clip = resize(clip) / 255.0
    mean = torch.tensor(KINETICS_MEAN).view(1, -1, 1, 1)
    std = torch.tensor(KINETICS_STD).view(1, -1, 1, 1)
    return ((clip - mean) / std).permute(1, 0, 2, 3)


def bench(root: str, split: str = "val", clips: int = 20, *, frames: int = 8, stride: int = 8,
          train_short_side: tuple[int, int] = (256, 320), train_crop: int = 224, val_short_side: int = 256,
          val_crop: int = 224) -> dict[str, float]:
    """Clips/s of each pipeline on the first ``clips`` videos of ``split`` (cycled if fewer)."""
    torch.set_num_threads(1)
    records, _, _ = resolve_split(root, split, load_class_names(root))
    if not records:
        raise ValueError(f"split {split!r} of {root} lists no videos")
    paths = [records[i % len(records)].path for i in range(clips + 1)]
    results: dict[str, float] = {}
    span = (frames - 1) * stride + 1
    centre = lambda n: window_start(n, span, 0, 1) + stride * np.arange(frames)  # noqa: E731
    results["floor: pyav decode of the val frames, no transforms"] = _rate(
        lambda i: decode_frames(paths[i], centre, "pyav"), clips)
    resize = v2.Compose([v2.Resize(val_short_side, antialias=True), v2.CenterCrop(val_crop)])
    results["pytorchvideo EncodedVideo(pyav) val clip + same transforms"] = _rate(
        lambda i: _pytorchvideo_clip(paths[i], frames, stride, resize), clips)
    for decoder in ("decord", "auto"):
        for mode in ("val", "train"):
            ds = VideoDataset(records, mode, frames=frames, stride=stride, decoder=decoder,
                              short_side=train_short_side if mode == "train" else val_short_side,
                              crop=train_crop if mode == "train" else val_crop)
            results[f"gcvideo {mode} clip, {decoder}"] = _rate(lambda i: ds[i % len(ds)], clips)
    return results


def format_bench(results: dict[str, float]) -> str:
    ref = results["pytorchvideo EncodedVideo(pyav) val clip + same transforms"]
    lines = [f"{'pipeline':<62}{'clips/s':>9}{'cost vs pytorchvideo':>22}"]
    lines += [f"{name:<62}{rate:>9.1f}{ref / rate:>22.2f}" for name, rate in results.items()]
    return "\n".join(lines)
