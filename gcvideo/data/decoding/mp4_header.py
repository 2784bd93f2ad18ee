"""The two facts of an mp4/mov header that decord ignores: rotation and edit lists (ISO/IEC 14496-12).

A phone writes how the picture is to be turned into the track header's matrix (``tkhd``); a cut made
with ``ffmpeg -ss ... -c copy`` keeps whole GOPs and hides the extra frames behind an edit list
(``edts/elst``). Only the box headers are read (the ``mdat`` payload is skipped), so this costs a few
small reads whatever the file size.
"""

from __future__ import annotations

import math
import os
import struct
from dataclasses import dataclass
from typing import BinaryIO, Iterator

_CONTAINERS = {b"moov", b"trak", b"mdia", b"edts"}


@dataclass(frozen=True)
class TrackHeader:
    """The first video track of an mp4/mov file.

    Attributes:
        rotation: degrees counter-clockwise a player turns the picture (as FFmpeg's display matrix).
        edit_seconds: the edit list's segment durations in seconds (empty when there is no edit list).
        media_seconds: the track's media duration in seconds (``mdhd``).
        edit_start: the first edit's media time in seconds (-1 for an empty edit: a delay).
    """

    rotation: int = 0
    edit_seconds: tuple[float, ...] = ()
    media_seconds: float = 0.0
    edit_start: float = 0.0

    def cuts_media(self, frame_period: float) -> bool:
        """Whether the edit list hides media frames: a cut, not just the encoder's delay of a few frames."""
        if not self.edit_seconds:
            return False
        if len(self.edit_seconds) > 1 or self.edit_start < 0:
            return True
        hidden = self.edit_start + max(0.0, self.media_seconds - self.edit_start - self.edit_seconds[0])
        return hidden > 4 * frame_period


def _boxes(f: BinaryIO, end: int) -> Iterator[tuple[bytes, int, int]]:
    """(type, payload start, payload end) of the boxes between the current position and ``end``."""
    while f.tell() + 8 <= end:
        start = f.tell()
        size, kind = struct.unpack(">I4s", f.read(8))
        header = 8
        if size == 1:
            size, header = struct.unpack(">Q", f.read(8))[0], 16
        elif size == 0:
            size = end - start
        if size < header or start + size > end:
            return
        yield kind, start + header, start + size
        f.seek(start + size)


def _full_box(f: BinaryIO, start: int) -> int:
    f.seek(start)
    return f.read(4)[0]  # version (the 3 flag bytes follow)


def _read_track(f: BinaryIO, start: int, end: int, movie_scale: int) -> tuple[bool, TrackHeader]:
    is_video, rotation, edits, edit_start, media_seconds, media_scale = False, 0, [], 0.0, 0.0, 0
    for kind, s, e in _boxes(f, end):
        if kind == b"tkhd":
            version = _full_box(f, s)
            f.seek(s + 4 + (32 if version == 1 else 20) + 16)
            a, b, _, c, d = struct.unpack(">5i", f.read(20))
            rotation = int(round(-math.degrees(math.atan2(b / 65536, a / 65536)))) % 360
        elif kind == b"mdia":
            f.seek(s)
            for kind2, s2, e2 in _boxes(f, e):
                if kind2 == b"hdlr":
                    f.seek(s2 + 8)
                    is_video = f.read(4) == b"vide"
                elif kind2 == b"mdhd":
                    version = _full_box(f, s2)
                    f.seek(s2 + 4 + (16 if version == 1 else 8))
                    scale, = struct.unpack(">I", f.read(4))
                    duration, = struct.unpack(">Q" if version == 1 else ">I", f.read(8 if version == 1 else 4))
                    media_seconds, media_scale = (duration / scale if scale else 0.0), scale
                    f.seek(e2)
            f.seek(e)
        elif kind == b"edts":
            f.seek(s)
            for kind2, s2, e2 in _boxes(f, e):
                if kind2 == b"elst":
                    version = _full_box(f, s2)
                    count, = struct.unpack(">I", f.read(4))
                    fmt, size = (">Qq", 16) if version == 1 else (">Ii", 8)
                    for _ in range(min(count, 64)):
                        duration, media_time = struct.unpack(fmt, f.read(size))
                        f.read(4)  # media rate
                        edits.append((duration, media_time))
                    f.seek(e2)
            f.seek(e)
    if edits:
        first_time = edits[0][1]
        edit_start = -1.0 if first_time < 0 else (first_time / media_scale if media_scale else 0.0)
    seconds = tuple(d / movie_scale for d, _ in edits) if movie_scale else ()
    return is_video, TrackHeader(rotation, seconds, media_seconds, edit_start)


def read_track_header(path: str | os.PathLike) -> TrackHeader | None:
    """The first video track's header of an mp4/mov/m4v file, or None if it is not one (or unreadable)."""
    try:
        with open(path, "rb") as f:
            end = f.seek(0, os.SEEK_END)
            f.seek(0)
            for kind, start, stop in _boxes(f, end):
                if kind != b"moov":
                    continue
                f.seek(start)
                movie_scale = 0
                for kind2, s2, e2 in _boxes(f, stop):
                    if kind2 == b"mvhd":
                        version = _full_box(f, s2)
                        f.seek(s2 + 4 + (16 if version == 1 else 8))
                        movie_scale, = struct.unpack(">I", f.read(4))
                        f.seek(e2)
                    elif kind2 == b"trak":
                        is_video, header = _read_track(f, s2, e2, movie_scale)
                        if is_video:
                            return header
                        f.seek(e2)
                return None
    except (OSError, struct.error, IndexError):
        return None
    return None
