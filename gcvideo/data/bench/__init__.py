"""``gcvideo data bench``: clips per second of the clip pipelines (``pipelines``) and of one DataLoader
worker with each input-pipeline lever (``workers``)."""

from gcvideo.data.bench.pipelines import bench, format_bench
from gcvideo.data.bench.workers import bench_training, format_training

__all__ = ["bench", "bench_training", "format_bench", "format_training"]
