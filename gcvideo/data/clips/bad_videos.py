"""Unreadable videos, each reported once per run with a running total.

A DataLoader worker cannot tell whether another worker, or another process, has met the same bad file
already: when each worker logged what it met, a bad test video came out up to 512 times at 8 nodes x
8 GPUs with 8 workers each. So workers only return the failure with the item (the item key
``bad_videos``: "" or ``encode_failures(...)``), and ``BadVideoLog`` in each training process collects
them from the batches (``KineticsDataModule.on_before_batch_transfer``). Rank zero logs a path as soon as
it meets it; ``sync()`` (collective: at each new training epoch and at the end of every stage) merges
all processes' sets, and rank zero logs the paths it has not logged yet and the run's total (after an
epoch only when it has grown).
"""

from __future__ import annotations

import logging
from typing import Sequence

import torch.distributed as dist

log = logging.getLogger(__name__)

FAILURE_KEY = "bad_videos"
_SEPARATOR = "\0"  # no path contains it


def encode_failures(failures: Sequence[tuple[str, str]]) -> str:
    """``[(path, reason), ...]`` as one string (strings collate into a list per batch, unlike lists)."""
    return _SEPARATOR.join(f"{path}{_SEPARATOR}{reason}" for path, reason in failures)


def decode_failures(text: str) -> list[tuple[str, str]]:
    fields = text.split(_SEPARATOR) if text else []
    return list(zip(fields[::2], fields[1::2]))


def _rank_and_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class BadVideoLog:
    """The unreadable videos a run has met, by path: what was wrong and what was done about it."""

    def __init__(self) -> None:
        self.videos: dict[str, tuple[str, str]] = {}  # path -> (reason, action), merged at each sync
        self._logged: set[str] = set()  # rank zero: paths already in the log
        self._unshared: dict[str, tuple[str, str]] = {}  # met by this process since the last sync
        self._total_logged = 0

    def note(self, failures: Sequence[tuple[str, str]], action: str) -> None:
        """Record failures returned by the workers; rank zero logs each new path at once."""
        rank, _ = _rank_and_world()
        for path, reason in failures:
            if path in self.videos:
                continue
            self.videos[path] = self._unshared[path] = (reason, action)
            if rank == 0:
                self._log_path(path, reason, action)

    def note_batch(self, batch: dict, action: str) -> None:
        """Take the ``bad_videos`` entry out of a collated batch (a list of strings) and record it."""
        for text in batch.pop(FAILURE_KEY, None) or ():
            if text:
                self.note(decode_failures(text), action)

    def sync(self, when: str, *, final: bool = False) -> int:
        """Merge all processes' failures (a collective call); rank zero logs the new ones and the total
        (when it has grown, or at the end of a stage: ``final``)."""
        rank, world = _rank_and_world()
        if world > 1:
            parts: list[dict[str, tuple[str, str]] | None] = [None] * world
            dist.all_gather_object(parts, self._unshared)
            for part in parts:
                for path, value in (part or {}).items():
                    self.videos.setdefault(path, value)
        self._unshared = {}
        if rank == 0:
            for path, (reason, action) in self.videos.items():
                if path not in self._logged:
                    self._log_path(path, reason, action)
            if self.videos and (final or len(self.videos) != self._total_logged):
                self._total_logged = len(self.videos)
                log.warning("%d unreadable video%s in this run so far (%s; all processes): run `gcvideo data "
                            "check` to write a clean list without them", len(self.videos),
                            "s" * (len(self.videos) > 1), when)
        return len(self.videos)

    def _log_path(self, path: str, reason: str, action: str) -> None:
        self._logged.add(path)
        log.warning("unreadable video %s, %s: %s", path, action, reason)
