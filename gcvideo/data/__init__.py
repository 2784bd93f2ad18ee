"""Video and image data: Kinetics layout, decoding, clip datasets, synthetic datasets (issue 3)."""

from gcvideo.data.annotations import (kinetics400_class_names, load_class_names, read_kinetics_csv,
                                      read_path_label_list, resolve_split, scan_class_folders)
from gcvideo.data.datamodule import KineticsDataModule
from gcvideo.data.decoding import DecodeError, decode_frames
from gcvideo.data.image_datamodule import ImageFolderDataModule, ImageFolderDataset
from gcvideo.data.synth import write_video_dataset
from gcvideo.data.synth_images import write_image_dataset
from gcvideo.data.transforms import KINETICS_MEAN, KINETICS_STD
from gcvideo.data.video_dataset import VideoDataset, VideoFilesDataset
from gcvideo.data.video_table import StringColumn, VideoRecord, VideoTable

__all__ = [
    "DecodeError", "ImageFolderDataModule", "ImageFolderDataset", "KINETICS_MEAN", "KINETICS_STD",
    "KineticsDataModule", "StringColumn", "VideoDataset", "VideoFilesDataset", "VideoRecord", "VideoTable",
    "decode_frames",
    "kinetics400_class_names", "load_class_names", "read_kinetics_csv", "read_path_label_list", "resolve_split",
    "scan_class_folders", "write_image_dataset", "write_video_dataset",
]
