"""The clip pipeline of the Slow-only recipe (SlowFast, arXiv 1812.03982, Sec. 4; GCNet, arXiv 1904.11492,
Sec. 5): where clips are sampled, their transforms, the train/val/test clip datasets and the once-per-run
log of unreadable videos."""

from gcvideo.data.clips.bad_videos import BadVideoLog
from gcvideo.data.clips.datasets import VideoDataset, VideoFilesDataset, flatten_clips
from gcvideo.data.clips.transforms import KINETICS_MEAN, KINETICS_STD, normalize, normalize_batch, spatial_transform

__all__ = ["BadVideoLog", "KINETICS_MEAN", "KINETICS_STD", "VideoDataset", "VideoFilesDataset", "flatten_clips",
           "normalize", "normalize_batch", "spatial_transform"]
