"""Data that gcvideo writes itself: the embedded synthetic action dataset (Kinetics layout), its image
counterpart for the 2D rows, and Kinetics-like files encoded as downloads are, to benchmark the input
pipeline with."""

from gcvideo.data.synthetic.images import write_image_dataset
from gcvideo.data.synthetic.kinetics_like import write_kinetics_like_dataset
from gcvideo.data.synthetic.videos import write_mp4, write_video_dataset

__all__ = ["write_image_dataset", "write_kinetics_like_dataset", "write_mp4", "write_video_dataset"]
