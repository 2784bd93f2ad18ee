"""The 10x3-style multi-view test on 2 processes (CPU DDP, gloo) equals 1 process exactly, although
DistributedSampler pads rank 1 with a duplicate of view 0 (PAPER.md "Test protocol")."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from test_training_helpers import ROOT, SYNTH_VIDEO_CONFIG, TINY_VIDEO_OVERRIDES, run_dir_args, tiny_videos  # noqa: F401


def _test_run(data, run, devices: int) -> tuple[dict, str]:
    # 3 test videos x (5 clips x 3 crops) = 45 views: an odd count, so 2 ranks get 23 each, one padded.
    # batch_size 1 makes every view's forward independent of how the views are batched.
    args = [sys.executable, "-m", "gcvideo.cli.main", "test", "--config", str(SYNTH_VIDEO_CONFIG),
            *TINY_VIDEO_OVERRIDES, f"--data.init_args.root={data}", "--data.init_args.batch_size=1",
            "--data.init_args.test_clips=5", "--data.init_args.test_crops=3", "--data.init_args.test_crop=24",
            f"--trainer.devices={devices}", f"--trainer.strategy={'ddp' if devices > 1 else 'auto'}",
            "--random_weights=true",  # seeded, untrained: the views' bookkeeping is what is compared
            *run_dir_args(run)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": "", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((run / "test" / "results.json").read_text())
    return results, (run / "test" / "predictions.csv").read_text()


def test_two_processes_equal_one_exactly(tiny_videos, tmp_path):
    one, one_csv = _test_run(tiny_videos, tmp_path / "one", devices=1)
    two, two_csv = _test_run(tiny_videos, tmp_path / "two", devices=2)
    assert (one["videos"], one["views"], one["missing"], one["incomplete"]) == (3, 15, 0, 0)
    assert two == one
    assert two_csv == one_csv
