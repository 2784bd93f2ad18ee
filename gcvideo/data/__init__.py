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

from gcvideo.lazy_exports import by_name, lazy_exports

_EXPORTS = by_name({
    "gcvideo.data.decoding.decode": ("DecodeError", "decode_frames"),
    "gcvideo.data.decoding.decoders": ("Decoder",),
    "gcvideo.data.annotations.formats": ("KINETICS_HEADER", "kinetics400_class_names", "load_class_names",
                                         "read_kinetics_csv", "read_path_label_list", "resolve_split",
                                         "scan_class_folders"),
    "gcvideo.data.annotations.video_table": ("StringColumn", "VideoRecord", "VideoTable"),
    "gcvideo.data.clips.transforms": ("KINETICS_MEAN", "KINETICS_STD"),
    "gcvideo.data.clips.datasets": ("VideoDataset", "VideoFilesDataset"),
    "gcvideo.data.synthetic.videos": ("write_video_dataset",),
    "gcvideo.data.synthetic.images": ("write_image_dataset",),
    "gcvideo.data.datamodules.kinetics": ("KineticsDataModule",),
    "gcvideo.data.datamodules.images": ("ImageFolderDataModule", "ImageFolderDataset"),
})
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
