"""One video checked against an in-order decode: its manifest row.

The reference is PyAV decoding every packet in order (a damaged packet is skipped, as a player does).
It gives the frames that decode, their timestamps, the rotation and the decodable range: the longest
run of consecutive frames that all decode. Each candidate backend (decord, PyAV seeking; torchcodec if asked) is
then asked for about 30 frames of that range (spread over the video and around its keyframes, where
seeking goes wrong) and compared with the reference; the first that returns every one of them right is
the file's backend. If none does, PyAV decoding from the start (the reference itself) is.
"""

from __future__ import annotations

import re
from typing import Sequence

import numpy as np

from gcvideo.data.decoding.backends import DECODERS, PacketTable, decoded_frames, open_video, packet_table, upright
from gcvideo.data.decoding.decode import DecodeError, existing_file
from gcvideo.data.decoding.decoders import Decoder
from gcvideo.data.decoding.manifest import ManifestRow, file_stamp
from gcvideo.data.decoding.video_info import ASSUMED_FPS, VideoInfo

THUMBNAIL = (24, 32)  # rows, columns of the block means two decodes of one frame are compared on
# Tried in this order, the first that matches the in-order decode goes into the manifest: PyAV seeking
# first (exact and the cheapest per clip by measurement), decord for files PyAV cannot seek in;
# torchcodec only when asked for.
CHECKED_BACKENDS: tuple[str, ...] = (Decoder.PYAV.value, Decoder.DECORD.value)


def short_error(error: Exception) -> str:
    """``Type: message`` on one line, without the time and source location decord puts in front."""
    text = re.sub(r"\[[\d:]+\] \S+:\d+: ", "", str(error)).strip().splitlines()
    return f"{type(error).__name__}: {text[0][:120] if text else ''}"


def thumbnail(frame: np.ndarray) -> np.ndarray:
    """Gray block means of an (H, W, 3) frame on the ``THUMBNAIL`` grid (of every few pixels: cheap at 720p)."""
    rows, cols = min(THUMBNAIL[0], frame.shape[0]), min(THUMBNAIL[1], frame.shape[1])
    step_y, step_x = max(1, frame.shape[0] // (4 * rows)), max(1, frame.shape[1] // (4 * cols))
    gray = frame[::step_y, ::step_x].astype(np.float32).mean(axis=-1)
    h, w = gray.shape[0] // rows, gray.shape[1] // cols
    return gray[: rows * h, : cols * w].reshape(rows, h, cols, w).mean(axis=(1, 3))


def sample_positions(frames: int, key_positions: np.ndarray, spread: int = 16) -> np.ndarray:
    """Frames to compare: ``spread`` evenly spaced, and the two frames either side of the first keyframes."""
    picks = set(np.linspace(0, frames - 1, min(spread, frames)).round().astype(int).tolist())
    for key in key_positions[1:4]:
        picks.update(range(int(key) - 2, int(key) + 3))
    return np.array(sorted(p for p in picks if 0 <= p < frames), dtype=np.int64)


def _decodable_run(decoded: np.ndarray) -> tuple[int, int]:
    """(start, length) in decode order of the longest run whose table indices go up one by one."""
    if len(decoded) == 0:
        return 0, 0
    breaks = np.flatnonzero(np.diff(decoded) != 1) + 1
    starts = np.concatenate([[0], breaks])
    lengths = np.diff(np.concatenate([starts, [len(decoded)]]))
    best = int(np.argmax(lengths))
    return int(starts[best]), int(lengths[best])


def _frame_rate(pts: np.ndarray, time_base: float, stream_rate: float) -> tuple[float, bool, float]:
    """(fps, variable?, seconds covered) of a run of frame timestamps."""
    if len(pts) < 2:
        rate = stream_rate or ASSUMED_FPS
        return rate, False, len(pts) / rate
    steps = np.diff(pts)
    typical = float(np.median(steps))
    vfr = bool(steps.max() - steps.min() > max(2.0, 0.01 * typical))
    span = float(pts[-1] - pts[0]) * time_base
    if not vfr and stream_rate and abs(stream_rate * typical * time_base - 1) < 0.02:
        fps = stream_rate  # the container's exact rate (e.g. 30000/1001) rather than rounded timestamps
    else:
        fps = (len(pts) - 1) / span if span > 0 else stream_rate or ASSUMED_FPS
    return fps, vfr, span + typical * time_base


def _compare(got: np.ndarray, reference: dict[int, np.ndarray], positions: np.ndarray, shape: tuple) -> int:
    """How many returned frames are not the reference frame at their position (or have the wrong shape)."""
    wrong = 0
    for frame, position in zip(got, positions):
        if frame.shape != shape:
            wrong += 1
            continue
        thumb = thumbnail(frame)
        own = float(np.abs(thumb - reference[position]).mean())
        others = [float(np.abs(thumb - reference[p]).mean()) for p in (position - 1, position + 1) if p in reference]
        if not (own <= 0.05 or (own <= 2.0 and (not others or own < 0.5 * min(others)))):
            wrong += 1
    return wrong


def _reference(path: str, table: PacketTable | None, wanted: set[int]):
    """In-order decode: (decoded timestamps, thumbnails by timestamp, shown shape, rotation, damaged packets)."""
    container, stream = open_video(path)
    stamps, thumbs, shape, rotation = [], {}, None, 0
    with container:
        for frame in decoded_frames(container, stream):
            if frame.pts is None and table is not None:
                continue
            stamp = frame.pts if table is not None else len(stamps)
            if shape is None:
                rotation = int(round(frame.rotation or 0)) % 360
                shape = upright(np.zeros((frame.height, frame.width, 3), np.uint8), rotation).shape
            if stamp in wanted:
                thumbs[stamp] = thumbnail(upright(frame.to_ndarray(format="rgb24"), rotation))
            stamps.append(stamp)
    return np.asarray(stamps, dtype=np.int64), thumbs, shape, rotation


def check_video(path: str, relative_path: str, backends: Sequence[str] | None = None) -> ManifestRow:
    """The manifest row of one video (status bad with the reason when it cannot be read)."""
    size, mtime = file_stamp(path)
    row = ManifestRow(relative_path, "bad", size=size, mtime=mtime)
    try:
        existing_file(path)
        container, stream = open_video(path)
        with container:
            table = packet_table(container, stream)
            codec = stream.codec_context.name
            stream_rate = float(stream.average_rate or 0)
            width, height = stream.codec_context.width, stream.codec_context.height
            row.container_frames = int(stream.frames or (len(table.pts) if table is not None else 0))
    except DecodeError as e:
        row.reason = e.reason
        return row
    except Exception as e:  # noqa: BLE001  (PyAV raises many types for unreadable files)
        row.reason = f"undecodable: {short_error(e)}"
        return row
    estimate = len(table.pts) if table is not None else row.container_frames
    keys = np.searchsorted(table.pts, table.key_pts) if table is not None else np.zeros(0, np.int64)
    samples = sample_positions(max(estimate, 1), keys)
    around = np.concatenate([samples - 1, samples, samples + 1, keys, keys + 1])  # keyframes: where a range may start
    near = np.unique(np.clip(around, 0, max(estimate - 1, 0)))
    wanted = set(table.pts[near].tolist()) if table is not None else set(near.tolist())
    stamps, thumbs, shape, rotation = _reference(path, table, wanted)
    if len(stamps) == 0:
        row.reason = "undecodable: no frame decodes"
        return row
    indices = np.searchsorted(table.pts, stamps) if table is not None else np.arange(len(stamps))
    if table is not None:
        indices = np.where(table.pts[np.minimum(indices, len(table.pts) - 1)] == stamps, indices, -10)
    start, length = _decodable_run(indices)
    first_index = int(indices[start])
    if table is not None and first_index > 0:
        # frames decoded after damage lean on lost references until the next keyframe: start there
        later = keys[(keys >= first_index) & (keys < first_index + length)]
        if len(later):
            shift = int(later[0]) - first_index
            start, length, first_index = start + shift, length - shift, first_index + shift
    run_pts = table.pts[first_index: first_index + length] if table is not None else None
    if run_pts is not None:
        fps, vfr, duration = _frame_rate(run_pts, table.time_base, stream_rate)
    else:
        fps, vfr, duration = stream_rate or ASSUMED_FPS, False, length / (stream_rate or ASSUMED_FPS)
    total = estimate if table is not None else len(stamps)
    row.status = "ok" if length == total == len(stamps) else "partial"
    if row.status == "partial":
        row.reason = f"partial: frames {first_index}-{first_index + length - 1} of {total} decode in a row"
    reference = {int(i) - first_index: thumbs[int(s)] for i, s in zip(indices[start: start + length],
                                                                     stamps[start: start + length]) if int(s) in thumbs}
    checked = set((samples - first_index).tolist()) | {0, 1}  # the spread, and the start of the range
    positions = np.array(sorted(p for p in reference if p in checked), dtype=np.int64)
    info = dict(frames=length, fps=fps, duration=duration, width=width, height=height, rotation=rotation,
                codec=codec, vfr=vfr, checked=True)
    doubts = []
    for backend in (backends or CHECKED_BACKENDS) if table is not None else []:
        candidate = VideoInfo(first_frame=first_index, backend=backend, **info)
        if backend == Decoder.DECORD and (row.status != "ok" or rotation):
            doubts.append(f"decord: {'rotated video' if rotation else 'damaged file'}")
            continue
        try:
            if backend == Decoder.DECORD:
                import decord

                counted = len(decord.VideoReader(path, num_threads=1))
                if counted != total:
                    doubts.append(f"decord: counts {counted} frames where {total} are shown")
                    continue
            got = DECODERS[backend](path, lambda count: positions, candidate).numpy()
        except Exception as e:  # noqa: BLE001
            doubts.append(f"{backend}: {short_error(e)}")
            continue
        wrong = _compare(got, reference, positions, shape)
        if wrong == 0:
            row.info = candidate
            break
        doubts.append(f"{backend}: {wrong} of {len(positions)} frames differ from an in-order decode")
    else:
        row.info = VideoInfo(first_frame=start, backend=Decoder.PYAV_SEQUENTIAL.value, **info)
    if doubts and row.status == "ok":
        row.reason = "; ".join(doubts)
    elif doubts:
        row.reason += "; " + "; ".join(doubts)
    return row

