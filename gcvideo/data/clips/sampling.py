"""Clip sampling by time: ``frames`` frames ``stride`` apart at a target frame rate.

PySlowFast samples Kinetics clips at ``TARGET_FPS = 30``: an 8x8 clip is 8 frames 8/30 s apart, whatever
the video's own rate, so a 60 fps or variable-rate video covers the same seconds as a 30 fps one. The
video is laid on a grid of ``1 / target_fps`` slots; windows are placed on that grid exactly as they
are placed on frames when sampling by frame index, and each slot's time maps to the frame shown then.
When the video's rate equals the target, this gives the frame-index indices exactly.
"""

from __future__ import annotations

import math

import numpy as np

from gcvideo.data.decoding.video_info import FrameCount


def window_start(num_frames: int, span: int, clip_index: int, clips: int) -> int:
    """Start of clip ``clip_index`` of ``clips`` uniformly spaced windows of ``span`` frames (the centre for one)."""
    delta = max(num_frames - span, 0)
    return delta // 2 if clips == 1 else round(delta * clip_index / (clips - 1))


def sampling_length(count: int, target_fps: float | None) -> int:
    """Positions a window can take: the frames, or the ``1 / target_fps`` slots the video's duration holds."""
    if target_fps is None:
        return int(count)
    if not isinstance(count, FrameCount):
        raise TypeError("sampling by time needs a FrameCount (decode_frames passes one to selectors)")
    return max(1, math.floor(count.duration * target_fps + 1e-6)) if int(count) > 0 else 0


def clip_indices(count: int, start: int, frames: int, stride: int, target_fps: float | None) -> np.ndarray:
    """Frame indices of the clip whose first position is ``start`` (a frame, or a slot when by time)."""
    steps = start + stride * np.arange(frames)
    if target_fps is None:
        return steps
    return count.index_at(steps / target_fps)
