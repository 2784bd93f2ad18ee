"""Annotation formats of video datasets: which file has which label.

Three formats, each read into a ``VideoTable`` (numpy columns; a ``Sequence[VideoRecord]`` for small uses):
- ``kinetics``: the official CSV with the columns ``label,youtube_id,time_start,time_end,split`` (in any
  order; extra columns such as ``is_cc`` are ignored); the video path follows ``path_pattern`` (fields:
  label, label_underscore, youtube_id, time_start, time_end, split), with any video extension: each
  folder is listed once and ``<youtube_id>_<start>_<end>`` is matched to whichever of .mp4, .webm, .mkv,
  ... is there (yt-dlp writes all of these), without a stat per video;
- ``list``: ``path label`` lines (PySlowFast / pytorchvideo / mmaction2); label is an index or a name,
  tab- or space-separated;
- ``folders``: ``<dir>/<class name>/<video>``.
Class indices always come from a class-name list (``classnames.txt`` in the root or an explicit file),
never from whatever folders exist. Without one, the shipped Kinetics-400 list (alphabetical) is used
only when the dataset's labels are all Kinetics-400 names (or indices below 400).
"""

from __future__ import annotations

import csv
import os
from importlib import resources
from pathlib import Path
from typing import Sequence

import numpy as np

from gcvideo.data.annotations.video_files import VideoFinder, split_video_name
from gcvideo.data.annotations.video_table import VideoTable
from gcvideo.errors import UserError

KINETICS_HEADER: tuple[str, ...] = ("label", "youtube_id", "time_start", "time_end", "split")
DEFAULT_PATH_PATTERN = "videos/{split}/{label}/{youtube_id}_{time_start:06d}_{time_end:06d}.mp4"
FORMATS: tuple[str, ...] = ("auto", "kinetics", "list", "folders")

__all__ = ["DEFAULT_PATH_PATTERN", "FORMATS", "KINETICS_HEADER", "UnknownLabelError", "is_kinetics_csv",
           "kinetics400_class_names", "kinetics_video_name", "load_class_names", "read_kinetics_csv",
           "read_path_label_list", "resolve_split", "scan_class_folders"]


def kinetics_video_name(youtube_id: str, time_start: int, time_end: int) -> str:
    """File name of a Kinetics clip (``DEFAULT_PATH_PATTERN``): ``<youtube_id>_<start:06d>_<end:06d>.mp4``."""
    return f"{youtube_id}_{time_start:06d}_{time_end:06d}.mp4"


class UnknownLabelError(UserError):
    """A label that is not in the class list (``label``: the label as written)."""

    def __init__(self, message: str, label: str) -> None:
        super().__init__(message)
        self.label = label


def kinetics400_class_names() -> list[str]:
    """The 400 Kinetics class names in label order (alphabetical, as torchvision and PySlowFast)."""
    text = resources.files("gcvideo.data.annotations").joinpath("kinetics400_classes.txt").read_text(encoding="utf-8")
    return [line for line in text.splitlines() if line]


def _read_class_file(path: Path) -> list[str]:
    if not path.is_file():
        raise UserError(f"class names file {path} does not exist: give a file with one class name per line")
    names = [n for n in (line.strip() for line in path.read_text(encoding="utf-8").splitlines()) if n]
    if len(set(names)) != len(names):
        raise UserError(f"{path}: duplicate class names")
    return names


def _class_index(class_names: Sequence[str]) -> dict[str, int]:
    index = {n: i for i, n in enumerate(class_names)}
    # real copies often write folder names with underscores instead of spaces
    index.update({n.replace(" ", "_"): i for i, n in enumerate(class_names) if n.replace(" ", "_") not in index})
    return index


def _label(name: str, index: dict[str, int], num_classes: int, where: str) -> int:
    if name.lstrip("-").isdigit():
        k = int(name)
        if not 0 <= k < num_classes:
            raise UnknownLabelError(f"{where}: label index {k} is outside [0, {num_classes})", name)
        return k
    if name not in index:
        raise UnknownLabelError(f"{where}: label {name!r} is not in the class list ({num_classes} classes)", name)
    return index[name]


def _kinetics_columns(header: Sequence[str], where: str) -> list[int] | None:
    """Positions of the Kinetics columns in ``header``; None if it is not a Kinetics header at all."""
    fields = [c.strip() for c in header]
    if not set(fields) & {"youtube_id", "time_start", "time_end"}:
        return None
    missing = [c for c in KINETICS_HEADER if c not in fields]
    if missing:
        raise UserError(f"{where}: the Kinetics CSV header lacks the column{'s' * (len(missing) > 1)} "
                        f"{', '.join(missing)} (expected {','.join(KINETICS_HEADER)})")
    return [fields.index(c) for c in KINETICS_HEADER]


def is_kinetics_csv(path: str | os.PathLike) -> bool:
    """Whether the file starts with a Kinetics header (one that lacks a column raises ``UserError``)."""
    with open(path, newline="", encoding="utf-8") as f:
        first = next(csv.reader(f), [])
    return _kinetics_columns(first, f"{path}:1") is not None


def read_kinetics_csv(csv_path: str | os.PathLike, root: str | os.PathLike, class_names: Sequence[str],
                      path_pattern: str = DEFAULT_PATH_PATTERN, *, find_files: bool = True) -> VideoTable:
    """Videos of an official Kinetics CSV; paths are ``root / path_pattern.format(...)``.

    With ``find_files`` each video folder is listed once and the file is found with any video extension;
    the table's ``file_found`` column then says which rows have no file (they count as unreadable later).
    """
    index, num_classes = _class_index(class_names), len(class_names)
    paths, labels, rows, found = [], [], [], []
    finder = VideoFinder() if find_files else None
    prefix = "" if os.path.isabs(path_pattern) else os.path.join(os.fspath(root), "")
    with open(csv_path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        columns = _kinetics_columns(next(reader, []), f"{csv_path}:1")
        if columns is None:
            raise UserError(f"{csv_path}:1: expected the header {','.join(KINETICS_HEADER)}")
        width = max(columns) + 1
        for line, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) < width:
                raise UserError(f"{csv_path}:{line}: expected {width} fields, got {len(row)}")
            fields = [row[c].strip() for c in columns]
            label, youtube_id, start, end, split = fields
            try:
                time_start, time_end = int(float(start)), int(float(end))
            except ValueError:
                raise UserError(f"{csv_path}:{line}: time_start and time_end must be numbers, got {start!r}, {end!r}")
            path = prefix + path_pattern.format(label=label, label_underscore=label.replace(" ", "_"),
                                                youtube_id=youtube_id, time_start=time_start, time_end=time_end,
                                                split=split)
            if finder is not None:
                existing = finder.find(path)
                found.append(existing is not None)
                path = existing or path
            paths.append(path)
            k = index.get(label)
            labels.append(k if k is not None else _label(label, index, num_classes, f"{csv_path}:{line}"))
            rows.append(fields)
    columns_out = {"file_found": np.array(found, dtype=bool)} if finder is not None else None
    return VideoTable(paths, labels, rows=rows, columns=columns_out)


def _split_label(line: str, index: dict[str, int], max_words: int) -> tuple[str, str]:
    """``(path, label)`` of a ``path label`` line: the label is the last field, or, for class names with
    spaces, the longest trailing run of at most ``max_words`` words that is a class name."""
    if "\t" in line:
        path, label = line.rsplit("\t", 1)
        return path.strip(), label.strip()
    path, _, label = line.rpartition(" ")
    if label.lstrip("-").isdigit() or max_words < 2:
        return path.rstrip(), label
    for words in range(max_words, 0, -1):  # a few dictionary look-ups per line, longest name first
        parts = line.rsplit(" ", words)
        if len(parts) == words + 1:
            candidate = " ".join(parts[1:])
            if candidate in index:
                return parts[0].rstrip(), candidate
    return path.rstrip(), label


def read_path_label_list(list_path: str | os.PathLike, root: str | os.PathLike,
                         class_names: Sequence[str]) -> VideoTable:
    """Videos of a ``path label`` list; relative paths are taken from ``root``."""
    index, num_classes = _class_index(class_names), len(class_names)
    max_words = max((name.count(" ") + 1 for name in index), default=1)
    paths, labels, rows = [], [], []
    root = os.fspath(root)
    for line_no, line in enumerate(Path(list_path).read_text(encoding="utf-8").splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        where = f"{list_path}:{line_no}"
        path, label = _split_label(line, index, max_words)
        if not path:
            raise UserError(f"{where}: expected 'path label', got {line!r}")
        labels.append(_label(label, index, num_classes, where))
        paths.append(os.path.join(root, path))
        rows.append((path, label))
    return VideoTable(paths, labels, rows=rows)


def scan_class_folders(directory: str | os.PathLike, class_names: Sequence[str]) -> VideoTable:
    """Videos of ``directory/<class name>/<video>`` (sorted); a folder not in the class list is an error."""
    index, num_classes = _class_index(class_names), len(class_names)
    paths, labels, rows = [], [], []
    directory = os.fspath(directory)
    for folder in sorted(e.name for e in os.scandir(directory) if e.is_dir()):
        label = _label(folder, index, num_classes, f"{directory}: folder {folder!r}")
        for name in sorted(os.listdir(os.path.join(directory, folder))):
            if split_video_name(name)[1]:
                paths.append(os.path.join(directory, folder, name))
                labels.append(label)
                rows.append((os.path.join(folder, name), str(label)))
    return VideoTable(paths, labels, rows=rows)


def find_annotations(root: str | os.PathLike, split: str, *, annotation_format: str = "auto",
                     list_file: str | os.PathLike | None = None, list_suffix: str = "") -> tuple[str, Path]:
    """The format ("kinetics", "list" or "folders") and the file or folder that annotate ``split``.

    With ``annotation_format="auto"``: ``list_file`` if given, else ``annotations/<split><list_suffix>.csv``,
    ``<split><list_suffix>.csv`` or ``.txt`` in the root (Kinetics CSV if it has the header, else a
    ``path label`` list), else the class folders ``videos/<split>`` or ``<split>``.
    """
    if annotation_format not in FORMATS:
        raise UserError(f"unknown annotation_format {annotation_format!r}; valid: {', '.join(FORMATS)}")
    root = Path(root)
    if list_file is None and annotation_format != "folders":
        for candidate in (root / "annotations" / f"{split}{list_suffix}.csv", root / f"{split}{list_suffix}.csv",
                          root / "annotations" / f"{split}{list_suffix}.txt", root / f"{split}{list_suffix}.txt"):
            if candidate.is_file():
                list_file = candidate
                break
    if annotation_format == "folders" or (annotation_format == "auto" and list_file is None):
        for folder in (root / "videos" / split, root / split):
            if folder.is_dir():
                return "folders", folder
        raise UserError(f"no annotations for split {split!r} under {root} (looked for annotations/{split}"
                        f"{list_suffix}.csv, {split}{list_suffix}.txt, videos/{split}/): check data.init_args.root")
    if list_file is None:
        raise UserError(f"no annotation file for split {split!r} under {root} (looked for annotations/{split}"
                        f"{list_suffix}.csv and {split}{list_suffix}.txt): check data.init_args.root")
    if not Path(list_file).is_file():
        raise UserError(f"annotation file {list_file} does not exist")
    kinetics = annotation_format == "kinetics" or (annotation_format == "auto" and is_kinetics_csv(list_file))
    return ("kinetics" if kinetics else "list"), Path(list_file)


def resolve_split(root: str | os.PathLike, split: str, class_names: Sequence[str], *, annotation_format: str = "auto",
                  list_file: str | os.PathLike | None = None, list_suffix: str = "",
                  path_pattern: str = DEFAULT_PATH_PATTERN, find_files: bool = True) -> tuple[VideoTable, str, str]:
    """Videos of a split, the format used and the source (list file or folder); see ``find_annotations``."""
    fmt, source = find_annotations(root, split, annotation_format=annotation_format, list_file=list_file,
                                   list_suffix=list_suffix)
    if fmt == "folders":
        return scan_class_folders(source, class_names), fmt, str(source)
    if fmt == "kinetics":
        return read_kinetics_csv(source, root, class_names, path_pattern, find_files=find_files), fmt, str(source)
    return read_path_label_list(source, root, class_names), fmt, str(source)


def load_class_names(root: str | os.PathLike | None = None, class_names_file: str | os.PathLike | None = None, *,
                     splits: Sequence[str] = ("train", "val", "test"),
                     list_files: Sequence[str | os.PathLike | None] = ()) -> list[str]:
    """Class names from ``class_names_file``, else ``root/classnames.txt``, else the Kinetics-400 list.

    The Kinetics-400 list is the default only where it is right: the labels of the first annotations
    found (``list_files``, then ``splits`` of ``root``) must all be Kinetics-400 names or indices below
    400; otherwise the class list is missing and a ``UserError`` says so.
    """
    if class_names_file is not None:
        return _read_class_file(Path(class_names_file))
    if root is not None and (Path(root) / "classnames.txt").is_file():
        return _read_class_file(Path(root) / "classnames.txt")
    names = kinetics400_class_names()
    if root is None:
        return names
    sources = [("kinetics" if is_kinetics_csv(f) else "list", Path(f)) for f in list_files
               if f is not None and Path(f).is_file()]
    for split in splits:
        try:
            sources.append(find_annotations(root, split))
        except UserError:
            continue
    if not sources:
        return names  # no annotations at all: reading a split will say so
    fmt, source = sources[0]
    try:
        if fmt == "folders":
            scan_class_folders(source, names)
        elif fmt == "kinetics":
            with open(source, newline="", encoding="utf-8") as f:  # only the label column
                reader = csv.reader(f)
                column = _kinetics_columns(next(reader, []), f"{source}:1")[0]
                labels = {row[column].strip() for row in reader if len(row) > column}
            index = _class_index(names)
            for label in sorted(labels):
                _label(label, index, len(names), str(source))
        else:
            read_path_label_list(source, root, names)
    except UnknownLabelError as e:
        raise UserError(f"no class list: {Path(root) / 'classnames.txt'} is missing and {source} has labels that are "
                        f"not Kinetics-400 classes (e.g. {e.label!r}): write the class names there, one per line "
                        f"in label order, or set data.init_args.class_names_file") from None
    return names
