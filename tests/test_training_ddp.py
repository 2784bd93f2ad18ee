"""The 10x3-style multi-view test on 2 processes (CPU DDP, gloo) equals 1 process exactly, although
DistributedSampler pads rank 1 with a duplicate of item 0 (the per-video average of 10 clips x 3 crops
of GCNet's Kinetics experiments, arXiv 1904.11492); each window is decoded once for its crops, and a bad
video is logged once for the whole run."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from collections import Counter

from training_fixtures import ROOT, SYNTH_VIDEO_CONFIG, TINY_VIDEO_OVERRIDES, run_dir_args, tiny_videos  # noqa: F401

# The CLI, with every decode attempt and the bad-video log written to files (Lightning starts the second
# process by running this same script again, so both processes are counted).
COUNTING_CLI = """
import logging, os, sys
import gcvideo.data.clips.datasets as video_dataset

real_decode = video_dataset.decode_frames

def counted_decode(path, *args, **kwargs):
    with open(os.environ["DECODES"], "a") as f:
        f.write(f"{path}\\n")
    return real_decode(path, *args, **kwargs)

video_dataset.decode_frames = counted_decode
logging.getLogger("gcvideo.data.clips.bad_videos").addHandler(logging.FileHandler(os.environ["BAD_LOG"]))
from gcvideo.cli.main import main
sys.exit(main())
"""


def _test_run(data, run, devices: int) -> tuple[dict, str, Counter, list[str]]:
    # 3 test videos x 5 clips = 15 items (of 3 crops each): an odd count, so 2 ranks get 8 each, one padded.
    # batch_size 1 makes every item's forward independent of how the items are batched.
    run.mkdir()
    (run / "cli.py").write_text(COUNTING_CLI)
    args = [sys.executable, str(run / "cli.py"), "test", "--config", str(SYNTH_VIDEO_CONFIG),
            *TINY_VIDEO_OVERRIDES, f"--data.init_args.root={data}", "--data.init_args.batch_size=1",
            "--data.init_args.test_clips=5", "--data.init_args.test_crops=3", "--data.init_args.test_crop=24",
            f"--trainer.devices={devices}", f"--trainer.strategy={'ddp' if devices > 1 else 'auto'}",
            "--random_weights=true",  # seeded, untrained: the views' bookkeeping is what is compared
            *run_dir_args(run)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": "", "PYTHONPATH": str(ROOT),
           "DECODES": str(run / "decodes.txt"), "BAD_LOG": str(run / "bad.log")}
    proc = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((run / "test" / "results.json").read_text())
    decodes = Counter((run / "decodes.txt").read_text().splitlines())
    return results, (run / "test" / "predictions.csv").read_text(), decodes, (run / "bad.log").read_text().splitlines()


def test_two_processes_equal_one_exactly(tiny_videos, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(tiny_videos, data)
    rows = list(csv.reader(open(data / "annotations" / "test.csv")))[1:]
    videos = [str(data / "videos" / "test" / r[0] / f"{r[1]}_{int(r[2]):06d}_{int(r[3]):06d}.mp4") for r in rows]
    with open(videos[2], "wb") as f:  # the last test video cannot be decoded
        f.write(b"not a video" * 100)
    one, one_csv, one_decodes, one_log = _test_run(data, tmp_path / "one", devices=1)
    two, two_csv, two_decodes, two_log = _test_run(data, tmp_path / "two", devices=2)
    assert (one["videos"], one["views"], one["missing"], one["incomplete"]) == (2, 15, 1, 0)
    assert two == one
    assert two_csv == one_csv
    # each window is decoded once for its 3 crops; item 0 twice, as the sampler's padding on rank 1;
    # the bad video is tried once per process
    assert one_decodes == {videos[0]: 5, videos[1]: 5, videos[2]: 1}
    assert two_decodes == {videos[0]: 6, videos[1]: 5, videos[2]: 2}
    # one line for the bad video and one total for the run, although both processes met it
    for log in (one_log, two_log):
        assert sum(videos[2] in line for line in log) == 1 and "left out of the test" in log[0]
        assert [line for line in log if "in this run so far" in line] == [
            "1 unreadable video in this run so far (end of test; all processes): run `gcvideo data check` to "
            "write a clean list without them"]
