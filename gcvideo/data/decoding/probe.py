"""A quick look at a video's header (no decoding) and the backend that reads it right.

decord seeks by frame number through its own index, and that index is wrong for some common files: it
counts the frames an mp4 edit list hides (an ``ffmpeg -ss -c copy`` cut: 221 frames where a player shows
122), misplaces MPEG-4 part 2 B-frames (avi and mp4) and HEVC leading pictures of an open GOP, and it
mishandles rotation. ``probe_video`` sends those files, files of other codecs and variable frame rate
files to PyAV seeking by timestamp (exact, and by measurement no slower than decord or torchcodec); H.264
and VP8/VP9 files that show none of the signs stay on decord. ``gcvideo data check`` goes further: it
compares each backend with an in-order decode and writes the verdict into the manifest.
"""

from __future__ import annotations

import functools
import importlib.util
import os

from gcvideo.data.decoding.decoders import Decoder
from gcvideo.data.decoding.mp4_header import read_track_header
from gcvideo.data.decoding.video_info import VideoInfo

# codecs whose files decord seeks right when none of the other signs is present (the Kinetics codecs)
DECORD_CODECS = frozenset({"h264", "vp8", "vp9"})
MP4_EXTENSIONS = (".mp4", ".m4v", ".mov", ".3gp")


@functools.lru_cache(maxsize=None)
def torchcodec_available() -> bool:
    """Whether torchcodec is installed (``pip install gcvideo[exact]``). Found, not imported: importing it
    loads the system FFmpeg libraries into the process, which only a run that asks for it should do."""
    return importlib.util.find_spec("torchcodec") is not None


def timing_doubts(frames: int, duration: float, fps: float, base_fps: float, edit_cut: bool) -> list[str]:
    """Signs that frame times are not ``index / fps`` (and that decord's frame count may be wrong)."""
    doubts = ["edit list cut"] if edit_cut else []
    if frames > 0 and duration > 0 and fps > 0 and abs(frames - duration * fps) > max(2.0, 0.01 * frames):
        doubts.append(f"{frames} packets for {duration:.2f} s at {fps:.3g} fps")
    if fps > 0 and base_fps > 0 and abs(fps - base_fps) > 0.01 * base_fps:
        doubts.append("variable frame rate")
    return doubts


def decord_doubts(codec: str, rotation: int, timing: list[str]) -> list[str]:
    """Why decord may return wrong frames for a file (empty when there is no sign of it)."""
    return ([f"codec {codec}"] if codec not in DECORD_CODECS else []) + \
        ([f"rotated {rotation} degrees"] if rotation else []) + timing


def probe_video(path: str | os.PathLike) -> VideoInfo:
    """Header facts of a video and its backend (``checked=False``); raises what PyAV raises."""
    import av

    path = os.fspath(path)
    with av.open(path) as container:
        if not container.streams.video:
            raise RuntimeError("no video stream")
        stream = container.streams.video[0]
        codec = stream.codec_context.name
        fps = float(stream.average_rate or stream.guessed_rate or 0)
        base_fps = float(stream.base_rate or 0)
        frames = int(stream.frames or 0)
        if stream.duration is not None:
            duration = float(stream.duration * stream.time_base)
        else:
            duration = (container.duration or 0) / 1e6
        width, height, fmt = stream.codec_context.width, stream.codec_context.height, container.format.name
    header = read_track_header(path) if path.lower().endswith(MP4_EXTENSIONS) or "mp4" in fmt else None
    rotation = header.rotation if header is not None else 0
    edit_cut = header is not None and fps > 0 and header.cuts_media(1.0 / fps)
    timing = timing_doubts(frames, duration, fps, base_fps, edit_cut)
    doubts = decord_doubts(codec, rotation, timing)
    return VideoInfo(frames=frames or int(round(duration * fps)), fps=fps, duration=duration, width=width,
                     height=height, rotation=rotation, codec=codec,
                     backend=(Decoder.PYAV if doubts else Decoder.DECORD).value, vfr=bool(timing))
