"""Frame decoding behind one small interface, with decord and PyAV backends (issue 3).

``decode_frames(path, select, backend)`` opens the file, asks ``select(num_frames)`` for the frame
indices it needs (clamped to the decodable length, so a window longer than the video repeats its last
frame), and returns only those frames as a uint8 tensor (T, H, W, 3). decord (the default) seeks to the
needed frames; it is created per call with one thread, since it is not safe to share across workers.
If decord fails on a file (e.g. AV1, or a frame count it over-reports), PyAV is tried before the file is
declared bad. PyAV decodes from the start up to the last needed frame and converts only needed frames.
"""

from __future__ import annotations

import os
from typing import Callable

import numpy as np
import torch  # noqa: F401  (torch must be imported before decord: decord's bundled libs clash otherwise)

BACKENDS: tuple[str, ...] = ("decord", "pyav", "pyav_fast")

FrameSelector = Callable[[int], np.ndarray]


class DecodeError(RuntimeError):
    """A video that cannot be read; ``reason`` is a short category (missing, empty, undecodable, ...)."""

    def __init__(self, path: str, reason: str, detail: str = "") -> None:
        super().__init__(f"{path}: {reason}" + (f" ({detail})" if detail else ""))
        self.path, self.reason, self.detail = path, reason, detail


def _clamp(indices: np.ndarray, num_frames: int) -> np.ndarray:
    return np.clip(np.asarray(indices, dtype=np.int64), 0, num_frames - 1)


def _decode_decord(path: str, select: FrameSelector) -> torch.Tensor:
    import decord

    reader = decord.VideoReader(path, num_threads=1, ctx=decord.cpu(0))
    n = len(reader)
    if n <= 0:
        raise DecodeError(path, "no frames")
    indices = _clamp(select(n), n)
    unique, inverse = np.unique(indices, return_inverse=True)  # decord seeks in order, once per frame
    frames = reader.get_batch(unique.tolist()).asnumpy()  # (U, H, W, 3) uint8
    return torch.from_numpy(frames)[torch.from_numpy(inverse.reshape(-1))]


def _stream_length(stream) -> int:
    if stream.frames:
        return int(stream.frames)
    if stream.duration and stream.average_rate:
        return int(round(float(stream.duration * stream.time_base * stream.average_rate)))
    return 0


def _decode_pyav_upto(container, stream, wanted: set[int], last: int) -> tuple[dict[int, np.ndarray], int]:
    """Decode frames 0..last, converting only the ``wanted`` ones; returns them and the count decoded."""
    out: dict[int, np.ndarray] = {}
    count = 0
    for frame in container.decode(stream):
        if count in wanted:
            out[count] = frame.to_ndarray(format="rgb24")
        count += 1
        if count > last:
            break
    return out, count


def _decode_pyav(path: str, select: FrameSelector) -> torch.Tensor:
    import av

    with av.open(path) as container:
        if not container.streams.video:
            raise DecodeError(path, "no video stream")
        stream = container.streams.video[0]
        stream.thread_count = 1
        n = _stream_length(stream)
        indices = _clamp(select(n), n) if n > 0 else None
        last = int(indices.max()) if indices is not None else 1 << 62
        frames, count = _decode_pyav_upto(container, stream, set(indices.tolist()) if indices is not None else set(), last)
    if count == 0:
        raise DecodeError(path, "no frames")
    if indices is None or count <= last:  # unknown or over-reported length: select again on what decodes
        indices = _clamp(select(count), count)
        with av.open(path) as container:
            stream = container.streams.video[0]
            stream.thread_count = 1
            frames, _ = _decode_pyav_upto(container, stream, set(indices.tolist()), int(indices.max()))
    return torch.from_numpy(np.stack([frames[int(i)] for i in indices]))  # (T, H, W, 3)


def _decode_pyav_fast(path: str, select: FrameSelector) -> torch.Tensor:
    from gcvideo.data.seek_decode import decode_pyav_seek  # exact seeking, skips unneeded non-reference frames

    return decode_pyav_seek(path, select)


_DECODERS = {"decord": _decode_decord, "pyav": _decode_pyav, "pyav_fast": _decode_pyav_fast}


def check_backend(backend: str) -> str:
    if backend not in BACKENDS:
        raise ValueError(f"unknown decoder {backend!r}; valid: {', '.join(BACKENDS)}")
    return backend


def _existing_file(path: str | os.PathLike) -> str:
    """``path`` as a string; DecodeError "missing" or "empty" before any decoder is tried."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise DecodeError(path, "missing")
    if os.path.getsize(path) == 0:
        raise DecodeError(path, "empty")
    return path


def decode_frames(path: str | os.PathLike, select: FrameSelector, backend: str = "decord") -> torch.Tensor:
    """Frames ``select(num_frames)`` of a video as uint8 (T, H, W, 3); decord falls back to PyAV.

    Raises:
        DecodeError: the file is missing, empty, or no backend can decode it.
    """
    check_backend(backend)
    path = _existing_file(path)
    errors = []
    for name in (backend, "pyav") if backend != "pyav" else (backend,):
        try:
            frames = _DECODERS[name](path, select)
        except Exception as e:  # noqa: BLE001  (any backend failure means: try the next one)
            errors.append(f"{name}: {type(e).__name__}: {e}".strip())
            continue
        if frames.ndim != 4 or frames.shape[-1] != 3 or min(frames.shape[1:3]) < 1:
            errors.append(f"{name}: unexpected frame shape {tuple(frames.shape)}")
            continue
        return frames
    raise DecodeError(path, "undecodable", "; ".join(e.splitlines()[0][:200] for e in errors))


def count_frames(path: str | os.PathLike, backend: str = "decord", chunk: int = 32) -> int:
    """Decode every frame of a video (in chunks) and return how many decode; raises DecodeError."""
    check_backend(backend)
    path = _existing_file(path)
    errors = []
    if backend == "decord":
        try:
            import decord

            reader = decord.VideoReader(path, num_threads=1, ctx=decord.cpu(0))
            n = len(reader)
            for start in range(0, n, chunk):
                reader.get_batch(list(range(start, min(n, start + chunk))))
            if n > 0:
                return n
            errors.append("decord: no frames")
        except Exception as e:  # noqa: BLE001
            errors.append(f"decord: {type(e).__name__}: {e}")
    try:
        import av

        with av.open(path) as container:
            n = sum(1 for _ in container.decode(video=0))
        if n > 0:
            return n
        errors.append("pyav: no frames")
    except Exception as e:  # noqa: BLE001
        errors.append(f"pyav: {type(e).__name__}: {e}")
    raise DecodeError(path, "undecodable", "; ".join(e.splitlines()[0][:200] for e in errors))
