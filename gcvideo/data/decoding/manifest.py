"""The per-video manifest of ``gcvideo data check``: one CSV row per video, read back as columns.

Rows are appended and flushed as videos are checked, so an interrupted run keeps what it did and a
rerun skips the videos whose row is there (same size and modification time). Datasets read the
manifest as numpy columns aligned to their videos (``VideoInfoTable``): exact frame counts without
opening files, the backend per file, and the decodable range of partly damaged files.

Columns: ``path`` (relative to the dataset root), ``status`` (ok: every frame decodes; partial: a
contiguous part decodes; bad: nothing usable), ``reason`` (why bad or partial, or why not decord),
``backend``, ``frames`` and ``first_frame`` (the decodable range), ``container_frames`` (what the
container lists), ``fps``, ``duration`` (seconds), ``width``, ``height`` (stored picture), ``rotation``
(degrees counter-clockwise, as shown), ``codec``, ``vfr``, ``size`` (bytes) and ``mtime``.
"""

from __future__ import annotations

import csv
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from gcvideo.data.decoding.decoders import BACKEND_NAMES, DEFAULT_BACKEND
from gcvideo.data.decoding.video_info import VideoInfo

COLUMNS: tuple[str, ...] = ("path", "status", "reason", "backend", "frames", "first_frame", "container_frames",
                            "fps", "duration", "width", "height", "rotation", "codec", "vfr", "size", "mtime")
STATUSES: tuple[str, ...] = ("ok", "partial", "bad")


def manifest_path(directory: str | os.PathLike, split: str) -> Path:
    """Where ``gcvideo data check`` writes the manifest of ``split``."""
    return Path(directory) / f"{split}.manifest.csv"


def file_stamp(path: str | os.PathLike) -> tuple[int, float]:
    """(size, mtime) of a file, (-1, 0) when it is missing: a manifest row is reused only if they match."""
    try:
        stat = os.stat(path)
    except OSError:
        return -1, 0.0
    return stat.st_size, round(stat.st_mtime, 3)


@dataclass
class ManifestRow:
    """One video's row: its status, the reason, and what decoders need (``info``)."""

    path: str
    status: str
    reason: str = ""
    info: VideoInfo = field(default_factory=lambda: VideoInfo(frames=0, fps=0.0, backend=DEFAULT_BACKEND, checked=True))
    container_frames: int = 0
    size: int = -1
    mtime: float = 0.0

    def to_csv(self) -> list[str]:
        info = asdict(self.info)
        values = {**info, "path": self.path, "status": self.status, "reason": self.reason,
                  "container_frames": self.container_frames, "size": self.size, "mtime": self.mtime}
        values["fps"], values["duration"] = f"{self.info.fps:.10g}", f"{self.info.duration:.4f}"
        values["vfr"] = int(self.info.vfr)
        return [str(values[c]) for c in COLUMNS]

    @classmethod
    def from_csv(cls, row: dict[str, str]) -> "ManifestRow":
        info = VideoInfo(frames=int(row["frames"]), fps=float(row["fps"]), first_frame=int(row["first_frame"]),
                         duration=float(row["duration"]), width=int(row["width"]), height=int(row["height"]),
                         rotation=int(row["rotation"]), codec=row["codec"], backend=row["backend"],
                         vfr=row["vfr"] == "1", checked=True)
        return cls(row["path"], row["status"], row["reason"], info, int(row["container_frames"]),
                   int(row["size"]), float(row["mtime"]))


def read_rows(path: str | os.PathLike) -> Iterable[dict[str, str]]:
    """Rows of a manifest as dicts; a torn last line (an interrupted write) or foreign row is skipped."""
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None:
            return
        if tuple(header) != COLUMNS:
            raise ValueError(f"{path}: not a gcvideo manifest (expected the header {','.join(COLUMNS)})")
        for values in reader:
            if len(values) == len(COLUMNS) and values[1] in STATUSES and values[3] in BACKEND_NAMES:
                yield dict(zip(COLUMNS, values))


class ManifestWriter:
    """Appends rows to a manifest, flushing each one (the header is written when the file is new)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        new = not self.path.is_file() or self.path.stat().st_size == 0
        if not new:
            with open(self.path, "rb") as f:  # a torn last line would glue onto the next row
                f.seek(-1, os.SEEK_END)
                torn = f.read(1) != b"\n"
        self.file = open(self.path, "a", newline="", encoding="utf-8")
        if not new and torn:
            self.file.write("\n")
        self.writer = csv.writer(self.file)
        if new:
            self.writer.writerow(COLUMNS)
        self.file.flush()

    def write(self, row: ManifestRow) -> None:
        self.writer.writerow(row.to_csv())
        self.file.flush()

    def close(self) -> None:
        self.file.close()

    def __enter__(self) -> "ManifestWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class VideoInfoTable:
    """Manifest columns aligned to a list of videos (numpy arrays: about 30 bytes per video).

    ``table[i]`` is the checked ``VideoInfo`` of video ``i``, or None when the manifest has no row for it.
    """

    def __init__(self, columns: dict[str, np.ndarray], codecs: Sequence[str]) -> None:
        self.columns, self.codecs = columns, list(codecs)

    def __len__(self) -> int:
        return len(self.columns["present"])

    def __getitem__(self, index: int) -> VideoInfo | None:
        c = self.columns
        if not c["present"][index]:
            return None
        return VideoInfo(frames=int(c["frames"][index]), fps=float(c["fps"][index]),
                         first_frame=int(c["first_frame"][index]), duration=float(c["duration"][index]),
                         width=int(c["width"][index]), height=int(c["height"][index]),
                         rotation=int(c["rotation"][index]), codec=self.codecs[c["codec"][index]],
                         backend=BACKEND_NAMES[c["backend"][index]], vfr=bool(c["vfr"][index]), checked=True)

    @property
    def found(self) -> int:
        """How many of the videos have a row."""
        return int(self.columns["present"].sum())

    @classmethod
    def from_manifest(cls, manifest: str | os.PathLike, root: str | os.PathLike,
                      video_paths: Sequence[str]) -> "VideoInfoTable":
        """Rows of ``manifest`` for ``video_paths`` (absolute, or relative to ``root``), in their order."""
        rows = sorted(read_rows(manifest), key=lambda r: r["path"])
        keys = np.array([r["path"] for r in rows], dtype=object)
        wanted = [Path(os.path.relpath(p, root)).as_posix() for p in video_paths]
        where = np.searchsorted(keys, np.array(wanted, dtype=object)) if len(keys) else np.zeros(len(wanted), int)
        where = np.minimum(where, max(len(keys) - 1, 0))
        present = np.array([len(keys) > 0 and keys[w] == p for w, p in zip(where, wanted)], dtype=bool)
        codecs = sorted({r["codec"] for r in rows})
        pick = [rows[w] if ok else None for w, ok in zip(where, present)]

        def column(name: str, dtype, convert=float) -> np.ndarray:
            return np.array([convert(r[name]) if r is not None else 0 for r in pick], dtype=dtype)

        columns = {
            "present": present,
            "frames": column("frames", np.int32, int), "first_frame": column("first_frame", np.int32, int),
            "fps": column("fps", np.float64), "duration": column("duration", np.float32),
            "width": column("width", np.int32, int), "height": column("height", np.int32, int),
            "rotation": column("rotation", np.int16, int), "vfr": column("vfr", bool, lambda v: v == "1"),
            "backend": column("backend", np.int8, BACKEND_NAMES.index),
            "codec": column("codec", np.int16, codecs.index),
        }
        # a bad video keeps no frames, so decoding it raises at once (without opening the file)
        columns["frames"][np.array([r is not None and r["status"] == "bad" for r in pick], dtype=bool)] = 0
        return cls(columns, codecs)
