"""Lightning data modules: Kinetics-style videos (the Slow-only R50 input) and image folders (the
ResNet-50 rows) of GCNet's tables (arXiv 1904.11492, Sec. 5)."""

from gcvideo.data.datamodules.images import ImageFolderDataModule, ImageFolderDataset
from gcvideo.data.datamodules.kinetics import KineticsDataModule

__all__ = ["ImageFolderDataModule", "ImageFolderDataset", "KineticsDataModule"]
