"""What a split's numbers rest on (``SplitRecord``): the list's and classes' sha256 against hashlib on the files,
the counts of listed, found and missing videos, a manifest's bad and partial rows, and ``max_missing``."""

from __future__ import annotations

import hashlib
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
from data_fixtures import tiny_dataset  # noqa: F401

from gcvideo.data import KineticsDataModule
from gcvideo.data.datamodules.split_record import SplitRecord, lines_sha256
from gcvideo.data.decoding.manifest import ManifestRow, ManifestWriter, manifest_path
from gcvideo.data.decoding.video_info import VideoInfo
from gcvideo.errors import UserError

SMALL = dict(frames=4, stride=2, train_short_side=(24, 28), train_crop=20, val_short_side=24, val_crop=20,
             test_short_side=24, test_crop=24, test_clips=2, test_crops=3, num_workers=0, batch_size=4)


@pytest.fixture
def one_train_video_gone(tiny_dataset, tmp_path):  # noqa: F811
    """A copy of the tiny dataset (6 training videos) with one training video deleted (1/6 = 17 % missing)."""
    root = tmp_path / "data"
    shutil.copytree(tiny_dataset, root)
    gone = sorted((root / "videos" / "train").rglob("*.mp4"))[0]
    gone.unlink()
    return root, gone


def _sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_training_record_counts_and_hashes_the_files(one_train_video_gone, caplog):
    root, gone = one_train_video_gone
    dm = KineticsDataModule(str(root), **SMALL)
    with caplog.at_level(logging.WARNING, logger="gcvideo.data.datamodules.split_record"):
        dm.setup("fit")
    names = (root / "classnames.txt").read_text(encoding="utf-8")
    assert names.endswith("\n")
    assert dm.split_records["train"].as_json() == {
        "split": "train", "list": str(root / "annotations" / "train.csv"),
        "list_sha256": _sha256(root / "annotations" / "train.csv"),
        "classes_sha256": hashlib.sha256(names.encode()).hexdigest(),  # the class file as written
        "listed": 6, "found": 5, "missing": 1, "undecodable": None, "partial": None, "manifest": None,
        "decoder": "auto"}
    (warning,) = [r.getMessage() for r in caplog.records if r.name.endswith("split_record")]  # one line
    assert warning.startswith(f"1 of the 6 videos listed in {root / 'annotations' / 'train.csv'} (16.7%) are "
                              "missing (1 without a file)") and "\n" not in warning


def test_max_missing_refuses_to_train_above_it(one_train_video_gone):
    root, _ = one_train_video_gone
    KineticsDataModule(str(root), **SMALL, max_missing=0.2).setup("fit")  # 1/6 is below 0.2
    with pytest.raises(UserError, match=r"\(16\.7%\) are missing .*above data.init_args.max_missing 0.1") as error:
        KineticsDataModule(str(root), **SMALL, max_missing=0.1).setup("fit")
    assert "\n" not in str(error.value)
    with pytest.raises(UserError, match=r"max_missing must be a fraction in \[0, 1\], got 1.5"):
        KineticsDataModule(str(root), **SMALL, max_missing=1.5)


def test_fit_with_max_missing_exits_with_one_line(one_train_video_gone, tmp_path, capsys):
    from training_fixtures import SYNTH_VIDEO_CONFIG, TINY_VIDEO_OVERRIDES, run_dir_args

    from gcvideo.cli.main import main

    root, _ = one_train_video_gone
    code = main(["fit", "--config", str(SYNTH_VIDEO_CONFIG), *TINY_VIDEO_OVERRIDES, f"--data.init_args.root={root}",
                 "--data.init_args.max_missing=0.05", *run_dir_args(tmp_path / "run")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("gcvideo fit: error: 1 of the 6 videos listed")
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_a_manifest_gives_the_undecodable_and_partial_counts(tiny_dataset, tmp_path):  # noqa: F811
    root = tmp_path / "data"
    shutil.copytree(tiny_dataset, root)
    dm = KineticsDataModule(str(root), **SMALL)
    paths = list(dm.records("test").paths)
    with ManifestWriter(manifest_path(root / "annotations", "test")) as writer:
        for path, status in zip(paths, ["ok", "partial", "bad", "ok"]):  # 2 of the 6 videos have no row
            info = VideoInfo(frames=16, fps=16.0, backend="pyav_sequential" if status == "partial" else "pyav",
                             checked=True)
            writer.write(ManifestRow(Path(path).relative_to(root).as_posix(), status, "", info))
    dm.setup("test")
    record = dm.split_records["test"]
    assert (record.manifest_count("bad"), record.manifest_count("partial"), record.manifest_count("ok")) == (1, 1, 2)
    assert record.manifest == str(manifest_path(root / "annotations", "test"))
    status = np.array([0, 0, 1, 0, 2, 0])  # video 2 (bad) unreadable, video 4 incomplete
    tested = record.tested(status)
    evaluated_sha = hashlib.sha256(b"0\n1\n3\n5\n").hexdigest()
    assert {k: tested[k] for k in ("listed", "evaluated", "missing", "undecodable", "partial", "backends")} == {
        "listed": 6, "evaluated": 4, "missing": 0, "undecodable": 1, "partial": 1,
        "backends": {"pyav": 3, "pyav_sequential": 1}}  # the backends asked first for the evaluated videos
    assert tested["evaluated_sha256"] == evaluated_sha
    assert tested["fingerprint"] == lines_sha256([tested["list_sha256"], tested["classes_sha256"], evaluated_sha])
    assert tested["classes"] == dm.class_names


def test_a_class_folder_list_is_hashed_by_its_lines(tmp_path):
    folder = tmp_path / "val"
    for name in ("b/2.mp4", "a/1.mp4"):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(b"x")
    from gcvideo.data.annotations import resolve_split

    table, fmt, source = resolve_split(tmp_path, "val", ["a", "b"])
    record = SplitRecord.build("val", table, source, ["a", "b"], "auto")
    assert fmt == "folders" and record.listed == 2 and record.missing == 0
    assert record.list_sha256 == hashlib.sha256(b"a/1.mp4\t0\nb/2.mp4\t1\n").hexdigest()
