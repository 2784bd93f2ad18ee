"""Which file has which label: Kinetics CSVs, ``path label`` lists and class folders, read into numpy
``VideoTable`` columns, with class indices from a class-name list (the Kinetics-400 list ships here)."""

from gcvideo.data.annotations.formats import (
                                              DEFAULT_PATH_PATTERN,
                                              FORMATS,
                                              KINETICS_HEADER,
                                              UnknownLabelError,
                                              kinetics400_class_names,
                                              kinetics_video_name,
                                              load_class_names,
                                              read_kinetics_csv,
                                              read_path_label_list,
                                              resolve_split,
                                              scan_class_folders,
)
from gcvideo.data.annotations.video_files import VIDEO_EXTENSIONS
from gcvideo.data.annotations.video_table import StringColumn, VideoRecord, VideoTable

__all__ = [
    "DEFAULT_PATH_PATTERN", "FORMATS", "KINETICS_HEADER", "StringColumn", "UnknownLabelError", "VIDEO_EXTENSIONS",
    "VideoRecord", "VideoTable", "kinetics400_class_names", "kinetics_video_name", "load_class_names",
    "read_kinetics_csv", "read_path_label_list", "resolve_split", "scan_class_folders",
]
