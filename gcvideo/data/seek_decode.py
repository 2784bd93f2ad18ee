"""Exact frame decoding by seeking, that skips the non-reference frames it does not need (issue 9, item 2).

A training clip of the Slow-only recipe (8 frames every 8th) needs 8 of the ~60-180 frames a decoder
passes through between the keyframe before the window and the window's end. On YouTube-style H.264
(3 B-frames between references, x264's default) about half of those frames are B-frames that no other
frame refers to (``nal_ref_idc == 0``); a frame that no other frame refers to can be skipped without
changing any other frame. This decoder asks FFmpeg to skip those (``skip_frame = NONREF``) for every
packet whose frame is not wanted, and decodes the wanted ones normally:

- frames are identified by their presentation timestamps, ranked: a scan of the packet index (no
  decoding) gives every frame's timestamp and the keyframes, so frame ``i`` is the ``i``-th smallest
  timestamp, the order in which a decoder that starts at the beginning outputs them;
- the wanted frames are decoded in runs: each run seeks to the last keyframe at or before its first
  frame, and a new run starts where a keyframe lies between two wanted frames (several clips of one
  video then cost one pass where they overlap, and one seek each where they do not);
- only the wanted frames are converted to RGB.

Any inconsistency (no timestamps, repeated timestamps, a wanted frame that never comes out) raises, so
``gcvideo.data.decoding.decode_frames`` falls back to decoding from the start.
"""

from __future__ import annotations

import numpy as np
import torch

# Decoders whose NONREF skipping drops exactly the frames no other frame refers to (checked against a
# decode from the start on H.264 High, HEVC with an open GOP and MPEG-4 part 2 with B-frames); others
# (e.g. AV1 through libdav1d) decode every frame here.
NONREF_EXACT_CODECS: frozenset[str] = frozenset({"h264", "hevc", "mpeg4", "mpeg2video", "mpeg1video"})


def scan_packets(container, stream) -> tuple[np.ndarray, np.ndarray]:
    """Sorted presentation timestamps of the stream's frames and those of its keyframes (demuxing only)."""
    pts, keys = [], []
    for packet in container.demux(stream):
        if packet.pts is None:
            if packet.size:  # a frame without a timestamp: frames cannot be told apart by time
                raise ValueError("packet without a timestamp")
            continue  # the empty packet that ends the stream
        if packet.is_keyframe:  # a place to start decoding, even when its own frame is cut by an edit list
            keys.append(packet.pts)
        if not packet.is_discard:  # an edit list's cut frames are dropped by the decoder: not frames
            pts.append(packet.pts)
    pts_sorted = np.sort(np.asarray(pts, dtype=np.int64))
    if len(pts_sorted) == 0 or len(keys) == 0:
        raise ValueError("no frames or no keyframe in the packet index")
    if np.any(np.diff(pts_sorted) == 0):
        raise ValueError("repeated timestamps")
    return pts_sorted, np.sort(np.asarray(keys, dtype=np.int64))


def _runs(wanted: np.ndarray, keys: np.ndarray) -> list[np.ndarray]:
    """Split sorted wanted timestamps where a keyframe lies between two of them (seek instead of decoding)."""
    cut = [j + 1 for j in range(len(wanted) - 1)
           if np.searchsorted(keys, wanted[j], side="right") < np.searchsorted(keys, wanted[j + 1], side="right")]
    return np.split(wanted, cut)


def decode_pyav_seek(path: str, select, *, skip_nonref: bool = True) -> torch.Tensor:
    """Frames ``select(num_frames)`` (clamped) as uint8 (T, H, W, 3), exactly as decoding from the start."""
    import av

    with av.open(path) as container:
        if not container.streams.video:
            raise ValueError("no video stream")
        stream = container.streams.video[0]
        stream.thread_count = 1  # one DataLoader worker = one core
        pts, keys = scan_packets(container, stream)
        indices = np.clip(np.asarray(select(len(pts)), dtype=np.int64), 0, len(pts) - 1)
        wanted = np.unique(pts[indices])
        codec = stream.codec_context
        skip = skip_nonref and codec.name in NONREF_EXACT_CODECS
        frames: dict[int, np.ndarray] = {}
        for run in _runs(wanted, keys):
            todo = set(run.tolist())
            before = np.searchsorted(keys, run[0], side="right") - 1
            if before < 0:
                raise ValueError("no keyframe before a wanted frame")
            key = keys[before]
            container.seek(int(key), stream=stream, backward=True, any_frame=False)
            for packet in container.demux(stream):
                if packet.pts is not None:
                    codec.skip_frame = "NONREF" if skip and packet.pts not in todo else "DEFAULT"
                for frame in codec.decode(packet):  # the last packet (None) flushes the decoder
                    if frame.pts is not None and frame.pts > run[-1] and todo:
                        raise ValueError(f"frames {sorted(todo)[:3]} did not come out before {frame.pts}")
                    if frame.pts in todo:
                        frames[frame.pts] = frame.to_ndarray(format="rgb24")
                        todo.discard(frame.pts)
                if not todo:
                    break
            codec.skip_frame = "DEFAULT"
            if todo:
                raise ValueError(f"frames with timestamps {sorted(todo)[:3]} not decoded")
    return torch.from_numpy(np.stack([frames[int(pts[i])] for i in indices]))
