"""Frame decoding behind one call, routed per file to a backend that reads it right.

``decode_frames(path, select, backend, info)`` opens the file, asks ``select(count)`` for the frame
indices it needs (``count`` is a ``FrameCount``: an int, with frame times for sampling by time), clamps
them to the decodable frames, and returns only those frames, upright, as uint8 (T, H, W, 3).

``backend="auto"`` takes the backend of ``info`` (a manifest row of ``gcvideo data check``) or, without
one, PyAV seeking by timestamp, which is exact on every file and, by measurement, cheaper per clip than
decord (1.5x on YouTube-style H.264 at 340x256, ``scripts/bench_decode.py``). A backend that fails on a
file hands it to the next exact one (PyAV seeking, then PyAV decoding from the start) before the file is
declared bad. An explicit backend is used as asked: decord returns wrong frames on some files
(``gcvideo.data.decoding.probe`` says which), so ``check_backend`` warns once when it is chosen; torchcodec only
runs when asked for.
"""

from __future__ import annotations

import functools
import logging
import os

import torch

from gcvideo.data.decoding.backends import DECODERS, FrameSelector
from gcvideo.data.decoding.decoders import DECODER_NAMES, DEFAULT_BACKEND, EXACT_FALLBACK, Decoder
from gcvideo.data.decoding.probe import torchcodec_available
from gcvideo.data.decoding.video_info import VideoInfo
from gcvideo.errors import UserError

__all__ = ["DecodeError", "FrameSelector", "check_backend", "decode_frames"]

log = logging.getLogger(__name__)


class DecodeError(RuntimeError):
    """A video that cannot be read; ``reason`` is a short category (missing, empty, undecodable, ...)."""

    def __init__(self, path: str, reason: str, detail: str = "") -> None:
        super().__init__(f"{path}: {reason}" + (f" ({detail})" if detail else ""))
        self.path, self.reason, self.detail = path, reason, detail


def check_backend(backend: str) -> str:
    """``backend`` if it is a decoder choice that can run here, else a UserError saying what to pick."""
    if backend not in DECODER_NAMES:
        raise UserError(f"unknown decoder {backend!r}; valid: {', '.join(DECODER_NAMES)}")
    backend = Decoder(backend).value
    if backend == Decoder.TORCHCODEC and not torchcodec_available():
        raise UserError("decoder 'torchcodec' is not installed (or misses the system FFmpeg libraries): "
                        "pip install 'gcvideo[exact]' and apt-get install ffmpeg, or use decoder 'auto'")
    if backend == Decoder.DECORD:
        _warn_decord()
    return backend


@functools.lru_cache(maxsize=1)
def _warn_decord() -> None:
    log.warning("decoder 'decord' is used for every file as asked: it returns wrong frames for mp4 files cut "
                "with an edit list, MPEG-4 part 2 with B-frames, HEVC open GOPs and rotated videos; "
                "decoder 'auto' reads every file exactly (and is faster on YouTube-style H.264)")


def existing_file(path: str | os.PathLike) -> str:
    """``path`` as a string; DecodeError "missing" or "empty" before any decoder is tried."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise DecodeError(path, "missing")
    if os.path.getsize(path) == 0:
        raise DecodeError(path, "empty")
    return path


def backend_chain(first: str) -> list[str]:
    """``first``, then the exact backends after it (the order of ``EXACT_FALLBACK``); torchcodec only
    where installed (a manifest written elsewhere may name it)."""
    later = EXACT_FALLBACK[EXACT_FALLBACK.index(first) + 1:] if first in EXACT_FALLBACK else EXACT_FALLBACK
    return [b for b in (first, *later) if b != Decoder.TORCHCODEC or torchcodec_available()]


def decode_frames(path: str | os.PathLike, select: FrameSelector, backend: str = "auto",
                  info: VideoInfo | None = None) -> torch.Tensor:
    """Frames ``select(count)`` of a video, upright, as uint8 (T, H, W, 3).

    Args:
        path: the video file.
        select: frame indices from a ``FrameCount`` (indices past the end are clamped to the last frame).
        backend: "auto" (the manifest's backend, else PyAV seeking), or one of the other
            ``gcvideo.data.decoding.Decoder`` names for every file.
        info: the file's manifest row, if known (its decodable range, rotation and backend are used).

    Raises:
        DecodeError: the file is missing, empty, has no decodable frames, or no backend can decode it.
    """
    backend = check_backend(backend)
    path = existing_file(path)
    if info is not None and info.checked and info.frames <= 0:
        raise DecodeError(path, "undecodable", "no decodable frames (manifest)")
    errors = []
    first = backend if backend != Decoder.AUTO else (info.backend if info is not None else DEFAULT_BACKEND)
    for name in backend_chain(first):
        try:
            frames = DECODERS[name](path, select, info)
        except Exception as e:  # noqa: BLE001  (any backend failure means: try the next one)
            errors.append(f"{name}: {type(e).__name__}: {e}".strip())
            continue
        if frames.ndim != 4 or frames.shape[-1] != 3 or min(frames.shape[1:3]) < 1:
            errors.append(f"{name}: unexpected frame shape {tuple(frames.shape)}")
            continue
        return frames
    raise DecodeError(path, "undecodable", "; ".join(e.splitlines()[0][:200] for e in errors))
