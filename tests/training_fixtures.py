"""Tiny datasets and CLI overrides shared by the training and command-line tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from gcvideo.data.synthetic.videos import write_video_dataset

ROOT = Path(__file__).resolve().parents[1]
SYNTH_VIDEO_CONFIG = ROOT / "configs" / "synthetic" / "slow_r50_gc5.yaml"

# 3 classes ("moving left/right/up"), 16 frames of 32x32 per video.
TINY_VIDEOS = dict(classes=3, train_per_class=4, val_per_class=1, test_per_class=1, seconds=1.0, fps=16.0,
                   size=(32, 32), seed=0, workers=1, progress=False)

# A width-4 model on 4x32x32 clips, one data worker, no progress bars.
TINY_VIDEO_OVERRIDES = [
    "--model.width=4", "--data.init_args.frames=4", "--data.init_args.stride=4",
    "--data.init_args.batch_size=4", "--data.init_args.num_workers=0",
    "--data.init_args.train_short_side=[32, 32]", "--data.init_args.train_crop=32",
    "--data.init_args.val_short_side=32", "--data.init_args.val_crop=32",
    "--data.init_args.test_short_side=32", "--data.init_args.test_crop=32",
    "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false",
]


@pytest.fixture(scope="session")
def tiny_videos(tmp_path_factory) -> Path:
    return write_video_dataset(tmp_path_factory.mktemp("tiny_videos"), **TINY_VIDEOS)


def run_dir_args(run_dir: Path) -> list[str]:
    """Put checkpoints, logs and test outputs of a CLI run under ``run_dir``."""
    return [f"--trainer.default_root_dir={run_dir}", f"--trainer.logger.init_args.save_dir={run_dir}"]

