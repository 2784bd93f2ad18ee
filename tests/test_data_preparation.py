"""Preparing a dataset: `gcvideo data check` (the per-video manifest, datasets reading it, resuming, --out, clean
and bad lists) and `gcvideo data prepare`."""

import argparse
import csv
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
import pytest
from data_fixtures import all_frames, bad_files, needs_ffmpeg, packets, tiny_dataset  # noqa: F401
from video_corpus import painted, reference_frames, video_corpus  # noqa: F401

import gcvideo.data.clips.datasets as video_dataset_module
from gcvideo.cli import data as data_cli
from gcvideo.cli.main import main
from gcvideo.data import KineticsDataModule
from gcvideo.data.annotations import resolve_split
from gcvideo.data.decoding.manifest import ManifestRow, VideoInfoTable, read_rows
from gcvideo.data.decoding.video_check import check_video
from gcvideo.data.preparation.reencode import output_size, prepare_dataset, prepare_video
from gcvideo.data.preparation.split_check import check_split
from gcvideo.data.synthetic.kinetics_like import render_frames, write_kinetics_like_mp4
from gcvideo.errors import UserError

DAMAGED = ("truncated", "corrupted")  # cut from long.mp4, whose painted index is also its timestamp rank


REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def corpus_root(video_corpus, tmp_path_factory):  # noqa: F811
    """A `path label` dataset of the whole corpus (and a missing file), checked once: the same list and
    manifest serve the train, val and test splits."""
    root = tmp_path_factory.mktemp("corpus_root")
    (root / "videos").mkdir()
    lines = []
    for name, file in sorted(video_corpus.items()):
        target = root / "videos" / file.path.name
        os.link(file.path, target)
        lines.append(f"videos/{file.path.name} {len(lines) % 2}")
    lines.append("videos/missing.mp4 0")
    (root / "classnames.txt").write_text("a\nb\n")
    for split in ("train", "val", "test"):
        (root / f"{split}.txt").write_text("\n".join(lines) + "\n")
    summary = check_split(root, "train", workers=2, timeout=60, progress=False)
    for split in ("val", "test"):
        shutil.copy(root / "annotations" / "train.manifest.csv", root / "annotations" / f"{split}.manifest.csv")
    return root, summary


def _rows(root: Path, split: str = "train") -> dict[str, ManifestRow]:
    """Manifest rows by corpus name (``video_corpus`` keys) and "missing"."""
    names = {"missing.mp4": "missing"}
    for r in read_rows(root / "annotations" / f"{split}.manifest.csv"):
        stem, ext = Path(r["path"]).stem, Path(r["path"]).suffix[1:]
        names.setdefault(Path(r["path"]).name, stem if ext == "mp4" else f"{stem}_{ext}")
    return {names[Path(r["path"]).name]: ManifestRow.from_csv(r)
            for r in read_rows(root / "annotations" / f"{split}.manifest.csv")}


def test_manifest_describes_each_video(corpus_root, video_corpus):  # noqa: F811
    root, summary = corpus_root
    rows = _rows(root)
    assert summary["videos"] == len(video_corpus) + 1 and summary["reasons"] == {"missing": 1}
    assert rows["missing"].status == "bad" and rows["missing"].reason == "missing"
    for name, file in video_corpus.items():
        row = rows[name]
        reference = reference_frames(file.path)
        assert (row.status == "partial") == file.damaged, name
        if not file.damaged:
            assert row.info.frames == len(reference) and row.info.first_frame == 0, name
    assert rows["truncated"].info.frames >= 220  # 95% of the bytes: most frames still decode
    assert rows["corrupted"].info.frames > 100 and "partial" in rows["corrupted"].reason
    assert rows["rotated90"].info.rotation == 90 and rows["h264_high"].info.rotation == 0
    assert rows["ntsc_2997"].info.fps == pytest.approx(30000 / 1001) and rows["fps60"].info.fps == 60
    assert rows["vfr"].info.vfr and not rows["h264_high"].info.vfr
    assert rows["editlist_cut"].container_frames > rows["editlist_cut"].info.frames + 40
    assert rows["h264_720p"].info.width == 1280 and rows["hevc_open_gop"].info.codec == "hevc"
    for name, file in video_corpus.items():  # PyAV seeking first: exact on every file that seeks
        assert rows[name].info.backend in ("pyav", "pyav_sequential"), name
    # asked to try decord first, the check keeps it exactly for the files it reads right
    for stem in ("editlist_cut", "hevc_open_gop", "mpeg4_bframes", "rotated90"):
        row = check_video(str(video_corpus[stem].path), stem, backends=("decord", "pyav"))
        assert row.info.backend != "decord" and row.reason.startswith("decord:"), stem
    for name in ("h264_high", "h264_high_mkv", "h264_high_mov", "vp9_webm", "fps60", "ntsc_2997"):
        assert check_video(str(video_corpus[name].path), name, backends=("decord", "pyav")).info.backend == "decord", name
    clean = [line.rsplit(" ", 1)[0] for line in (root / "annotations" / "train.clean.csv").read_text().splitlines()]
    assert len(clean) == len(video_corpus) and "videos/truncated.mp4" in clean  # clips from its decodable part


def _expected(file, row: ManifestRow, indices: np.ndarray) -> tuple[list[int], np.ndarray, np.ndarray]:
    """Painted indices the in-order decode shows at ``indices`` of the decodable range, and its timeline."""
    if file.damaged:  # long.mp4 at 30 fps: the painted index is the frame's rank
        return [row.info.first_frame + int(i) for i in indices], np.arange(row.info.frames) / 30.0, None
    reference = reference_frames(file.path)
    times = np.array([t for t, _, _ in reference]) - reference[0][0]
    return [reference[int(i)][1] for i in indices], times, reference[0][2]


@pytest.mark.parametrize("stage", ["train", "val", "test"])
def test_every_view_gets_the_frames_at_its_times(corpus_root, video_corpus, stage, monkeypatch):  # noqa: F811
    """Train, val and test views of every corpus file read through the manifest: each decoded frame is the
    in-order decode's frame at the index the view's sampled time maps to, and that mapping is the in-order
    decode's timeline; damaged files give clips from their decodable part."""
    root, _ = corpus_root
    calls = []
    real = video_dataset_module.decode_frames

    def spy(path, select, backend, info):
        seen = {}

        def recording(count):
            seen["count"], seen["indices"] = count, np.asarray(select(count))
            return seen["indices"]

        frames = real(path, recording, backend, info)
        calls.append((Path(path).name, seen["count"], seen["indices"], frames.numpy()))
        return frames

    monkeypatch.setattr(video_dataset_module, "decode_frames", spy)
    module = KineticsDataModule(str(root), frames=4, stride=8, target_fps=30, train_short_side=(32, 36),
                                train_crop=32, val_short_side=32, val_crop=32, test_short_side=32, test_crop=32,
                                test_clips=4, test_crops=2)
    module.setup({"train": "fit", "val": "validate", "test": "test"}[stage])
    dataset = {"train": module.train_dataset, "val": module.val_dataset, "test": module.test_dataset}[stage]
    for index in range(len(dataset)):
        dataset[index]
    rows = _rows(root)
    by_name = {f.path.name: (f, rows[key]) for key, f in video_corpus.items()}
    checked = set()
    for stem, count, indices, frames in calls:
        file, row = by_name[stem]
        expected, times, shape = _expected(file, row, np.clip(indices, 0, row.info.frames - 1))
        assert int(count) == row.info.frames, stem
        assert painted(frames, file.rotation) == expected, (stem, indices)
        assert shape is None or frames.shape[1:] == shape, stem
        middles = (times[:-1] + times[1:]) / 2  # away from frame boundaries (timestamps are rounded)
        assert (count.index_at(middles) == np.arange(len(middles))).all(), stem
        checked.add(stem)
    assert checked == set(by_name), "every corpus file gave views"
    assert "missing.mp4" in " ".join(dataset.bad_videos)


def test_partly_decodable_file_is_clean_and_stays_in_its_range(corpus_root):
    root, _ = corpus_root
    table = VideoInfoTable.from_manifest(root / "annotations" / "train.manifest.csv", root,
                                         [str(root / "videos" / n) for n in ("truncated.mp4", "missing.mp4", "x.mp4")])
    truncated, missing, unknown = table[0], table[1], table[2]
    assert truncated.checked and 220 <= truncated.frames < 240 and truncated.backend != "decord"
    assert missing.frames == 0 and unknown is None and table.found == 2


def _tree(root: Path) -> dict[str, tuple[int, float]]:
    return {str(p): (p.stat().st_size, p.stat().st_mtime) for p in sorted(root.rglob("*"))}


def _make_read_only(root: Path) -> bool:
    """chmod (any user) and chattr +i (root ignores modes); whether writing there now fails."""
    for p in [root, *root.rglob("*")]:
        p.chmod(p.stat().st_mode & ~0o222)
    subprocess.run(["chattr", "+i", str(root), str(root / "annotations")], capture_output=True)
    try:
        (root / "annotations" / "probe").write_text("x")
    except OSError:
        return True
    (root / "annotations" / "probe").unlink()
    return False


def _make_writable(root: Path) -> None:
    subprocess.run(["chattr", "-i", str(root), str(root / "annotations")], capture_output=True)
    for p in [root, *root.rglob("*")]:
        p.chmod(p.stat().st_mode | 0o200)


def _one_video_root(video_corpus, root: Path) -> Path:  # noqa: F811
    (root / "annotations").mkdir(parents=True)
    os.link(video_corpus["h264_high"].path, root / "a.mp4")
    (root / "classnames.txt").write_text("a\n")
    (root / "val.txt").write_text("a.mp4 0\n")
    return root


def test_a_read_only_root_fails_at_once_saying_to_give_out(video_corpus, tmp_path, capsys):  # noqa: F811
    root = _one_video_root(video_corpus, tmp_path / "ro")
    before = _tree(root)
    try:
        if not _make_read_only(root):
            pytest.skip("this file system lets this user write into a read-only folder (no chattr +i)")
        start = time.monotonic()
        assert main(["data", "check", "--root", str(root), "--split", "val", "--no-progress"]) == 2
        assert time.monotonic() - start < 30  # before any video is decoded
    finally:
        _make_writable(root)
    err = capsys.readouterr().err
    assert "cannot write the check's results to" in err and "--out DIR" in err and len(err.strip().splitlines()) == 1
    assert _tree(root) == before


def test_out_keeps_the_dataset_untouched_and_the_lists_usable(video_corpus, tmp_path, capsys):  # noqa: F811
    root = _one_video_root(video_corpus, tmp_path / "ro")
    before = _tree(root)
    _make_read_only(root)  # read-only where the file system allows it; --out must not need to write there
    try:
        out = tmp_path / "results"
        assert main(["data", "check", "--root", str(root), "--split", "val", "--out", str(out), "--no-progress"]) == 0
    finally:
        _make_writable(root)
    printed = capsys.readouterr().out
    assert _tree(root) == before  # nothing written to the dataset
    assert (out / "val.manifest.csv").is_file() and (out / "val.clean.csv").read_text() == "a.mp4 0\n"
    assert f"--data.init_args.val_list {out / 'val.clean.csv'}" in printed and "clean 1" in printed
    module = KineticsDataModule(str(root), val_list=str(out / "val.clean.csv"), val_short_side=32, val_crop=32)
    module.setup("validate")
    assert module.val_dataset.video_info(0).checked  # the manifest beside the clean list is found


def test_timeout_kills_the_worker_and_counts_the_video(video_corpus, tmp_path):  # noqa: F811
    root = tmp_path / "t"
    root.mkdir()
    os.link(video_corpus["h264_720p"].path, root / "a.mp4")
    (root / "classnames.txt").write_text("a\n")
    (root / "val.txt").write_text("a.mp4 0\n")
    summary = check_split(root, "val", workers=1, timeout=0.01, progress=False)
    assert summary["reasons"] == {"timeout": 1}
    assert next(read_rows(root / "annotations" / "val.manifest.csv"))["reason"].startswith("timeout")


@pytest.mark.slow
def test_interrupted_check_resumes_without_redoing_the_finished_half(video_corpus, tmp_path):  # noqa: F811
    root = tmp_path / "big"
    (root / "videos").mkdir(parents=True)
    for i in range(40):
        os.link(video_corpus["h264_high"].path, root / "videos" / f"v{i:02d}.mp4")
    (root / "classnames.txt").write_text("a\n")
    (root / "train.txt").write_text("".join(f"videos/v{i:02d}.mp4 0\n" for i in range(40)))
    manifest = root / "annotations" / "train.manifest.csv"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-m", "gcvideo.cli.main", "data", "check", "--root", str(root),
                             "--workers", "1", "--no-progress"], env=env, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if manifest.is_file() and len(manifest.read_text().splitlines()) - 1 >= 20:
            break
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C: the whole process group, as a terminal sends it
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "run the same command again" in output, output
    done = [r["path"] for r in read_rows(manifest)]
    assert 20 <= len(done) < 40 and len(set(done)) == len(done)
    summary = check_split(root, "train", workers=2, progress=False)
    assert (summary["resumed"], summary["checked"]) == (len(done), 40 - len(done))
    rows = list(read_rows(manifest))
    assert len(rows) == 40 and len({r["path"] for r in rows}) == 40 and summary["clean"] == 40


def test_every_check_option_has_a_help_text():
    parser = argparse.ArgumentParser()
    data_cli.add_arguments(parser)
    check = next(a for a in parser._subparsers._group_actions[0].choices.items() if a[0] == "check")[1]
    options = [a for a in check._actions if a.dest != "help"]
    assert {a.dest for a in options} >= {"root", "split", "out", "workers", "timeout", "backends", "min_frames"}
    assert all(a.help and len(a.help) > 10 for a in options), [a.dest for a in options if not a.help]


def test_data_check_writes_clean_and_bad_lists(tiny_dataset, bad_files, tmp_path):  # noqa: F811
    root = tmp_path / "ds"
    rows = list(csv.reader(open(tiny_dataset / "annotations" / "test.csv")))[1:]
    good = [tiny_dataset / "videos" / "test" / r[0] / f"{r[1]}_{int(r[2]):06d}_{int(r[3]):06d}.mp4" for r in rows]
    lines = [f"{p} 0" for p in good[:2]] + [f"{bad_files[k]} 1" for k in ("missing", "empty", "garbage", "short")]
    root.mkdir()
    (root / "classnames.txt").write_text("a\nb\n")
    (root / "test.txt").write_text("\n".join(lines) + "\n")
    summary = check_split(root, "test", workers=2, timeout=30, min_frames=4, progress=False)
    assert (summary["videos"], summary["clean"], summary["bad"]) == (6, 2, 4)
    clean = (root / "annotations" / "test.clean.csv").read_text().splitlines()
    assert [line.rsplit(" ", 1)[1] for line in clean] == ["0", "0"]
    bad = list(csv.DictReader(open(root / "annotations" / "test.bad.csv")))
    assert [b["reason"].split(":")[0] for b in bad] == ["missing", "empty", "undecodable", "too short"]
    records, fmt, _ = resolve_split(root, "test", ["a", "b"], list_suffix=".clean")
    assert len(records) == 2 and all(p.is_file() for p in map(__import__("pathlib").Path, (r.path for r in records)))


def test_data_check_kinetics_format(tiny_dataset):  # noqa: F811
    summary = check_split(tiny_dataset, "val", workers=1, progress=False)
    assert summary["format"] == "kinetics" and summary["clean"] == 3
    header = (tiny_dataset / "annotations" / "val.clean.csv").read_text().splitlines()[0]
    assert header == "label,youtube_id,time_start,time_end,split"


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
