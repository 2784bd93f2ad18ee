"""What a decoder needs to know about one video file: its frames, timing, layout and backend.

``VideoInfo`` is one row of the manifest that ``gcvideo data check`` writes (``gcvideo.data.decoding.manifest``),
or the result of a quick look at the file's header (``gcvideo.data.decoding.probe``). ``FrameCount`` is what a
frame selector receives: the number of decodable frames (an int, so selectors that only count frames
need nothing more), with the frame times needed to sample clips by time (``gcvideo.data.clips.sampling``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gcvideo.data.decoding.decoders import Decoder

# The frame rate assumed for a file that states none and whose timestamps cannot give one (a single
# frame, or no average rate): PySlowFast's Kinetics TARGET_FPS, so such a video is sampled as if it
# were recorded at the rate the clips are sampled at.
ASSUMED_FPS = 30.0


@dataclass(frozen=True)
class VideoInfo:
    """One video as decoders see it.

    Attributes:
        frames: decodable frames (the length of the decodable range).
        fps: average frame rate of the decodable frames.
        first_frame: index of the first decodable frame (frames before it cannot be read).
        duration: seconds the decodable frames cover.
        width, height: the stored picture (before rotation).
        rotation: degrees counter-clockwise a player turns the picture (the display matrix), 0/90/180/270.
        codec: the video codec's FFmpeg name.
        backend: the backend that reads this file right (one of ``decoders.BACKEND_NAMES``).
        vfr: variable frame rate (frame times are not ``index / fps``; sampling by time needs them).
        checked: decoded in full by ``gcvideo data check``: ``frames`` and ``first_frame`` are exact and
            ``backend`` was compared with an in-order decode (else they come from the file's header).
    """

    frames: int
    fps: float
    first_frame: int = 0
    duration: float = 0.0
    width: int = 0
    height: int = 0
    rotation: int = 0
    codec: str = ""
    backend: str = Decoder.DECORD.value
    vfr: bool = False
    checked: bool = False


class FrameCount(int):
    """The number of frames a selector chooses from, with their times (seconds from the first one).

    It is an int, so ``select(n)`` selectors that only count frames need nothing else; selectors that
    sample by time use ``duration`` and ``index_at``. ``times`` is None for a constant frame rate. An
    unknown rate (``fps`` 0) counts as ``ASSUMED_FPS``.
    """

    fps: float
    times: np.ndarray | None

    def __new__(cls, frames: int, fps: float, times: np.ndarray | None = None) -> "FrameCount":
        count = super().__new__(cls, max(int(frames), 0))
        count.fps = float(fps) if fps and fps > 0 else ASSUMED_FPS
        count.times = None if times is None else np.asarray(times, dtype=np.float64)[: int(count)]
        return count

    @property
    def duration(self) -> float:
        """Seconds the frames cover (the last frame lasts one average frame period)."""
        if self.times is not None and len(self.times) > 0:
            return float(self.times[-1]) + 1.0 / self.fps
        return int(self) / self.fps

    def index_at(self, seconds: np.ndarray) -> np.ndarray:
        """Index of the frame shown at each time (the last frame that starts at or before it), clamped."""
        seconds = np.asarray(seconds, dtype=np.float64)
        if self.times is not None:
            index = np.searchsorted(self.times, seconds + 1e-6, side="right") - 1
        else:
            index = np.floor(seconds * self.fps + 1e-6).astype(np.int64)
        return np.clip(index, 0, max(int(self) - 1, 0)).astype(np.int64)
