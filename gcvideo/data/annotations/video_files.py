"""Video files found by name with any extension, from one directory listing per folder.

A Kinetics copy downloaded with yt-dlp holds ``<youtube_id>_<start>_<end>`` as .mp4, .webm or .mkv (and
sometimes .avi, .mov, .m4v), whatever the annotation says. Checking each candidate with a stat costs one
file-system round trip per row and extension (over a million for Kinetics-400 on a network disk);
listing each class folder once costs 400.
"""

from __future__ import annotations

import os

VIDEO_EXTENSIONS: tuple[str, ...] = (".mp4", ".webm", ".mkv", ".avi", ".mov", ".m4v")  # preferred first


def split_video_name(name: str) -> tuple[str, str]:
    """``("abc", ".webm")`` for "abc.webm"; ``(name, "")`` when it has no video extension."""
    stem, dot, ext = name.rpartition(".")
    return (stem, "." + ext) if dot and "." + ext.lower() in VIDEO_EXTENSIONS else (name, "")


class VideoFinder:
    """Finds ``folder/<stem>.<any video extension>`` from one listing per folder (no stat per video)."""

    def __init__(self) -> None:
        self._names: dict[str, list[str]] = {}  # folder -> its file names
        self._exact: dict[str, set[str]] = {}
        self._by_stem: dict[str, dict[str, str]] = {}  # built for a folder at its first inexact name

    def find(self, path: str) -> str | None:
        folder, _, name = path.rpartition(os.sep)
        exact = self._exact.get(folder)
        if exact is None:
            try:
                self._names[folder] = os.listdir(folder)
            except (FileNotFoundError, NotADirectoryError):
                self._names[folder] = []
            exact = self._exact[folder] = set(self._names[folder])
        if name in exact:
            return path
        if folder not in self._by_stem:
            self._by_stem[folder] = self._videos_by_stem(self._names[folder])
        other = self._by_stem[folder].get(split_video_name(name)[0])
        return f"{folder}{os.sep}{other}" if other is not None else None

    @staticmethod
    def _videos_by_stem(names: list[str]) -> dict[str, str]:
        """Per stem, the video file with the extension first in ``VIDEO_EXTENSIONS``."""
        rank = {ext: i for i, ext in enumerate(VIDEO_EXTENSIONS)}
        best: dict[str, tuple[int, str]] = {}
        for name in names:
            stem, ext = split_video_name(name)
            if ext and (stem not in best or rank[ext.lower()] < best[stem][0]):
                best[stem] = rank[ext.lower()], name
        return {stem: name for stem, (_, name) in best.items()}
