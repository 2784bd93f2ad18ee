"""The synthetic datasets gcvideo writes: action videos, images, and Kinetics-like benchmark files."""

import csv
import subprocess
import sys

import av
import numpy as np
import pytest
import torch
from data_fixtures import TINY, all_frames, packets, tiny_dataset  # noqa: F401

from gcvideo.data.decoding.decode import decode_frames
from gcvideo.data.synthetic.images import IMAGE_CLASSES, render_image, write_image_dataset
from gcvideo.data.synthetic.kinetics_like import write_kinetics_like_dataset
from gcvideo.data.synthetic.videos import CLASSES, render_video, write_mp4, write_video_dataset


def test_layout_and_annotations(tiny_dataset):  # noqa: F811
    names = (tiny_dataset / "classnames.txt").read_text().splitlines()
    assert names == list(CLASSES[:3])
    for split, per_class in (("train", 2), ("val", 1), ("test", 2)):
        with open(tiny_dataset / "annotations" / f"{split}.csv", newline="") as f:
            rows = list(csv.reader(f))
        assert rows[0] == ["label", "youtube_id", "time_start", "time_end", "split"]
        assert len(rows) - 1 == 3 * per_class
        for label, yid, start, end, s in rows[1:]:
            path = tiny_dataset / "videos" / split / label / f"{yid}_{int(start):06d}_{int(end):06d}.mp4"
            assert path.is_file() and s == split and len(yid) == 11


def test_decord_reads_what_synth_writes(tiny_dataset):  # noqa: F811
    """decord reads every synthetic video frame for frame as an in-order PyAV decode does."""
    paths = sorted((tiny_dataset / "videos" / "train").rglob("*.mp4"))
    assert len(paths) == 6
    for path in paths:
        frames = decode_frames(path, lambda n: np.arange(n), "decord").numpy()
        np.testing.assert_array_equal(frames, all_frames(path), err_msg=str(path))
        assert len(frames) == 16


def test_same_seed_same_frames(tmp_path, tiny_dataset):  # noqa: F811
    again = write_video_dataset(tmp_path / "again", **{**TINY, "workers": 2})
    a = sorted((tiny_dataset / "videos").rglob("*.mp4"))
    b = sorted((again / "videos").rglob("*.mp4"))
    assert [p.relative_to(tiny_dataset) for p in a] == [p.relative_to(again) for p in b]
    # byte for byte: the encoder is deterministic (test_writing_the_same_frames_gives_the_same_bytes)
    assert [x.read_bytes() == y.read_bytes() for x, y in zip(a, b)] == [True] * len(a)
    for x, y in zip(a[:4], b[:4]):
        all_frames = lambda n: np.arange(n)  # noqa: E731
        assert torch.equal(decode_frames(x, all_frames), decode_frames(y, all_frames))
    other = render_video(0, (1, 2, 3, 4), 8, 24, 32)
    assert not np.array_equal(other, render_video(0, (1, 2, 3, 5), 8, 24, 32))


def test_writing_the_same_frames_gives_the_same_bytes(tmp_path):
    """x264's macroblock tree made the bytes (and decoded pixels) depend on the process's memory state,
    so datasets written with the same seed differed (test_same_seed_same_frames failed under load)."""
    video = render_video(1, (0, 0, 1, 1), 16, 24, 32)  # one that came out in four different versions
    rng = np.random.default_rng(0)
    ballast, written = [], set()
    for i in range(12):
        ballast = [*ballast[-8:], rng.bytes(int(rng.integers(1_000, 2_000_000)))]  # stir the heap
        write_mp4(tmp_path / f"{i}.mp4", video, 16)
        written.add((tmp_path / f"{i}.mp4").read_bytes())
    assert len(written) == 1


@pytest.mark.parametrize("label", range(len(CLASSES)))
def test_every_class_changes_over_time(label):
    video = render_video(label, (0, label), 32, 48, 48)
    assert video.shape == (32, 48, 48, 3) and video.dtype == np.uint8
    assert np.abs(video[-1].astype(int) - video[0].astype(int)).sum() > 0


def test_images(tmp_path):
    out = write_image_dataset(tmp_path, classes=6, train_per_class=2, val_per_class=1, size=32, progress=False)
    assert len(list((out / "train").rglob("*.png"))) == 12 and len(list((out / "val").rglob("*.png"))) == 6
    lr = render_image(IMAGE_CLASSES.index("mirror left-right"), 0, 32)
    assert np.array_equal(lr, lr[:, ::-1])
    with pytest.raises(ValueError, match="classes"):
        write_image_dataset(tmp_path, classes=99)


def test_cli_synth(tmp_path):
    out = tmp_path / "cli"
    subprocess.run([sys.executable, "-m", "gcvideo.cli.main", "synth", "--out", str(out), "--classes", "2",
                    "--train-per-class", "1", "--val-per-class", "1", "--test-per-class", "1", "--seconds", "0.5",
                    "--fps", "8", "--size", "16x16", "--workers", "1"], check=True, capture_output=True)
    assert len(list((out / "videos").rglob("*.mp4"))) == 6


def test_written_once_for_the_same_settings(tmp_path):
    small = dict(classes=2, train_per_class=1, val_per_class=1, test_per_class=1, seconds=0.5, fps=8.0,
                 size=(16, 16), workers=1, progress=False)
    out = write_video_dataset(tmp_path / "d", **small)
    videos = sorted((out / "videos").rglob("*.mp4"))
    stamp = (out / "synth.json").stat().st_mtime_ns
    before = [v.stat().st_mtime_ns for v in videos]
    write_video_dataset(out, **small)  # same settings, complete: nothing is written
    assert [v.stat().st_mtime_ns for v in videos] == before and (out / "synth.json").stat().st_mtime_ns == stamp
    videos[0].unlink()  # incomplete: written again
    write_video_dataset(out, **small)
    assert videos[0].is_file()
    write_video_dataset(out, **{**small, "seed": 1})  # other settings: written again, stamp updated
    assert '"seed": 1' in (out / "synth.json").read_text()
    first = sorted((out / "videos").rglob("*.mp4"))[0].stat().st_mtime_ns
    write_video_dataset(out, **{**small, "seed": 1}, force=True)
    assert sorted((out / "videos").rglob("*.mp4"))[0].stat().st_mtime_ns != first
    assert len(list((out / "videos").rglob("*.mp4"))) == 6  # the seed-0 videos were removed, not left stale


def test_cli_synth_leaves_defaults_to_the_writer(tmp_path, monkeypatch):
    """Unset options are not passed, so `gcvideo synth --out D` writes exactly the writer's default dataset."""
    import argparse

    from gcvideo.cli import synth as cli
    from gcvideo.data.synthetic import videos as synth

    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    calls = []
    monkeypatch.setattr(synth, "write_video_dataset", lambda out, **kw: calls.append(kw) or out)
    assert cli.run(parser.parse_args(["--out", str(tmp_path)])) == 0
    assert cli.run(parser.parse_args(["--out", str(tmp_path), "--seconds", "2", "--size", "32x16"])) == 0
    assert calls == [{"force": False}, {"force": False, "seconds": 2.0, "size": (32, 16)}]


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
