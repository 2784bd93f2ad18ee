"""Tiny real videos and datasets for the data tests (imported explicitly by tests/test_data_*.py)."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import av
import numpy as np
import pytest

from gcvideo.data.annotations import KINETICS_HEADER
from gcvideo.data.synthetic.videos import write_mp4, write_video_dataset

TINY = dict(classes=3, train_per_class=2, val_per_class=1, test_per_class=2, seconds=1.0, fps=16.0,
            size=(32, 24), seed=0, workers=1, progress=False)


def ramp_video(frames: int = 12, height: int = 24, width: int = 32) -> np.ndarray:
    """Frames whose brightness encodes the frame index (so sampled indices can be read back)."""
    video = np.zeros((frames, height, width, 3), dtype=np.uint8)
    for t in range(frames):
        video[t] = 10 + 20 * t
    return video


def write_kinetics_rows(root: Path, split: str, rows: list[tuple]) -> None:
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    with open(root / "annotations" / f"{split}.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(KINETICS_HEADER)
        writer.writerows(rows)


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> Path:
    """A 3-class synthetic dataset (16 frames of 32x24 per video)."""
    return write_video_dataset(tmp_path_factory.mktemp("synth"), **TINY)


@pytest.fixture(scope="session")
def bad_files(tmp_path_factory) -> dict[str, Path]:
    """One file of each kind of bad input, plus a good one and a too-short one."""
    d = tmp_path_factory.mktemp("bad")
    files = {kind: d / f"{kind}.mp4" for kind in ("good", "missing", "empty", "garbage", "truncated", "short")}
    write_mp4(files["good"], ramp_video(12), 8)
    files["empty"].write_bytes(b"")
    files["garbage"].write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    good = files["good"].read_bytes()
    files["truncated"].write_bytes(good[: len(good) // 3])
    write_mp4(files["short"], ramp_video(2), 8)
    return files


needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs the ffmpeg command")


def all_frames(path) -> np.ndarray:
    """The reference: every frame, decoding from the start."""
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def packets(path) -> list:
    """(pts, is keyframe) of every video packet with a timestamp, in file order."""
    with av.open(str(path)) as container:
        return [(p.pts, p.is_keyframe) for p in container.demux(video=0) if p.pts is not None]


def kinetics_tree(root: Path, rows: list[tuple], files: list[str]) -> None:
    """A val split of ``rows`` in the official CSV and the (empty) video ``files`` under videos/val."""
    write_kinetics_rows(root, "val", rows)
    for name in files:
        (root / "videos" / "val" / name).parent.mkdir(parents=True, exist_ok=True)
        (root / "videos" / "val" / name).write_bytes(b"x")
