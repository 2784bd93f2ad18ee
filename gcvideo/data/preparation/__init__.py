"""Preparing a downloaded dataset before training: ``gcvideo data check`` (every video of a split checked
into a resumable manifest and clean/bad lists) and ``gcvideo data prepare`` (re-encoding for fast decoding).
Neither imports Lightning."""

from gcvideo.data.preparation.reencode import prepare_dataset, prepare_video
from gcvideo.data.preparation.split_check import check_split

__all__ = ["check_split", "prepare_dataset", "prepare_video"]
