"""``gcvideo table --runs`` on tiny runs: two rows and a second seed of one are trained and tested on synthetic
videos, merged into GCNet's Kinetics table (arXiv 1904.11492) with paired-bootstrap intervals; a re-test
without three videos is flagged; the single view equals a separate one-view test of the same weights."""

from __future__ import annotations

import csv
import json
import math
import shutil
import statistics
from pathlib import Path

import pytest
from PIL import Image
from training_fixtures import ROOT, TINY_IMAGE_OVERRIDES, TINY_VIDEO_OVERRIDES, TINY_VIDEOS, run_dir_args

from gcvideo.cli.main import main
from gcvideo.data.synthetic.images import write_image_dataset
from gcvideo.data.synthetic.videos import write_video_dataset

# stride 3: 16-frame videos leave 6 frames of room for a 4 x 3 window, so the centre one of 5 windows (index 2,
# start round(6 * 2 / 4) = 3) is the one window of test_clips=1 (start 6 // 2 = 3); crop 1 of 3 of 24 in 32 is the
# centre crop. A 1 x 1 test therefore sees exactly the pixels of the 5 x 3 test's single view.
TEST_VIEWS = ["--data.init_args.stride=3", "--data.init_args.test_clips=5", "--data.init_args.test_crops=3",
              "--data.init_args.test_crop=24"]
RUNS = {"base_seed0": ("slow_r50", 0), "base_seed1": ("slow_r50", 1), "gc5_seed0": ("slow_r50_gc5", 0)}


def _common(preset: str, data: Path, run: Path, seed: int) -> list[str]:
    return ["--config", str(ROOT / "configs" / "synthetic" / f"{preset}.yaml"), *TINY_VIDEO_OVERRIDES, *TEST_VIEWS,
            f"--data.init_args.root={data}", f"--seed_everything={seed}", *run_dir_args(run)]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """Three tiny runs (one epoch each) tested on 12 videos, and their dataset."""
    top = tmp_path_factory.mktemp("table")
    data = write_video_dataset(top / "data", **{**TINY_VIDEOS, "test_per_class": 4})
    folders = {"data": data}
    for name, (preset, seed) in RUNS.items():
        run = folders[name] = top / "runs" / name
        common = _common(preset, data, run, seed)
        assert main(["fit", *common, "--trainer.max_epochs=1", "--trainer.limit_val_batches=0",
                     "--model.lr_scheduler.init_args.warmup_epochs=0"]) == 0
        assert main(["test", *common, "--ckpt_path=last"]) == 0
    return folders


def _table(capsys, *args: str) -> list[dict]:
    capsys.readouterr()  # what earlier commands printed
    assert main(["table", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def _correct(run: Path) -> dict[str, int]:
    with open(run / "test" / "predictions.csv", newline="") as f:
        return {r["path"]: int(r["correct"]) for r in csv.DictReader(f) if r["status"] == "ok"}


def test_the_table_merges_seeds_and_compares_with_the_baseline(runs, capsys, tmp_path):
    rows = {r["model"]: r for r in _table(capsys, "--runs", str(runs["base_seed0"].parent), "--plot",
                                          str(tmp_path / "table.png"))}
    assert list(rows) == ["slow_r50", "slow_r50_nl5", "slow_r50_snl5", "slow_r50_gc5", "slow_r50_gc_all"]
    base, gc5 = rows["slow_r50"], rows["slow_r50_gc5"]
    results = [json.loads((runs[n] / "test" / "results.json").read_text()) for n in RUNS]
    assert (base["runs"], base["seeds"], gc5["runs"], rows["slow_r50_nl5"]["status"]) == (2, [0, 1], 1, "no run")
    assert base["top1"] == pytest.approx(statistics.fmean([results[0]["top1"], results[1]["top1"]]), abs=1e-12)
    assert base["top1_std"] == pytest.approx(statistics.stdev([results[0]["top1"], results[1]["top1"]]), abs=1e-12)
    assert gc5["top1_single_view"] == results[2]["top1_single_view"] and gc5["top1_std"] is None
    assert (base["paper_top1"], base["paper_top5"], gc5["paper_top1"]) == (0.749, 0.919, 0.758)
    assert (gc5["videos"], gc5["missing"], base["dataset_sha256"]) == (12, 0, results[0]["dataset"]["fingerprint"])
    assert gc5["dataset_sha256"] == base["dataset_sha256"] and gc5["flags"] == []
    assert gc5["gpu_hours"] is None and gc5["device_hours"] == results[2]["compute"]["device_hours"] > 0  # a CPU fit
    # the delta against an independent computation: per video, the mean over the baseline's seeds
    seeds = [_correct(runs["base_seed0"]), _correct(runs["base_seed1"])]
    mine = _correct(runs["gc5_seed0"])
    difference = [mine[v] - statistics.fmean(s[v] for s in seeds) for v in mine]
    assert gc5["delta_videos"] == 12 and base["delta_top1"] is None
    assert gc5["delta_top1"] == pytest.approx(statistics.fmean(difference), abs=1e-12)
    low, high = gc5["delta_top1_ci"]
    assert low <= gc5["delta_top1"] <= high and low < high
    half = 1.96 * statistics.stdev(difference) / math.sqrt(len(difference))  # the normal approximation
    assert 0.5 * half < (high - low) / 2 < 1.5 * half
    assert _table(capsys, "--runs", str(runs["base_seed0"].parent)) == list(rows.values())  # deterministic
    with Image.open(tmp_path / "table.png") as png:
        assert png.size == (1000, 400)
    assert main(["table", "--runs", str(runs["base_seed0"].parent)]) == 0
    markdown = capsys.readouterr().out
    assert "| `slow_r50` | 2 (seeds 0, 1) |" in markdown and "paired bootstrap" in markdown


def test_a_retest_without_three_videos_is_flagged(runs, capsys, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(runs["data"], data)
    gone = sorted((data / "videos" / "test").rglob("*.mp4"))[:3]
    for video in gone:
        video.unlink()
    retest = tmp_path / "gc5_retest"
    shutil.copytree(runs["gc5_seed0"], retest)
    assert main(["test", *_common("slow_r50_gc5", data, retest, 0), "--ckpt_path=last"]) == 0
    results = json.loads((retest / "test" / "results.json").read_text())
    assert (results["missing"], results["videos"]) == (3, 9)
    assert (results["dataset"]["missing"], results["dataset"]["evaluated"], results["dataset"]["listed"]) == (3, 9, 12)
    rows = {r["model"]: r for r in _table(capsys, "--runs", str(runs["base_seed0"]), str(runs["base_seed1"]),
                                          str(retest))}
    gc5 = rows["slow_r50_gc5"]
    assert gc5["missing"] == 3 and gc5["delta_videos"] == 9
    assert gc5["dataset_sha256"] != rows["slow_r50"]["dataset_sha256"]
    assert gc5["flags"] == ["gc5_retest: evaluated videos differ from base_seed0's"]
    assert main(["table", "--runs", str(runs["base_seed0"]), str(retest)]) == 0
    assert "(!) Not measured on the same data:" in capsys.readouterr().out


def test_the_single_view_equals_a_separate_test_of_that_view(runs, tmp_path):
    base = runs["base_seed0"]
    common = _common("slow_r50", runs["data"], tmp_path, 0)
    assert main(["test", *common, "--data.init_args.test_clips=1", "--data.init_args.test_crops=1",
                 f"--ckpt_path={base / 'checkpoints' / 'last.ckpt'}"]) == 0
    separate = json.loads((tmp_path / "test" / "results.json").read_text())
    tested = json.loads((base / "test" / "results.json").read_text())
    assert (separate["views"], tested["views"], tested["single_view"]["clip"]) == (1, 15, 2)
    assert separate["top1"] == tested["top1_single_view"] and separate["top5"] == tested["top5_single_view"]
    with open(tmp_path / "test" / "predictions.csv", newline="") as f:
        one_view = [r["top1"] for r in csv.DictReader(f)]
    with open(base / "test" / "predictions.csv", newline="") as f:
        assert [r["single_view_top1"] for r in csv.DictReader(f)] == one_view


def test_untested_and_unreadable_runs(runs, capsys, tmp_path):
    untested = tmp_path / "untested"
    shutil.copytree(runs["gc5_seed0"], untested)
    shutil.rmtree(untested / "test")
    rows = {r["model"]: r for r in _table(capsys, "--runs", str(untested))}
    assert (rows["slow_r50_gc5"]["status"], rows["slow_r50_gc5"]["not_tested"]) == ("not tested", 1)
    assert main(["table", "--runs", str(untested)]) == 0
    row = "| `slow_r50_gc5` | 0 (1 not tested) | - | - | ~75.8 / ~92.3 | not tested | not tested |"
    assert row in capsys.readouterr().out
    broken = tmp_path / "broken"
    shutil.copytree(runs["gc5_seed0"], broken)
    (broken / "test" / "results.json").write_text("{not json")
    assert main(["table", "--runs", str(broken)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"gcvideo table: error: {broken / 'test' / 'results.json'}: unreadable")
    assert main(["table", "--runs", str(tmp_path / "nowhere")]) == 2


def test_image_runs_join_the_imagenet_table(runs, capsys, tmp_path):
    """An image test writes results.json too (one view per image), so ResNet-50 runs join the ImageNet table."""
    data = write_image_dataset(tmp_path / "images", classes=3, train_per_class=4, val_per_class=3, size=32, seed=0)
    run = tmp_path / "resnet50"
    common = ["--config", str(ROOT / "configs" / "synthetic" / "resnet50.yaml"), *TINY_IMAGE_OVERRIDES,
              f"--data.init_args.root={data}", *run_dir_args(run)]
    assert main(["fit", *common, "--trainer.max_epochs=1", "--trainer.limit_val_batches=0",
                 "--model.lr_scheduler.init_args.warmup_epochs=0"]) == 0
    assert main(["test", *common, "--ckpt_path=last"]) == 0
    results = json.loads((run / "test" / "results.json").read_text())
    with open(run / "test" / "predictions.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert (results["videos"], results["views"], results["dataset"]["listed"], len(rows)) == (9, 1, 9, 9)
    assert results["top1"] == statistics.fmean(int(r["correct"]) for r in rows) == results["top1_single_view"]
    table = {r["model"]: r for r in _table(capsys, "--runs", str(run), str(runs["base_seed0"]))}
    assert [r["table"] for r in table.values()] == ["Kinetics-400"] * 5 + ["ImageNet"] * 4
    resnet = table["resnet50"]
    assert (resnet["status"], resnet["paper_top1"], resnet["top1"]) == ("measured", 0.769, results["top1"])
    assert table["resnet50_gc_r16"]["status"] == "no run" and table["resnet50_snl"]["paper_top1"] is None
