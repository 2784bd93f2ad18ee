"""Clip sampling by time (PySlowFast's TARGET_FPS) and its identity with frame-index sampling (issue 12)."""

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from gcvideo.data.annotations import VideoRecord
from gcvideo.data.clip_sampling import sampling_length, window_start
from gcvideo.data.video_dataset import VideoDataset
from gcvideo.data.video_info import FrameCount

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def _old_select(mode: str, n: int, frames: int, stride: int, clip_index: int, clips: int) -> np.ndarray:
    """Frame-index sampling as it was before sampling by time (the formula the existing results used)."""
    span = (frames - 1) * stride + 1
    if mode == "train":
        start = int(torch.randint(0, max(n - span, 0) + 1, ()).item())
    else:
        delta = max(n - span, 0)
        start = delta // 2 if clips == 1 else round(delta * clip_index / (clips - 1))
    return start + stride * np.arange(frames)


def _dataset(mode: str, frames: int = 8, stride: int = 8, target_fps=None) -> VideoDataset:
    return VideoDataset([VideoRecord("unused.mp4", 0)], mode, frames=frames, stride=stride, clips=10, crops=3,
                        target_fps=target_fps)


@pytest.mark.parametrize("mode", ["train", "val", "test"])
def test_time_sampling_at_the_video_rate_is_frame_index_sampling(mode):
    """Synthetic videos have a fixed rate: sampling by time at that rate keeps every index, and without a
    target rate the selector is the old formula itself."""
    for fps in (16.0, 25.0, 30.0, 29.97002997):
        for n in (1, 7, 32, 57, 64, 100, 301):
            for frames, stride in ((8, 8), (8, 4), (4, 2)):
                for clip in range(10 if mode == "test" else 1):
                    by_index = _dataset(mode, frames, stride)._indices(clip)
                    by_time = _dataset(mode, frames, stride, target_fps=fps)._indices(clip)
                    torch.manual_seed(n)
                    old = _old_select(mode, n, frames, stride, clip, 10 if mode == "test" else 1)
                    torch.manual_seed(n)
                    a = by_index(FrameCount(n, fps))
                    torch.manual_seed(n)
                    b = by_time(FrameCount(n, fps))
                    np.testing.assert_array_equal(a, old)
                    np.testing.assert_array_equal(np.clip(b, 0, n - 1), np.clip(old, 0, n - 1))


def test_a_60_fps_video_covers_the_same_seconds_as_a_30_fps_one():
    for mode, clip in (("val", 0), ("test", 0), ("test", 4), ("test", 9)):
        select = _dataset(mode, target_fps=30)._indices(clip)
        at_30 = select(FrameCount(300, 30.0))
        at_60 = select(FrameCount(600, 60.0))
        np.testing.assert_array_equal(at_60, 2 * at_30)
        assert (np.diff(at_30) == 8).all()  # 8 frames 8 apart at 30 fps: 8/30 s
    frame_index = _dataset("val")._indices(0)
    assert np.ptp(frame_index(FrameCount(600, 60.0))) == 56  # by frame index: half the seconds


def test_variable_frame_rate_maps_times_to_the_frame_shown():
    """A VFR video: 30 frames at 60 fps then 30 at 20 fps; slot times pick the frame shown at each time."""
    times = np.concatenate([np.arange(30) / 60, 0.5 + np.arange(30) / 20])
    count = FrameCount(60, 60 / 2.0, times)
    assert count.duration == pytest.approx(times[-1] + 1 / 30)
    seconds = np.array([0.0, 0.26, 0.5, 0.52, 0.55, 1.0, 1.95, 5.0])
    np.testing.assert_array_equal(count.index_at(seconds), [0, 15, 30, 30, 31, 40, 59, 59])
    select = _dataset("val", frames=4, stride=15, target_fps=30)._indices(0)
    picked = select(count)
    shown = 30 * times[picked]  # in 1/30 s slots: 15 slots apart, whatever the frame rate there
    assert np.allclose(np.diff(np.floor(shown + 1e-6)), 15, atol=1)


def test_29_97_fps_frames_are_those_shown_at_the_slot_times():
    count = FrameCount(300, 30000 / 1001)
    assert sampling_length(count, 30) == 300  # 10.01 s hold 300 slots of 1/30 s
    slots = np.arange(0, 300, 8)
    np.testing.assert_array_equal(count.index_at(slots / 30), np.floor(slots / 30 * 30000 / 1001 + 1e-6))
    assert window_start(300, 57, 0, 1) == 121


def test_sampling_by_time_needs_the_timeline():
    with pytest.raises(TypeError, match="FrameCount"):
        sampling_length(300, 30.0)


def test_configs_sample_kinetics_by_time_and_synthetic_data_by_frame_index():
    """The existing synthetic results keep their indices; Kinetics follows PySlowFast's TARGET_FPS."""
    for path in sorted((CONFIGS / "synthetic").glob("slow_*.yaml")):
        data = yaml.safe_load(path.read_text())["data"]["init_args"]
        assert "target_fps" in data and data["target_fps"] is None, path.name
    for path in sorted((CONFIGS / "kinetics400").glob("*.yaml")):
        data = yaml.safe_load(path.read_text())["data"]["init_args"]
        assert data.get("target_fps") == 30 and data.get("decoder") == "auto", path.name
