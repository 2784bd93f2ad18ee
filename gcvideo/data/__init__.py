"""Video and image data for GCNet's tables (arXiv 1904.11492, Sec. 5), in subpackages that import upward only:

- ``decoding``: reading real files frame-exactly (backends, probes, the manifest, one video's check);
- ``annotations``: the Kinetics layout, ``path label`` lists and class folders, class names;
- ``clips``: clip sampling, transforms and the clip datasets;
- ``preparation``: ``gcvideo data check`` and ``gcvideo data prepare`` over a split;
- ``synthetic``: the embedded synthetic datasets and Kinetics-like benchmark files;
- ``bench``: ``gcvideo data bench``;
- ``datamodules``: the Lightning data modules (the only part that imports Lightning).

This face imports a name's module on first use, so the data tools do not load Lightning.
"""

from gcvideo.lazy_exports import lazy_exports

_EXPORTS = {
    "DecodeError": "gcvideo.data.decoding.decode",
    "decode_frames": "gcvideo.data.decoding.decode",
    "Decoder": "gcvideo.data.decoding.decoders",
    "KINETICS_HEADER": "gcvideo.data.annotations.formats",
    "kinetics400_class_names": "gcvideo.data.annotations.formats",
    "load_class_names": "gcvideo.data.annotations.formats",
    "read_kinetics_csv": "gcvideo.data.annotations.formats",
    "read_path_label_list": "gcvideo.data.annotations.formats",
    "resolve_split": "gcvideo.data.annotations.formats",
    "scan_class_folders": "gcvideo.data.annotations.formats",
    "StringColumn": "gcvideo.data.annotations.video_table",
    "VideoRecord": "gcvideo.data.annotations.video_table",
    "VideoTable": "gcvideo.data.annotations.video_table",
    "KINETICS_MEAN": "gcvideo.data.clips.transforms",
    "KINETICS_STD": "gcvideo.data.clips.transforms",
    "VideoDataset": "gcvideo.data.clips.datasets",
    "VideoFilesDataset": "gcvideo.data.clips.datasets",
    "write_video_dataset": "gcvideo.data.synthetic.videos",
    "write_image_dataset": "gcvideo.data.synthetic.images",
    "KineticsDataModule": "gcvideo.data.datamodules.kinetics",
    "ImageFolderDataModule": "gcvideo.data.datamodules.images",
    "ImageFolderDataset": "gcvideo.data.datamodules.images",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
