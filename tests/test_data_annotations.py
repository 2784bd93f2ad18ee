"""Annotation formats: Kinetics CSVs, path-label lists and class folders, class lists, and the numpy video table."""

import pytest
from data_fixtures import kinetics_tree, tiny_dataset, write_kinetics_rows  # noqa: F401

from gcvideo.data.annotations import kinetics400_class_names, resolve_split


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


# --- the compact store: numpy columns shared by DataLoader workers ----------------------------------------
def test_string_column_and_video_table_round_trip():
    import numpy as np

    from gcvideo.data.annotations.video_table import StringColumn, VideoRecord, VideoTable

    strings = ["a.mp4", "", "vidéo à Zürich/ß.webm", "x" * 300]
    column = StringColumn.from_strings(strings)
    assert list(column) == strings and column[-1] == strings[-1] and column[1:3] == strings[1:3]
    assert list(column.take(np.array([3, 0, 0]))) == [strings[3], strings[0], strings[0]]
    assert column.buffer.dtype == np.uint8 and column.offsets.tolist()[-1] == len(column.buffer)
    table = VideoTable(strings, [0, 1, 2, 3], rows=[("p", "0"), ("q", "1"), ("r", "2"), ("s", "3")])
    table.add_column("num_frames", np.array([10, 20, 30, 40]))
    assert table[2] == VideoRecord(strings[2], 2, ("r", "2")) and table.path(2) == strings[2] and table.label(3) == 3
    sub = table[1:3]
    assert [r.path for r in sub] == strings[1:3] and sub.columns["num_frames"].tolist() == [20, 30]
    assert VideoTable.from_records(list(table)).records() == table.records()
    with pytest.raises(ValueError, match="one number per video"):
        table.add_column("fps", np.ones(3))
    with pytest.raises(ValueError, match="one number per video"):
        table.add_column("backend", np.array(["decord"] * 4))
    with pytest.raises(ValueError, match="4 paths but 3 labels"):
        VideoTable(strings, [0, 1, 2])


def test_path_label_list_with_class_names_with_spaces(tmp_path):
    names = kinetics400_class_names()
    lines = ["a b/x.mp4 passing American football (in game)",  # a path with a space, a 5-word class name
             "y.mp4 passing American football (not in game)",
             "z.mp4 arm wrestling",  # 'wrestling' is a class too: the longest name wins
             "w.mp4 wrestling", "t.mp4\tpole vault", "u.mp4 playing_guitar", "v.mp4 12", "s t.mp4   zumba"]
    (tmp_path / "list.txt").write_text("\n".join(lines) + "\n")
    table, fmt, _ = resolve_split(tmp_path, "train", names, list_file=tmp_path / "list.txt")
    assert fmt == "list"
    got = [(r.path[len(str(tmp_path)) + 1:], names[r.label]) for r in table]
    assert got == [("a b/x.mp4", "passing American football (in game)"),
                   ("y.mp4", "passing American football (not in game)"), ("z.mp4", "arm wrestling"),
                   ("w.mp4", "wrestling"), ("t.mp4", "pole vault"), ("u.mp4", "playing guitar"),
                   ("v.mp4", names[12]), ("s t.mp4", "zumba")]


def test_kinetics_csv_finds_any_video_extension_with_one_listing_per_folder(tmp_path, monkeypatch):
    import os

    rows = [("abseiling", "a" * 11, 1, 11, "val"), ("abseiling", "b" * 11, 2, 12, "val"),
            ("zumba", "c" * 11, 3, 13, "val"), ("zumba", "d" * 11, 4, 14, "val"), ("zumba", "e" * 11, 5, 15, "val")]
    kinetics_tree(tmp_path, rows, ["abseiling/aaaaaaaaaaa_000001_000011.mp4",
                                    "abseiling/bbbbbbbbbbb_000002_000012.webm",
                                    "zumba/ccccccccccc_000003_000013.mkv", "zumba/ccccccccccc_000003_000013.MP4",
                                    "zumba/ddddddddddd_000004_000014.txt"])  # not a video: d has no file
    listed = []
    real_listdir = os.listdir
    with monkeypatch.context() as m:  # building the table lists folders; it stats no video
        for name in ("stat", "lstat"):
            m.setattr(os, name, lambda *a, **k: pytest.fail("a video file was stat-ed"))
        m.setattr(os.path, "isfile", lambda *a, **k: pytest.fail("a video file was stat-ed"))
        m.setattr(os, "listdir", lambda p: listed.append(p) or real_listdir(p))
        from gcvideo.data.annotations import read_kinetics_csv

        table = read_kinetics_csv(tmp_path / "annotations" / "val.csv", tmp_path, kinetics400_class_names())
    assert sorted(listed) == sorted(str(tmp_path / "videos" / "val" / c) for c in ("abseiling", "zumba"))
    names = [os.path.basename(r.path) for r in table]
    assert names == ["aaaaaaaaaaa_000001_000011.mp4", "bbbbbbbbbbb_000002_000012.webm",
                     "ccccccccccc_000003_000013.MP4",  # .mp4 before .mkv, whatever the case
                     "ddddddddddd_000004_000014.mp4", "eeeeeeeeeee_000005_000015.mp4"]  # missing: the pattern's
    assert table.columns["file_found"].tolist() == [True, True, True, False, False]
    assert [r.row for r in table][0] == ("abseiling", "a" * 11, "1", "11", "val")


def test_kinetics_header_in_any_order_with_extra_columns(tmp_path):
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations" / "val.csv").write_text(
        "youtube_id,label,time_end,time_start,split,is_cc\nxxxxxxxxxxx,zumba,20,10,val,0\n")
    (r,), fmt, _ = resolve_split(tmp_path, "val", kinetics400_class_names())
    assert fmt == "kinetics" and r.path.endswith("videos/val/zumba/xxxxxxxxxxx_000010_000020.mp4")
    assert r.row == ("zumba", "xxxxxxxxxxx", "10", "20", "val")


def test_a_kinetics_header_missing_a_column_names_it(tmp_path):
    from gcvideo.errors import UserError

    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations" / "val.csv").write_text("label,youtube_id,time_start,split\nzumba,x,10,val\n")
    with pytest.raises(UserError, match=r"val.csv:1: the Kinetics CSV header lacks the column time_end "
                                        r"\(expected label,youtube_id,time_start,time_end,split\)"):
        resolve_split(tmp_path, "val", kinetics400_class_names())


def test_kinetics400_list_is_the_default_only_where_it_is_right(tmp_path):
    from gcvideo.data.annotations import load_class_names
    from gcvideo.errors import UserError

    kinetics, other, indices = tmp_path / "k", tmp_path / "o", tmp_path / "i"
    write_kinetics_rows(kinetics, "train", [("abseiling", "a" * 11, 1, 11, "train"),
                                            ("zumba", "b" * 11, 1, 11, "train")])
    assert load_class_names(kinetics) == kinetics400_class_names()  # all labels are Kinetics-400 names
    write_kinetics_rows(other, "train", [("abseiling", "a" * 11, 1, 11, "train"), ("cat", "b" * 11, 1, 11, "train")])
    with pytest.raises(UserError, match=r"no class list: .*o/classnames.txt is missing and .*train.csv has labels "
                                        r"that are not Kinetics-400 classes \(e.g. 'cat'\)"):
        load_class_names(other)
    (other / "classnames.txt").write_text("abseiling\ncat\n")
    assert load_class_names(other) == ["abseiling", "cat"]
    indices.mkdir()
    (indices / "train.txt").write_text("a.mp4 0\nb.mp4 399\n")  # PySlowFast-style indices
    assert len(load_class_names(indices)) == 400
    (indices / "train.txt").write_text("a.mp4 0\nb.mp4 400\n")
    with pytest.raises(UserError, match="no class list"):
        load_class_names(indices)
    with pytest.raises(UserError, match="does not exist"):
        load_class_names(indices, indices / "nope.txt")
