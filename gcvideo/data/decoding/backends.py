"""The frame decoders behind ``decode_frames``: decord, torchcodec (exact mode), PyAV.

Each backend opens the file, builds the ``FrameCount`` a selector samples from (the decodable range of
a checked ``VideoInfo``, else what the file says), asks ``select`` for frame indices, clamps them, and
returns those frames upright (rotation applied) as uint8 (T, H, W, 3). Frame ``i`` means the ``i``-th
frame a player shows, i.e. of an in-order decode with PyAV, which is the reference:

- ``decord``: seeks by frame number; fast, but wrong on mp4 edit lists, MPEG-4 part 2 with B-frames and
  HEVC open GOPs, and it fails on rotated videos (``gcvideo.data.decoding.probe`` keeps such files away from it).
- ``pyav``: frame ``i`` is the ``i``-th presentation timestamp among the packets the player keeps; it seeks
  to the last keyframe at or before that timestamp and decodes forward to it, so the cost does not grow
  with the position in the video, and skips the B-frames nothing needs on the way.
- ``torchcodec``: ``seek_mode="exact"`` scans the packets first, so frame numbers are exact; it applies
  rotation itself (torchcodec >= 0.11). Optional: ``pip install gcvideo[exact]``; not for avi files.
- ``pyav_sequential``: decodes from the start in order (files whose timestamps cannot be seeked on).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
import torch  # noqa: F401  (torch must be imported before decord: decord's bundled libs clash otherwise)

from gcvideo.data.decoding.decoders import Decoder
from gcvideo.data.decoding.video_info import FrameCount, VideoInfo

FrameSelector = Callable[[int], np.ndarray]


class FrameNotFound(RuntimeError):
    """A seek did not reach a wanted frame (the caller falls back to a slower backend)."""


def upright(frames: np.ndarray, rotation: int) -> np.ndarray:
    """Frames (..., H, W, C) turned ``rotation`` degrees counter-clockwise, as a player shows them."""
    k = (int(round(rotation / 90.0))) % 4
    return np.ascontiguousarray(np.rot90(frames, k, axes=(-3, -2))) if k else frames


def _gather(unique_frames: np.ndarray, inverse: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(unique_frames))[torch.from_numpy(inverse.reshape(-1))]


def _selected(select: FrameSelector, count: FrameCount) -> np.ndarray:
    if int(count) <= 0:
        raise RuntimeError("no frames")
    return np.clip(np.asarray(select(count), dtype=np.int64).reshape(-1), 0, int(count) - 1)


@dataclass(frozen=True)
class PacketTable:
    """Frame timestamps of a video stream from its packets (no decoding).

    Attributes:
        pts: presentation timestamps of the frames a player shows, sorted (stream time base).
        key_pts, key_seek: per keyframe, its timestamp and the timestamp to seek to for it.
        time_base: seconds per timestamp unit.
    """

    pts: np.ndarray
    key_pts: np.ndarray
    key_seek: np.ndarray
    time_base: float

    def times(self, first: int, frames: int) -> np.ndarray:
        """Seconds of frames ``first .. first + frames - 1`` from the first of them."""
        pts = self.pts[first: first + frames]
        return (pts - pts[0]) * self.time_base if len(pts) else np.zeros(0)


@contextlib.contextmanager
def _demuxed(container, stream) -> Iterator:
    """``container.demux(stream)``, closed on exit. PyAV's demux generator, dropped before its end, leaks
    native memory (about 160 bytes each time with PyAV 18.1; none once closed): the seeking decoder stops
    at its last wanted frame at every call, and a DataLoader worker's memory grew by that per clip."""
    packets = container.demux(stream)
    try:
        yield packets
    finally:
        packets.close()


def packet_table(container, stream) -> PacketTable | None:
    """Read every packet of ``stream`` (demuxing only); None when packets carry no timestamps."""
    pts, key_pts, key_seek = [], [], []
    with _demuxed(container, stream) as packets:
        for packet in packets:
            if packet.size == 0 or packet.is_discard:  # the flush packet; frames an edit list hides
                if packet.size and packet.is_keyframe and packet.dts is not None:
                    key_pts.append(packet.pts if packet.pts is not None else packet.dts)
                    key_seek.append(packet.dts)  # a hidden keyframe still starts decoding of what follows
                continue
            stamp = packet.pts if packet.pts is not None else packet.dts
            if stamp is None:
                return None
            pts.append(stamp)
            if packet.is_keyframe:
                # seek to the keyframe's own timestamp: its (earlier) dts makes FFmpeg's backward seek land on
                # the keyframe before it, a whole GOP too early (40% more frames decoded on GOP-250 H.264)
                key_pts.append(stamp)
                key_seek.append(stamp)
    if not pts:
        return None
    order = np.argsort(key_pts, kind="stable")
    return PacketTable(np.sort(np.asarray(pts, dtype=np.int64)), np.asarray(key_pts, np.int64)[order],
                       np.asarray(key_seek, np.int64)[order], float(stream.time_base))


def _range(info: VideoInfo | None, available: int) -> tuple[int, int]:
    """(first, frames) to select from: a checked info's decodable range, else all ``available`` frames."""
    if info is not None and info.checked:
        return info.first_frame, max(0, min(info.frames, available - info.first_frame))
    return 0, available


def _vfr_times(path: str, first: int, frames: int) -> np.ndarray | None:
    import av

    with av.open(path) as container:
        table = packet_table(container, container.streams.video[0])
    return None if table is None else table.times(first, frames)


def decode_decord(path: str, select: FrameSelector, info: VideoInfo | None = None) -> torch.Tensor:
    import decord

    if info is not None and info.rotation:  # decord 0.6 turns square pictures and fails on the others
        raise RuntimeError(f"decord does not read rotated videos right ({info.rotation} degrees)")
    reader = decord.VideoReader(path, num_threads=1, ctx=decord.cpu(0))
    first, n = _range(info, len(reader))
    fps = info.fps if info is not None and info.checked else reader.get_avg_fps()
    times = None
    if info is not None and info.vfr and n > 0:
        times = reader.get_frame_timestamp(np.arange(first, first + n))[:, 0]
        times = times - times[0]
    indices = first + _selected(select, FrameCount(n, fps, times))
    unique, inverse = np.unique(indices, return_inverse=True)  # decord seeks in order, once per frame
    frames = reader.get_batch(unique.tolist()).asnumpy()  # (U, H, W, 3) uint8
    return _gather(frames, inverse)


def decode_torchcodec(path: str, select: FrameSelector, info: VideoInfo | None = None) -> torch.Tensor:
    from torchcodec.decoders import VideoDecoder

    if path.lower().endswith(".avi"):  # it misplaces MPEG-4 part 2 B-frames there: let the next backend read it
        raise RuntimeError("torchcodec is not used for avi files")

    decoder = VideoDecoder(path, seek_mode="exact", num_ffmpeg_threads=1, dimension_order="NHWC")
    first, n = _range(info, len(decoder))
    fps = info.fps if info is not None and info.checked else float(decoder.metadata.average_fps or 0)
    times = _vfr_times(path, first, n) if info is not None and info.vfr else None
    indices = first + _selected(select, FrameCount(n, fps, times))
    unique, inverse = np.unique(indices, return_inverse=True)
    frames = decoder.get_frames_at(unique.tolist()).data  # (U, H, W, 3) uint8, already upright
    return frames[torch.from_numpy(inverse.reshape(-1))]


def open_video(path: str):
    """A PyAV container and its first video stream, decoded on one thread (one DataLoader worker, one core)."""
    import av

    container = av.open(path)
    if not container.streams.video:
        container.close()
        raise RuntimeError("no video stream")
    stream = container.streams.video[0]
    stream.thread_count = 1
    return container, stream


def decoded_frames(container, stream, keep: set[int] | None = None):
    """Frames of ``stream`` from the current position, skipping packets that fail to decode.

    With ``keep`` (timestamps of the wanted frames), frames no other frame refers to are not decoded
    unless wanted: B-frames are most of an H.264 stream, so seeking to a frame costs a fraction of it.
    """
    import av

    with _demuxed(container, stream) as packets:  # closed when this generator is (by its caller, or dropped)
        for packet in packets:
            if keep is not None:
                stream.codec_context.skip_frame = "DEFAULT" if packet.pts in keep else "NONREF"
            try:
                yield from packet.decode()
            except av.error.FFmpegError:  # a damaged packet: the decoder resynchronises at the next one
                continue


def _rgb(frame) -> np.ndarray:
    return upright(frame.to_ndarray(format="rgb24"), frame.rotation or 0)


def average_fps(stream, table: PacketTable | None) -> float:
    """The stream's average frame rate, else the one its packet timestamps give; 0.0 when neither does
    (``FrameCount`` then assumes ``ASSUMED_FPS``)."""
    if stream.average_rate:
        return float(stream.average_rate)
    if table is not None and len(table.pts) > 1:
        return (len(table.pts) - 1) / ((table.pts[-1] - table.pts[0]) * table.time_base)
    return 0.0


def decode_pyav(path: str, select: FrameSelector, info: VideoInfo | None = None,
                skip_unwanted: bool = True) -> torch.Tensor:
    """Seek to the keyframe before each wanted timestamp and decode forward to it (exact, flat cost)."""
    container, stream = open_video(path)
    with container:
        table = packet_table(container, stream)
        if table is None:
            raise FrameNotFound("packets without timestamps")
        first, n = _range(info, len(table.pts))
        fps = info.fps if info is not None and info.checked else average_fps(stream, table)
        indices = first + _selected(select, FrameCount(n, fps, table.times(first, n)))  # the timestamps are here
        unique, inverse = np.unique(indices, return_inverse=True)
        targets = [int(t) for t in table.pts[unique]]
        try:
            found = _seek_and_decode(container, stream, table, targets, set(targets) if skip_unwanted else None)
        except FrameNotFound:
            if not skip_unwanted:
                raise
            # a container whose packet timestamps are not its frames' (e.g. packed B-frames): decode every frame
            found = _seek_and_decode(container, stream, table, targets, None)
        return _gather(np.stack([found[t] for t in targets]), inverse)


def _seek_and_decode(container, stream, table: PacketTable, targets: list[int], keep: set[int] | None):
    """Frames at the ascending timestamps ``targets``, seeking only when a later keyframe is closer."""
    found: dict[int, np.ndarray] = {}
    frames, key, position = None, -1, None  # decoder state: frame iterator, keyframe seeked to, last pts
    for target in targets:
        want_key = int(np.searchsorted(table.key_pts, target, side="right")) - 1
        if frames is None or (want_key > key and (position is None or table.key_pts[want_key] > position)):
            key = max(want_key, 0)
            container.seek(int(table.key_seek[key]), stream=stream, backward=True)
            frames = decoded_frames(container, stream, keep)
        for frame in frames:
            position = frame.pts
            if frame.pts is not None and frame.pts >= target:
                break
        else:
            frame = None
        if frame is None or frame.pts != target:
            raise FrameNotFound(f"no frame at timestamp {target} after seeking")
        found[target] = _rgb(frame)
    return found


def decode_pyav_sequential(path: str, select: FrameSelector, info: VideoInfo | None = None) -> torch.Tensor:
    """Decode from the start in order, converting only the wanted frames (right for any file, slow)."""
    container, stream = open_video(path)
    with container:
        table = packet_table(container, stream)
    estimate = len(table.pts) if table is not None else int(stream.frames or 0)

    def pass_over(n: int) -> tuple[dict[int, np.ndarray], np.ndarray, int]:
        first, n = _range(info, n)
        fps = info.fps if info is not None and info.checked else average_fps(stream, table)
        times = table.times(first, n) if table is not None and info is not None and info.vfr else None
        indices = first + _selected(select, FrameCount(n, fps, times)) if n > 0 else np.zeros(0, np.int64)
        wanted, last, out, count = set(indices.tolist()), int(indices.max(initial=-1)), {}, 0
        container, stream_ = open_video(path)
        with container:
            for frame in decoded_frames(container, stream_):
                if count in wanted:
                    out[count] = _rgb(frame)
                count += 1
                if count > last >= 0:
                    break
        return out, indices, count

    frames, indices, decoded = pass_over(estimate)
    if len(indices) == 0 or decoded <= int(indices.max()):  # over-reported length: select again on what decodes
        if decoded == 0:
            raise RuntimeError("no frames")
        frames, indices, _ = pass_over(decoded)
    return torch.from_numpy(np.stack([frames[int(i)] for i in indices]))


DECODERS: dict[str, Callable[[str, FrameSelector, VideoInfo | None], torch.Tensor]] = {
    Decoder.DECORD.value: decode_decord, Decoder.TORCHCODEC.value: decode_torchcodec, Decoder.PYAV.value: decode_pyav,
    Decoder.PYAV_SEQUENTIAL.value: decode_pyav_sequential}
