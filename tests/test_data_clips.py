"""The clip pipeline: sampling by time and by frame index, windows and crops, transforms, several clips per
decoding pass, bad videos in the datasets."""

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from data_fixtures import bad_files, ramp_video, tiny_dataset  # noqa: F401
from torch.utils.data import default_collate
from torchvision.transforms.v2 import functional as F

from gcvideo.data import VideoDataset, VideoFilesDataset, VideoRecord
from gcvideo.data.annotations import VideoRecord
from gcvideo.data.clips.bad_videos import FAILURE_KEY, decode_failures
from gcvideo.data.clips.datasets import VideoDataset, flatten_clips
from gcvideo.data.clips.sampling import sampling_length, window_start
from gcvideo.data.clips.transforms import ScaleJitterCrop, long_side_crop, normalize, normalize_batch, spatial_transform
from gcvideo.data.decoding.video_info import FrameCount
from gcvideo.data.synthetic.videos import write_mp4

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def _frame_index_select(mode: str, n: int, frames: int, stride: int, clip_index: int, clips: int) -> np.ndarray:
    """Frame-index sampling written out independently (PySlowFast's formula: a random start in train, the
    centre or ``clips`` uniformly spaced starts otherwise)."""
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
    target rate the selector is the frame-index formula itself."""
    for fps in (16.0, 25.0, 30.0, 29.97002997):
        for n in (1, 7, 32, 57, 64, 100, 301):
            for frames, stride in ((8, 8), (8, 4), (4, 2)):
                for clip in range(10 if mode == "test" else 1):
                    by_index = _dataset(mode, frames, stride)._indices(clip)
                    by_time = _dataset(mode, frames, stride, target_fps=fps)._indices(clip)
                    torch.manual_seed(n)
                    expected = _frame_index_select(mode, n, frames, stride, clip, 10 if mode == "test" else 1)
                    torch.manual_seed(n)
                    a = by_index(FrameCount(n, fps))
                    torch.manual_seed(n)
                    b = by_time(FrameCount(n, fps))
                    np.testing.assert_array_equal(a, expected)
                    np.testing.assert_array_equal(np.clip(b, 0, n - 1), np.clip(expected, 0, n - 1))


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


def test_windows_and_crops(tmp_path):
    from gcvideo.data.synthetic.videos import write_mp4

    path = tmp_path / "ramp.mp4"
    write_mp4(path, ramp_video(12, 24, 48), 8)
    ds = VideoFilesDataset([path], frames=3, stride=2, short_side=24, crop=24, clips=3, crops=3, mean=(0, 0, 0),
                           std=(1 / 255,) * 3)
    first = [ds[i]["video"][0, 0, :, 0, 0].round().tolist() for i in (0, 1, 2)]  # crop 0 of clips 0, 1, 2
    np.testing.assert_allclose(first, [[10, 50, 90], [90, 130, 170], [150, 190, 230]], atol=4)
    assert int(ds[0]["label"]) == -1
    x = torch.arange(2 * 10).view(1, 1, 2, 10)
    assert [long_side_crop(x, 2, k, 3)[0, 0, 0].tolist() for k in range(3)] == [[0, 1], [4, 5], [8, 9]]


def test_short_video_repeats_last_frame(bad_files):  # noqa: F811
    ds = VideoDataset([VideoRecord(str(bad_files["short"]), 0)], "val", frames=4, stride=2, short_side=24, crop=20)
    item = ds[0]
    assert bool(item["valid"]) and item["video"].shape == (3, 4, 20, 20)
    assert torch.equal(item["video"][:, 1], item["video"][:, 3])


@pytest.mark.parametrize("kind", ["missing", "empty", "garbage", "truncated"])
@pytest.mark.parametrize("mode", ["train", "val", "test"])
def test_bad_files(bad_files, kind, mode, caplog):  # noqa: F811
    records = [VideoRecord(str(bad_files[kind]), 1), VideoRecord(str(bad_files["good"]), 0)]
    ds = VideoDataset(records, mode, frames=4, stride=2, short_side=24, crop=20, clips=2, crops=1)
    with caplog.at_level("WARNING"):
        items = [ds[0], ds[0]]
    assert all(it["video"].shape == ((1, 3, 4, 20, 20) if mode == "test" else (3, 4, 20, 20)) for it in items)
    if mode == "train":  # replaced by the good video
        assert all(bool(it["valid"]) and int(it["video_index"]) == 1 for it in items)
    else:
        assert not any(bool(it["valid"]) for it in items) and float(items[0]["video"].abs().sum()) == 0
    assert ds.bad_videos == {str(bad_files[kind]): ds.bad_videos[str(bad_files[kind])]}
    # each item says which video failed for it (the data module logs it once); the dataset logs nothing
    reason = "missing" if kind == "missing" else "empty" if kind == "empty" else "undecodable"
    for it in items:
        (path, why), = decode_failures(it[FAILURE_KEY])
        assert path == str(bad_files[kind]) and why.startswith(reason)
    assert not caplog.records


def test_train_flip_can_be_turned_off_for_mirror_image_classes():
    from gcvideo.data.clips.transforms import spatial_transform

    video = torch.arange(2 * 3 * 8 * 8, dtype=torch.uint8).reshape(2, 3, 8, 8)  # no symmetry
    torch.manual_seed(0)
    no_flip = spatial_transform("train", 8, 8, flip=False)
    assert all(torch.equal(no_flip(video), video) for _ in range(20))
    with_flip = spatial_transform("train", 8, 8)
    assert any(torch.equal(with_flip(video), video.flip(-1)) for _ in range(20))


def test_a_bad_test_video_is_tried_once_for_all_its_views(tmp_path, monkeypatch):
    import gcvideo.data.clips.datasets as vd

    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"not a video" * 100)
    calls = []
    real = vd.decode_frames
    monkeypatch.setattr(vd, "decode_frames", lambda *a, **k: calls.append(a[0]) or real(*a, **k))
    dataset = VideoDataset([VideoRecord(str(garbage), 0)], "test", frames=2, stride=1, short_side=8, crop=8,
                           clips=2, crops=3)
    items = [dataset[i] for i in range(len(dataset))]
    assert not any(bool(it["valid"]) for it in items) and len(calls) == 1


def test_a_dataset_holds_no_python_object_per_video():
    """The videos live in numpy columns: DataLoader workers share them instead of copying them as they read
    (reading a Python object writes its reference count). ``scripts/bench_scale.py`` measures the memory."""
    from gcvideo.data import VideoTable

    n = 5000
    table = VideoTable([f"videos/train/c{i % 400}/{i:011d}_000000_000010.mp4" for i in range(n)], np.arange(n) % 400)
    ds = VideoDataset(table, "train")

    def containers(obj, depth=0):
        if isinstance(obj, (list, tuple, dict, set)):
            yield obj
        if depth < 3:
            for value in (vars(obj).values() if hasattr(obj, "__dict__") else obj.values() if isinstance(obj, dict)
                          else ()):
                yield from containers(value, depth + 1)

    assert not [c for c in containers(ds) if len(c) >= n]
    assert ds.table.paths.buffer.dtype == np.uint8 and ds.table.labels.dtype == np.int32
    assert ds.video_paths[7] == table.path(7) and ds.table.label(7) == 7


def test_crop_before_resize_equals_resize_then_crop():
    video = torch.randint(0, 256, (4, 3, 40, 56), dtype=torch.uint8)
    for seed in range(5):  # scale 1: the same draws give the same crop as RandomShortestSize + RandomCrop
        torch.manual_seed(seed)
        first = spatial_transform("train", (40, 40), 32, flip=False)(video)
        torch.manual_seed(seed)
        before = spatial_transform("train", (40, 40), 32, flip=False, crop_first=False)(video)
        assert torch.equal(first, before)
    crop = ScaleJitterCrop((80, 80), 32)  # scale 2: the same pixels, but at the crop's border (interpolation)
    for seed in range(5):
        torch.manual_seed(seed)
        p = crop.make_params([video])
        resized = F.resize(video, [80], antialias=True)
        expected = resized[..., 2 * p["top"]:2 * p["top"] + 32, 2 * p["left"]:2 * p["left"] + 32]
        got = crop.transform(video, p)
        assert got.shape == (4, 3, 32, 32) and torch.equal(got[..., 1:-1, 1:-1], expected[..., 1:-1, 1:-1])
    scales = []
    for _ in range(200):
        p = ScaleJitterCrop((48, 64), 32).make_params([video])
        scales.append(32 / p["size"] * 40)  # the short side the crop was cut at
    assert 47 <= min(scales) < 50 and 62 < max(scales) <= 66


def test_uint8_clips_normalised_on_the_device_equal_float_clips(tiny_dataset):  # noqa: F811
    from gcvideo.data.annotations import load_class_names, resolve_split

    records, _, _ = resolve_split(tiny_dataset, "train", load_class_names(tiny_dataset))
    common = dict(frames=4, stride=2, short_side=(24, 28), crop=20)
    torch.manual_seed(0)
    floats = [VideoDataset(records, "train", **common)[i]["video"] for i in range(3)]
    torch.manual_seed(0)
    raw = default_collate([VideoDataset(records, "train", output="uint8", **common)[i] for i in range(3)])["video"]
    assert raw.dtype == torch.uint8 and raw.shape == (3, 3, 4, 20, 20)
    torch.testing.assert_close(normalize_batch(raw), torch.stack(floats))
    x = torch.randint(0, 256, (2, 3, 5, 4, 4), dtype=torch.uint8)
    expected = (x.float() / 255 - 0.45) / 0.225  # the formula, per channel mean 0.45 and std 0.225
    torch.testing.assert_close(normalize_batch(x), expected)
    torch.testing.assert_close(normalize(x[0].permute(1, 0, 2, 3)), expected[0])


def test_several_clips_per_video_come_from_distinct_windows(tmp_path):
    path = tmp_path / "ramp.mp4"
    write_mp4(path, ramp_video(12, 24, 32), 8)  # brightness 10 + 20 t in frame t
    ds = VideoDataset([VideoRecord(str(path), 3)], "train", frames=2, stride=3, short_side=24, crop=20,
                      clips_per_video=4, output="uint8", mean=(0, 0, 0), std=(1 / 255,) * 3)
    torch.manual_seed(0)
    items = [ds[0] for _ in range(5)]
    assert items[0]["video"].shape == (4, 3, 2, 20, 20) and items[0]["label"].tolist() == [3] * 4
    assert all(bool(it["valid"].all()) for it in items)
    levels = torch.cat([it["video"].float().mean(dim=(1, 3, 4)) for it in items])  # (clips, frames)
    np.testing.assert_allclose((levels[:, 1] - levels[:, 0]).numpy(), 60, atol=4)  # 3 frames apart
    starts = ((levels[:, 0] - 10) / 20).round()
    assert len(set(starts.tolist())) > 3  # random windows, not one window repeated
    batch = flatten_clips(items[:2])
    assert batch["video"].shape == (8, 3, 2, 20, 20) and batch["label"].shape == (8,)
    with pytest.raises(ValueError, match="clips_per_video"):
        VideoDataset([VideoRecord(str(path), 0)], "val", clips_per_video=2)
