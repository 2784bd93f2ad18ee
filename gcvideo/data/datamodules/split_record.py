"""What the numbers of a split rest on: its list and class list, with their sha256, and how many of the
listed videos have a file, decode, or decode only in part.

GCNet's Kinetics-400 figures (arXiv 1904.11492, Sec. 5) depend on the copy of the dataset: copies differ by
thousands of videos, and a top-1 gap of half a point can come from a validation copy that lacks 57 videos.
``gcvideo fit`` therefore records its training list (``fit.json``) and ``gcvideo test`` its test list
(``test/results.json``, ``dataset``), both from a ``SplitRecord`` that the data module builds with the
dataset:

- ``list``, ``list_sha256``: the annotation file (its bytes' sha256), or a class folder (the sha256 of its
  ``relative/path<TAB>label`` lines, in the order read);
- ``classes_sha256``: the sha256 of the class names one per line (a ``classnames.txt``), which fixes their order;
- ``listed``, ``found``, ``missing``: rows of the list, rows with a video file, rows without one;
- ``undecodable``, ``partial``: with a ``gcvideo data check`` manifest beside the list, its ``bad`` and
  ``partial`` rows; without one, unknown (null) until a test observes which videos fail;
- ``decoder`` and ``backends``: the data option and, per backend, the videos it is asked to read first.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from gcvideo.data.annotations.video_table import VideoTable
from gcvideo.data.decoding.decoders import BACKEND_NAMES, DECODER_NAMES, DEFAULT_BACKEND, Decoder
from gcvideo.data.decoding.manifest import STATUSES, VideoInfoTable
from gcvideo.errors import UserError

log = logging.getLogger(__name__)

# Above this fraction of unusable training videos, ``gcvideo fit`` warns before the first step.
WARN_MISSING_ABOVE = 0.05


def file_sha256(path: str | os.PathLike) -> str:
    """The sha256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def lines_sha256(lines: Iterable[str]) -> str:
    """The sha256 of the lines written one per line, each ending with a newline (UTF-8)."""
    digest = hashlib.sha256()
    for line in lines:
        digest.update(f"{line}\n".encode("utf-8"))
    return digest.hexdigest()


@dataclass
class SplitRecord:
    """One split as read: the list, the classes and per-video facts known before decoding (module docstring)."""

    split: str
    list_file: str
    list_sha256: str
    class_names: list[str]
    file_found: np.ndarray  # bool per video
    backends: np.ndarray  # int8 per video: the backend asked first, an index into ``backend_names``
    backend_names: tuple[str, ...]
    decoder: str
    manifest: str | None = None
    manifest_status: np.ndarray | None = None  # int8 per video: index in STATUSES, -1 for no row

    @classmethod
    def build(cls, split: str, table: VideoTable, source: str, class_names: Sequence[str], decoder: str,
              video_infos: VideoInfoTable | None = None) -> SplitRecord:
        """The record of ``table``, read from ``source`` (a list file or a class folder)."""
        if Path(source).is_file():
            list_sha = file_sha256(source)
        else:
            list_sha = lines_sha256(f"{Path(os.path.relpath(p, source)).as_posix()}\t{int(label)}"
                                    for p, label in zip(table.paths, table.labels))
        found = table.columns.get("file_found")
        if found is None:
            found = np.array([os.path.isfile(p) for p in table.paths], dtype=bool)
        # numpy columns, not a list per video: DataLoader workers share the data module's pages (video_table)
        names = BACKEND_NAMES if decoder in DECODER_NAMES else (decoder,)
        first = names.index(DEFAULT_BACKEND if decoder == Decoder.AUTO.value else decoder)
        backends = np.full(len(table), first, dtype=np.int8)
        if video_infos is not None and decoder == Decoder.AUTO.value:
            present = video_infos.columns["present"]
            backends[present] = video_infos.columns["backend"][present]  # the manifest's indices into BACKEND_NAMES
        return cls(split, str(source), list_sha, list(class_names), np.asarray(found, dtype=bool), backends, names,
                   decoder, None if video_infos is None else video_infos.source,
                   None if video_infos is None else video_infos.columns["status"])

    @property
    def listed(self) -> int:
        return len(self.file_found)

    @property
    def missing(self) -> int:
        return int((~self.file_found).sum())

    def manifest_count(self, status: str) -> int | None:
        """Listed videos whose manifest row has ``status`` (None without a manifest)."""
        if self.manifest_status is None:
            return None
        return int((self.manifest_status == STATUSES.index(status)).sum())

    @property
    def unusable(self) -> int:
        """Videos known unusable before decoding: no file, or a manifest row ``bad`` (with a file)."""
        bad = np.zeros_like(self.file_found) if self.manifest_status is None else (
            self.manifest_status == STATUSES.index("bad"))
        return int((~self.file_found | bad).sum())

    def common(self) -> dict[str, Any]:
        """The list, its sha256 and the classes' sha256."""
        return {"split": self.split, "list": self.list_file, "list_sha256": self.list_sha256,
                "classes_sha256": lines_sha256(self.class_names)}

    def as_json(self) -> dict[str, Any]:
        """What is known before decoding (``fit.json``'s ``train``)."""
        return {**self.common(), "listed": self.listed, "found": self.listed - self.missing, "missing": self.missing,
                "undecodable": self.manifest_count("bad"), "partial": self.manifest_count("partial"),
                "manifest": self.manifest, "decoder": self.decoder}

    def tested(self, status: np.ndarray) -> dict[str, Any]:
        """What a test observed: ``status`` per video (0 evaluated, 1 unreadable, 2 incomplete; the multi-view
        metric's codes). ``undecodable`` counts the videos with a file that the test could not read;
        ``fingerprint`` is the sha256 of the list's, the classes' and the evaluated videos' sha256."""
        status = np.asarray(status)
        evaluated = np.flatnonzero(status == 0)
        evaluated_sha = lines_sha256(str(i) for i in evaluated)
        common = self.common()
        fingerprint = lines_sha256([common["list_sha256"], common["classes_sha256"], evaluated_sha])
        return {**common, "classes": self.class_names, "listed": self.listed, "evaluated": len(evaluated),
                "missing": self.missing, "undecodable": int(((status == 1) & self.file_found).sum()),
                "partial": self.manifest_count("partial"), "manifest": self.manifest, "decoder": self.decoder,
                "backends": {self.backend_names[b]: int(n) for b, n in
                             zip(*np.unique(self.backends[evaluated], return_counts=True))},
                "evaluated_sha256": evaluated_sha, "fingerprint": fingerprint}


def check_usable(record: SplitRecord, max_missing: float | None, *, warn: bool = True) -> None:
    """Warn (one line, if ``warn``) when more than 5 % of the listed videos are known unusable; refuse above
    ``max_missing``.

    Raises:
        UserError: the fraction exceeds ``max_missing`` (``data.init_args.max_missing``).
    """
    if record.listed == 0:
        return
    fraction = record.unusable / record.listed
    bad = record.manifest_count("bad")
    what = (f"{record.unusable:,} of the {record.listed:,} videos listed in {record.list_file} ({fraction:.1%}) are "
            f"missing ({record.missing:,} without a file" + (f", {bad:,} undecodable per the manifest)" if bad
                                                            else ")"))
    if max_missing is not None and fraction > max_missing:
        raise UserError(f"{what}: above data.init_args.max_missing {max_missing:g}; fix the copy or train on "
                        f"the clean list of `gcvideo data check`")
    if warn and fraction > WARN_MISSING_ABOVE:
        log.warning("%s: training replaces them by other videos; `gcvideo data check` writes a clean list", what)
