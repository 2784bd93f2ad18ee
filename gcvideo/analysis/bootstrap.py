"""Is a top-1 gap between two rows larger than the noise? A paired bootstrap over the test videos.

GCNet's table (arXiv 1904.11492, Sec. 5) separates rows by a few tenths of a point; with 20k test videos
the noise of one run is about that size, with 100 videos several points. Two runs are compared on the videos
both evaluated: per video, each side's accuracy is the mean over its runs (seeds) of whether the video's
top-1 was right, and the difference is the mean over videos of (row - baseline). Resampling the common
videos with replacement (``RESAMPLES`` times, a fixed seed, so the same inputs give the same interval)
gives the 2.5th and 97.5th percentiles of that difference: a 95 % interval that holds the test set's
sampling noise, not the variation between training runs (the spread over seeds shows that).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

RESAMPLES = 2000
SEED = 0
_CHUNK = 100  # resamples drawn at a time: memory stays at _CHUNK x videos indices


@dataclass(frozen=True)
class PairedDelta:
    """Top-1 of a row minus its baseline's on their common videos, as fractions, with a 95 % interval."""

    delta: float | None
    low: float | None
    high: float | None
    videos: int

    def as_json(self) -> dict[str, object]:
        """Fractions to 9 decimals: far below one video in a billion, and free of float noise in the text."""
        cut = lambda v: None if v is None else round(v, 9)  # noqa: E731
        interval = None if self.low is None else [cut(self.low), cut(self.high)]
        return {"delta_top1": cut(self.delta), "delta_top1_ci": interval, "delta_videos": self.videos}


def per_video_accuracy(runs: Sequence[Mapping[str, int]], keys: Sequence[str]) -> np.ndarray:
    """For each key, the mean over ``runs`` (video key -> 1 if right) of whether the video was right."""
    return np.array([[run[k] for k in keys] for run in runs], dtype=np.float64).mean(axis=0)


def common_videos(*sides: Sequence[Mapping[str, int]]) -> list[str]:
    """The video keys every run of every side evaluated, sorted."""
    runs = [run for side in sides for run in side]
    if not runs:
        return []
    keys = set(runs[0])
    for run in runs[1:]:
        keys &= set(run)
    return sorted(keys)


def paired_delta(row: Sequence[Mapping[str, int]], baseline: Sequence[Mapping[str, int]],
                 resamples: int = RESAMPLES, seed: int = SEED) -> PairedDelta:
    """The paired bootstrap of the module docstring; ``row`` and ``baseline`` hold one mapping per run."""
    keys = common_videos(row, baseline)
    if not keys:
        return PairedDelta(None, None, None, 0)
    difference = per_video_accuracy(row, keys) - per_video_accuracy(baseline, keys)
    rng = np.random.default_rng(seed)
    means = []
    for start in range(0, resamples, _CHUNK):
        draws = rng.integers(0, len(keys), size=(min(_CHUNK, resamples - start), len(keys)))
        means.append(difference[draws].mean(axis=1))
    low, high = np.percentile(np.concatenate(means), [2.5, 97.5])
    return PairedDelta(float(difference.mean()), float(low), float(high), len(keys))
