"""Annotation formats of video datasets (issue 3): which file has which label.

Three formats, all returning ``VideoRecord(path, label)`` lists:
- ``kinetics``: the official CSV ``label,youtube_id,time_start,time_end,split``; the video path follows
  ``path_pattern`` (fields: label, label_underscore, youtube_id, time_start, time_end, split);
- ``list``: ``path label`` lines (PySlowFast / pytorchvideo / mmaction2); label is an index or a name,
  tab- or space-separated;
- ``folders``: ``<dir>/<class name>/<video>``.
Class indices always come from a class-name list (``classnames.txt`` in the root, an explicit file, or
the shipped Kinetics-400 list, which is alphabetical), never from whatever folders exist.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

KINETICS_HEADER: tuple[str, ...] = ("label", "youtube_id", "time_start", "time_end", "split")
DEFAULT_PATH_PATTERN = "videos/{split}/{label}/{youtube_id}_{time_start:06d}_{time_end:06d}.mp4"
FORMATS: tuple[str, ...] = ("auto", "kinetics", "list", "folders")
VIDEO_EXTENSIONS: tuple[str, ...] = (".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v")


@dataclass(frozen=True)
class VideoRecord:
    """One annotated video: its path, its class index, and its source row (for the clean lists)."""

    path: str
    label: int
    row: tuple[str, ...] = ()


def kinetics400_class_names() -> list[str]:
    """The 400 Kinetics class names in label order (alphabetical, as torchvision and PySlowFast)."""
    text = resources.files("gcvideo.data").joinpath("kinetics400_classes.txt").read_text(encoding="utf-8")
    return [line for line in text.splitlines() if line]


def load_class_names(root: str | os.PathLike | None = None, class_names_file: str | os.PathLike | None = None) -> list[str]:
    """Class names from ``class_names_file``, else ``root/classnames.txt``, else the Kinetics-400 list."""
    if class_names_file is None and root is not None and (Path(root) / "classnames.txt").is_file():
        class_names_file = Path(root) / "classnames.txt"
    if class_names_file is None:
        return kinetics400_class_names()
    names = [line.strip() for line in Path(class_names_file).read_text(encoding="utf-8").splitlines()]
    names = [n for n in names if n]
    if len(set(names)) != len(names):
        raise ValueError(f"{class_names_file}: duplicate class names")
    return names


def _class_index(class_names: list[str]) -> dict[str, int]:
    index = {n: i for i, n in enumerate(class_names)}
    # real copies often write folder names with underscores instead of spaces
    index.update({n.replace(" ", "_"): i for i, n in enumerate(class_names) if n.replace(" ", "_") not in index})
    return index


def _label(name: str, index: dict[str, int], where: str) -> int:
    if name not in index:
        raise ValueError(f"{where}: label {name!r} is not in the class list ({len(set(index.values()))} classes)")
    return index[name]


def is_kinetics_csv(path: str | os.PathLike) -> bool:
    with open(path, newline="", encoding="utf-8") as f:
        first = next(csv.reader(f), [])
    return tuple(c.strip() for c in first[:5]) == KINETICS_HEADER


def read_kinetics_csv(csv_path: str | os.PathLike, root: str | os.PathLike, class_names: list[str],
                      path_pattern: str = DEFAULT_PATH_PATTERN) -> list[VideoRecord]:
    """Records of an official Kinetics CSV; paths are ``root / path_pattern.format(...)``."""
    index = _class_index(class_names)
    records = []
    with open(csv_path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader, [])
        if tuple(c.strip() for c in header[:5]) != KINETICS_HEADER:
            raise ValueError(f"{csv_path}:1: expected the header {','.join(KINETICS_HEADER)}")
        for line, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) < 5:
                raise ValueError(f"{csv_path}:{line}: expected 5 fields, got {len(row)}")
            label, youtube_id, start, end, split = (c.strip() for c in row[:5])
            fields = dict(label=label, label_underscore=label.replace(" ", "_"), youtube_id=youtube_id,
                          time_start=int(float(start)), time_end=int(float(end)), split=split)
            path = os.path.join(root, path_pattern.format(**fields))
            records.append(VideoRecord(path, _label(label, index, f"{csv_path}:{line}"), tuple(row)))
    return records


def read_path_label_list(list_path: str | os.PathLike, root: str | os.PathLike, class_names: list[str]) -> list[VideoRecord]:
    """Records of a ``path label`` list; relative paths are taken from ``root``."""
    index = _class_index(class_names)
    records = []
    for line_no, line in enumerate(Path(list_path).read_text(encoding="utf-8").splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        where = f"{list_path}:{line_no}"
        if "\t" in line:
            path, label = (s.strip() for s in line.rsplit("\t", 1))
        else:
            path, _, label = line.rpartition(" ")
            if not label.lstrip("-").isdigit():  # a name, maybe with spaces: longest matching suffix
                names = [n for n in index if line.endswith(" " + n)]
                if names:
                    label = max(names, key=len)
                    path = line[: -len(label) - 1].rstrip()
        if not path:
            raise ValueError(f"{where}: expected 'path label', got {line!r}")
        if label.lstrip("-").isdigit():
            k = int(label)
            if not 0 <= k < len(class_names):
                raise ValueError(f"{where}: label index {k} is outside [0, {len(class_names)})")
        else:
            k = _label(label, index, where)
        records.append(VideoRecord(os.path.join(root, path), k, (path, label)))
    return records


def scan_class_folders(directory: str | os.PathLike, class_names: list[str]) -> list[VideoRecord]:
    """Records of ``directory/<class name>/<video>`` (sorted); a folder not in the class list is an error."""
    index = _class_index(class_names)
    records = []
    for folder in sorted(p for p in Path(directory).iterdir() if p.is_dir()):
        label = _label(folder.name, index, f"{directory}: folder {folder.name!r}")
        for file in sorted(folder.iterdir()):
            if file.suffix.lower() in VIDEO_EXTENSIONS:
                rel = os.path.relpath(file, directory)
                records.append(VideoRecord(str(file), label, (rel, str(label))))
    return records


def resolve_split(root: str | os.PathLike, split: str, class_names: list[str], *, annotation_format: str = "auto",
                  list_file: str | os.PathLike | None = None, list_suffix: str = "",
                  path_pattern: str = DEFAULT_PATH_PATTERN) -> tuple[list[VideoRecord], str, str]:
    """Records of a split, the format used and the source (list file or folder).

    With ``annotation_format="auto"``: ``list_file`` if given, else ``annotations/<split><list_suffix>.csv``,
    ``<split><list_suffix>.csv`` or ``.txt`` in the root (Kinetics CSV if it has the header, else a
    ``path label`` list), else the class folders ``videos/<split>`` or ``<split>``.
    """
    if annotation_format not in FORMATS:
        raise ValueError(f"unknown annotation_format {annotation_format!r}; valid: {', '.join(FORMATS)}")
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
                return scan_class_folders(folder, class_names), "folders", str(folder)
        raise FileNotFoundError(f"no annotations for split {split!r} under {root} "
                                f"(looked for annotations/{split}{list_suffix}.csv, {split}.txt, videos/{split}/)")
    if list_file is None:
        raise FileNotFoundError(f"no annotation file for split {split!r} under {root}")
    kinetics = is_kinetics_csv(list_file)
    if annotation_format == "kinetics" or (annotation_format == "auto" and kinetics):
        return read_kinetics_csv(list_file, root, class_names, path_pattern), "kinetics", str(list_file)
    return read_path_label_list(list_file, root, class_names), "list", str(list_file)
