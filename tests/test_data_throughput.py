"""The training input pipeline's speed-ups (issue 9, item 2): exact seeking decoder, crop before resize,
uint8 batches normalised on the device, several clips per decoding pass, prepared copies, benchmark videos."""

import json
import shutil
import subprocess

import av
import numpy as np
import pytest
import torch
from torch.utils.data import default_collate
from torchvision.transforms.v2 import functional as F

from data_fixtures import ramp_video, tiny_dataset  # noqa: F401
from gcvideo.data import KineticsDataModule, VideoDataset, VideoRecord
from gcvideo.data import decoding
from gcvideo.data.kinetics_like import render_frames, write_kinetics_like_dataset, write_kinetics_like_mp4
from gcvideo.data.prepare import output_size, prepare_dataset, prepare_video
from gcvideo.data.seek_decode import decode_pyav_seek
from gcvideo.data.synth import write_mp4
from gcvideo.data.transforms import ScaleJitterCrop, normalize, normalize_batch, spatial_transform
from gcvideo.data.video_dataset import flatten_clips
from gcvideo.errors import UserError

needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs the ffmpeg command")


def all_frames(path) -> np.ndarray:
    """The reference: every frame, decoding from the start."""
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def packets(path) -> list:
    with av.open(str(path)) as container:
        return [(p.pts, p.is_keyframe) for p in container.demux(video=0) if p.pts is not None]


@pytest.fixture(scope="module")
def youtube_like(tmp_path_factory):
    """60 frames of H.264 High with 3 B-frames and a keyframe every 25 frames, plus audio."""
    path = tmp_path_factory.mktemp("kl") / "clip.mp4"
    write_kinetics_like_mp4(path, render_frames(0, 60, 48, 64), 30, gop=25, preset="veryfast")
    return path


@pytest.fixture(scope="module")
def ffmpeg_files(tmp_path_factory):
    """Files whose frames are easy to get wrong when seeking: MPEG-4 part 2 with B-frames, an edit list."""
    d = tmp_path_factory.mktemp("ff")
    run = lambda *a: subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *a], check=True)  # noqa: E731
    src = ["-f", "lavfi", "-i", "testsrc=size=64x48:rate=30"]
    run(*src, "-t", "2", "-c:v", "mpeg4", "-bf", "2", "-g", "12", "-q:v", "3", str(d / "mpeg4_bframes.avi"))
    run(*src, "-t", "8", "-c:v", "libx264", "-bf", "3", "-g", "90", str(d / "long.mp4"))
    run("-ss", "3.3", "-t", "2", "-i", str(d / "long.mp4"), "-c", "copy", str(d / "editlist_cut.mp4"))
    run(*src, "-t", "1", "-c:v", "libx264", "-g", "10", str(d / "raw.h264"))  # no timestamps at all
    return d


def windows(rng, n, k, frames=8, stride=3):
    starts = rng.integers(-5, n, k)  # some past the end or before the start: clamped like every backend
    return np.concatenate([s + stride * np.arange(frames) for s in starts])


def test_seek_decoder_is_exact_on_youtube_like_h264(youtube_like):
    reference = all_frames(youtube_like)
    assert len(reference) == 60
    keys = [pts for pts, key in packets(youtube_like) if key]
    assert len(keys) == 3  # frames 0, 25, 50: windows cross keyframes
    rng = np.random.default_rng(0)
    for trial in range(12):
        indices = windows(rng, 60, 1 + trial % 3)
        got = decode_pyav_seek(str(youtube_like), lambda n: indices).numpy()
        np.testing.assert_array_equal(got, reference[np.clip(indices, 0, 59)])


def test_skipping_non_reference_frames_decodes_fewer_frames(youtube_like, monkeypatch):
    decoded = {True: 0, False: 0}
    for skip in (True, False):
        codec_decode = av.codec.context.CodecContext.decode

        def counting(self, packet=None, _skip=skip):
            frames = codec_decode(self, packet)
            decoded[_skip] += len(frames)
            return frames

        monkeypatch.setattr(av.codec.context.CodecContext, "decode", counting)
        a = decode_pyav_seek(str(youtube_like), lambda n: np.array([20, 23]), skip_nonref=skip)
        monkeypatch.undo()
        np.testing.assert_array_equal(a.numpy(), all_frames(youtube_like)[[20, 23]])
    assert decoded[True] < decoded[False] <= 25  # from keyframe 0 to frame 23 (and one reorder delay)


@needs_ffmpeg
@pytest.mark.parametrize("name", ["mpeg4_bframes.avi", "editlist_cut.mp4"])
def test_seek_decoder_is_exact_where_decord_is_not(ffmpeg_files, name):
    path = ffmpeg_files / name
    reference = all_frames(path)
    rng = np.random.default_rng(1)
    for _ in range(6):
        indices = windows(rng, len(reference), 2, frames=4)
        got = decode_pyav_seek(str(path), lambda n: indices).numpy()
        np.testing.assert_array_equal(got, reference[np.clip(indices, 0, len(reference) - 1)])


@needs_ffmpeg
def test_pyav_fast_falls_back_to_decoding_from_the_start(ffmpeg_files):
    path = ffmpeg_files / "raw.h264"
    with pytest.raises(ValueError, match="timestamp"):
        decode_pyav_seek(str(path), lambda n: np.arange(2))
    frames = decoding.decode_frames(path, lambda n: np.array([0, 7]), "pyav_fast")
    np.testing.assert_array_equal(frames.numpy(), all_frames(path)[[0, 7]])


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


def test_datamodule_batches_count_clips_and_normalise_on_transfer(tiny_dataset):  # noqa: F811
    small = dict(frames=4, stride=2, train_short_side=(24, 28), train_crop=20, num_workers=0, batch_size=4)
    with pytest.raises(UserError, match="multiple of data.clips_per_video"):
        KineticsDataModule(str(tiny_dataset), clips_per_video=3, **small)
    dm = KineticsDataModule(str(tiny_dataset), clips_per_video=2, decoder="pyav_fast", **small)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch["video"].shape == (4, 3, 4, 20, 20) and batch["video"].dtype == torch.uint8
    assert torch.equal(batch["label"][0::2], batch["label"][1::2])  # two clips of each video, side by side
    moved = dm.on_after_batch_transfer(batch, 0)
    torch.testing.assert_close(moved["video"], normalize_batch(batch["video"]))
    val = next(iter(dm.val_dataloader()))
    assert val["video"].dtype == torch.float32 and dm.on_after_batch_transfer(val, 0)["video"] is val["video"]


def test_prepare_reencodes_with_the_same_tree_frames_and_timestamps(tiny_dataset, tmp_path):  # noqa: F811
    root = tmp_path / "raw"
    shutil.copytree(tiny_dataset, root)
    big = root / "videos" / "train" / "moving left" / "big.mp4"
    write_kinetics_like_mp4(big, render_frames(1, 40, 96, 128), 30, gop=40, preset="ultrafast", audio=True)
    (root / "videos" / "train" / "broken.mp4").write_bytes(b"not a video" * 50)
    summary = prepare_dataset(root, tmp_path / "out", short_side=24, gop=8, workers=2, progress=False)
    out = tmp_path / "out"
    sources = sorted(p.relative_to(root) for p in root.rglob("*") if p.is_file())
    assert sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file()) == sorted(
        sources + [type(sources[0])("prepare.json"), type(sources[0])("prepare_failed.csv")])
    videos = [s for s in sources if s.suffix == ".mp4"]
    assert summary["failed"] == 1 and summary["videos"] == len(videos) and summary["done"] == len(videos) - 1
    assert (out / "videos/train/broken.mp4").read_bytes() == (root / "videos/train/broken.mp4").read_bytes()
    with av.open(str(out / big.relative_to(root))) as c:
        assert (c.streams.video[0].width, c.streams.video[0].height) == (32, 24) and not c.streams.audio
    with av.open(str(big)) as c:
        source_pts = sorted(p.pts for p in c.demux(video=0) if p.pts is not None)
        source_tb = c.streams.video[0].time_base
    with av.open(str(out / big.relative_to(root))) as c:
        target_tb = c.streams.video[0].time_base
    target = packets(out / big.relative_to(root))
    assert [float(p * source_tb) for p in source_pts] == pytest.approx(sorted(float(p * target_tb) for p, _ in target))
    key_index = [i for i, (pts, key) in enumerate(sorted(target)) if key]
    assert key_index == [0, 8, 16, 24, 32]
    small = next((root / "videos" / "val").rglob("*.mp4"))  # 32x24: kept, not upscaled
    with av.open(str(out / small.relative_to(root))) as c:
        assert (c.streams.video[0].width, c.streams.video[0].height) == (32, 24)
    again = prepare_dataset(root, tmp_path / "out", short_side=24, gop=8, workers=1, progress=False)
    assert again["done"] == 0 and again["skipped"] == summary["videos"]  # resumable
    with pytest.raises(UserError, match="other settings"):
        prepare_dataset(root, tmp_path / "out", short_side=32, gop=8, progress=False)
    assert output_size(1280, 720, 320) == (568, 320) and output_size(340, 256, 320) == (340, 256)


@needs_ffmpeg
def test_prepare_turns_rotated_videos_upright(tmp_path):
    run = lambda *a: subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *a], check=True)  # noqa: E731
    run("-f", "lavfi", "-i", "testsrc=size=64x48:rate=10", "-t", "1", "-c:v", "libx264", str(tmp_path / "up.mp4"))
    run("-i", str(tmp_path / "up.mp4"), "-c", "copy", "-metadata:s:v:0", "rotate=90", str(tmp_path / "rot.mp4"))
    run("-i", str(tmp_path / "rot.mp4"), "-c:v", "libx264", "-qp", "0", "-pix_fmt", "yuv444p",
        str(tmp_path / "player.mp4"))
    prepare_video(tmp_path / "rot.mp4", tmp_path / "prepared.mp4", short_side=64, crf=0)
    prepared, player = all_frames(tmp_path / "prepared.mp4"), all_frames(tmp_path / "player.mp4")
    assert prepared.shape == player.shape == (10, 64, 48, 3)  # as ffmpeg's player turns it
    error = lambda a: np.abs(prepared.astype(int) - a).mean()  # noqa: E731  (chroma subsampling: a few levels)
    assert error(player) < 8 and error(player[:, ::-1, ::-1]) > 40  # turned 90 degrees the player's way, not 270


def test_kinetics_like_files_are_encoded_like_downloads(tmp_path):
    root = write_kinetics_like_dataset(tmp_path / "kl", size=(64, 48), videos=2, val_videos=1, classes=2,
                                       seconds=2, gop=25, preset="veryfast", workers=1, progress=False)
    files = sorted((root / "videos").rglob("*.mp4"))
    assert len(files) == 3 and (root / "annotations" / "train.csv").is_file()
    with av.open(str(files[0])) as c:
        video, audio = c.streams.video[0], c.streams.audio[0]
        assert (video.codec_context.name, video.codec_context.profile) == ("h264", "High")
        assert (video.width, video.height, video.average_rate) == (64, 48, 30) and audio.codec_context.name == "aac"
        assert video.codec_context.has_b_frames > 0
    keys = [i for i, (_, key) in enumerate(sorted(packets(files[0]))) if key]
    assert keys == [0, 25, 50] and len(all_frames(files[0])) == 60
    mtime = files[0].stat().st_mtime
    write_kinetics_like_dataset(tmp_path / "kl", size=(64, 48), videos=2, val_videos=1, classes=2, seconds=2,
                                gop=25, preset="veryfast", workers=1, progress=False)
    assert files[0].stat().st_mtime == mtime  # the same settings: nothing written again


def test_bench_training_mode_reports_every_lever(tiny_dataset, tmp_path):  # noqa: F811
    from gcvideo.cli.main import main

    out = tmp_path / "bench.json"
    assert main(["data", "bench", "--root", str(tiny_dataset), "--mode", "training", "--clips", "4", "--videos", "3",
                 "--repeats", "1", "--frames", "4", "--stride", "2", "--train-short-side", "24", "28",
                 "--train-crop", "20", "--batch-size", "4", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    names = [r["name"] for r in result["rows"]]
    assert names[0].startswith("today") and result["rows"][0]["vs_today"] == 1.0
    assert any("uint8" in n for n in names) and any("pyav_fast" in n for n in names)
    assert any("prepared" in n for n in names) and result["prepare"]["seconds_per_video"] > 0
    assert all(r["clips_per_s"] > 0 for r in result["rows"])


def test_gpu_check_helpers(tiny_dataset, tmp_path):  # noqa: F811
    import importlib.util
    from pathlib import Path

    from gcvideo.data.annotations import load_class_names, resolve_split

    spec = importlib.util.spec_from_file_location("gpu_check", Path(__file__).parents[1] / "scripts" / "gpu_check.py")
    gpu_check = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gpu_check)
    root = tmp_path / "data"
    shutil.copytree(tiny_dataset, root)
    before, _, _ = resolve_split(root, "train", load_class_names(root))
    gpu_check.list_each_video(root, 3)
    gpu_check.list_each_video(root, 3)  # again: the same list, not 9 copies
    after, _, _ = resolve_split(root, "train", load_class_names(root))
    assert len(after) == 3 * len(before) and [r.path for r in after[:len(before)]] == [r.path for r in before]
    assert all(Path(r.path).stat().st_ino == Path(before[i % len(before)].path).stat().st_ino
               for i, r in enumerate(after))  # hard links: no bytes copied
    result = {"machine": {"gpu": "H100", "cpu_cores": 16, "torch": "2"}, "batch": 16, "workers": 14, "steps": 100,
              "skipped_steps": 20, "rows": [
                  {"row": "slow_r50_gc5", "pipeline": "today", "model_only_clips_per_s": 290.0,
                   "fit_clips_per_s": 118.0, "data_wait": 0.55, "fit_vs_model_only": 118 / 290, "status": "ok"},
                  {"row": "slow_r50", "pipeline": "fast", "model_only_clips_per_s": None,
                   "fit_clips_per_s": None, "data_wait": None, "status": "timeout"}]}
    table = gpu_check.format_table(result)
    assert "  118.0    55%       41%  today" in table and "[timeout]" in table
