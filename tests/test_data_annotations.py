import csv

import pytest

from data_fixtures import bad_files, tiny_dataset, write_kinetics_rows  # noqa: F401
from gcvideo.data.annotations import kinetics400_class_names, resolve_split
from gcvideo.data.check import check_split


def test_kinetics_class_list_is_alphabetical():
    names = kinetics400_class_names()
    assert len(names) == 400 and names == sorted(names) and names[0] == "abseiling"


def test_three_formats_agree(tiny_dataset, tmp_path):  # noqa: F811
    names = (tiny_dataset / "classnames.txt").read_text().splitlines()
    kin, fmt, _ = resolve_split(tiny_dataset, "train", names)
    assert fmt == "kinetics" and len(kin) == 6
    folders, fmt, _ = resolve_split(tiny_dataset, "train", names, annotation_format="folders")
    assert fmt == "folders" and sorted((r.path, r.label) for r in folders) == sorted((r.path, r.label) for r in kin)
    lines = [f"{r.path} {r.label}" if i % 2 else f"{r.path} {names[r.label]}" for i, r in enumerate(kin)]
    (tmp_path / "train.txt").write_text("\n".join(lines) + "\n")
    listed, fmt, _ = resolve_split(tiny_dataset, "train", names, list_file=tmp_path / "train.txt")
    assert fmt == "list" and [(r.path, r.label) for r in listed] == [(r.path, r.label) for r in kin]


def test_unknown_label_names_file_and_line(tmp_path):
    write_kinetics_rows(tmp_path, "val", [("abseiling", "a" * 11, 1, 11, "val"), ("not a class", "b" * 11, 1, 11, "val")])
    with pytest.raises(ValueError, match=r"val.csv:3: label 'not a class'"):
        resolve_split(tmp_path, "val", kinetics400_class_names())
    (tmp_path / "list.txt").write_text("x.mp4 7\ny.mp4 400\n")
    with pytest.raises(ValueError, match=r"list.txt:2"):
        resolve_split(tmp_path, "val", kinetics400_class_names(), list_file=tmp_path / "list.txt")


def test_path_pattern_and_quoted_labels(tmp_path):
    write_kinetics_rows(tmp_path, "train", [("passing American football (in game)", "x" * 11, 5, 15, "train")])
    names = kinetics400_class_names()
    (r,), _, _ = resolve_split(tmp_path, "train", names, path_pattern="{split}/{label_underscore}/{youtube_id}.mp4")
    assert r.path.endswith("train/passing_American_football_(in_game)/xxxxxxxxxxx.mp4")
    assert names[r.label] == "passing American football (in game)"


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
