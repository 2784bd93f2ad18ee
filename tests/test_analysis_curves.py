"""Training curves and printed results against hand-computed values: per-epoch means over the logged
steps (a resumed run's repeated steps counted once, its latest value), evaluation-only logs left out,
percentages with a precision that follows the number of videos, and the schedule's one source of length."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch
from PIL import Image

from gcvideo.analysis.curves import epoch_table, read_metrics, write_curves
from gcvideo.cli.main import main as gcvideo
from gcvideo.cli.summary import format_metrics
from gcvideo.errors import UserError
from gcvideo.training.schedule import WarmupCosineLR

FIELDS = ["epoch", "step", "train/loss", "train/lr", "val/loss", "val/top1", "val/top5"]


def _write(path: Path, rows: list[dict], fields: list[str] = FIELDS) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fields)
        writer.writeheader()
        writer.writerows(rows)


@pytest.fixture
def run_dir(tmp_path) -> Path:
    """Epoch 0 (steps 0-2) and part of epoch 1 (steps 3-4) in version_0; the run was resumed from the end of
    epoch 0 in version_1, which logs steps 3-5 again (step 3 and 4 with new values) and validates epoch 1;
    version_2 is a `gcvideo test` (no training metrics) whose epoch column must not count."""
    _write(tmp_path / "logs" / "version_0" / "metrics.csv", [
        {"epoch": 0, "step": 0, "train/loss": 2.0, "train/lr": 0.001},
        {"epoch": 0, "step": 1, "train/loss": 1.0, "train/lr": 0.005},
        {"epoch": 0, "step": 2, "train/loss": 1.5, "train/lr": 0.01},
        {"epoch": 0, "step": 2, "val/loss": 1.2, "val/top1": 0.5, "val/top5": 0.9},
        {"epoch": 1, "step": 3, "train/loss": 9.0, "train/lr": 0.009},
        {"epoch": 1, "step": 4, "train/loss": 9.0, "train/lr": 0.008},
    ])
    _write(tmp_path / "logs" / "version_1" / "metrics.csv", [
        {"epoch": 1, "step": 3, "train/loss": 1.0, "train/lr": 0.009},
        {"epoch": 1, "step": 4, "train/loss": 0.5, "train/lr": 0.005},
        {"epoch": 1, "step": 5, "train/loss": 0.6, "train/lr": 0.001},
        {"epoch": 1, "step": 5, "val/loss": 0.7, "val/top1": 0.75, "val/top5": 1.0},
    ])
    _write(tmp_path / "logs" / "version_2" / "metrics.csv", [{"epoch": 1, "test/top1": 0.1, "val/top1": 0.0}],
           ["epoch", "test/top1", "val/top1"])
    return tmp_path


def test_epoch_table_counts_a_resumed_step_once(run_dir):
    table = epoch_table(read_metrics(run_dir))
    assert [row["epoch"] for row in table] == [0, 1]
    assert table[0]["train_loss"] == pytest.approx((2.0 + 1.0 + 1.5) / 3)
    assert table[1]["train_loss"] == pytest.approx((1.0 + 0.5 + 0.6) / 3)  # version_1's values for steps 3-4
    assert (table[0]["val_top1"], table[1]["val_top1"], table[1]["val_loss"]) == (0.5, 0.75, 0.7)
    assert table[0]["lr_steps"] == [0.001, 0.005, 0.01] and table[1]["lr"] == 0.001


def test_write_curves_and_the_report_command(run_dir, capsys):
    png, table = write_curves(run_dir)
    with Image.open(png) as image:
        assert image.format == "PNG" and image.size[0] > 2 * image.size[1]
    assert table.read_text().splitlines() == [
        "epoch,train_loss,val_loss,val_top1_percent,val_top5_percent,lr",
        "0,1.5,1.2,50.00,90.00,0.01", "1,0.7,0.7,75.00,100.00,0.001"]
    assert gcvideo(["report", str(run_dir), "--out", str(run_dir / "elsewhere" / "c.png")]) == 0
    out = capsys.readouterr().out
    assert (run_dir / "elsewhere" / "c.png").is_file() and "75.00" in out
    assert gcvideo(["report", str(run_dir / "nothing")]) == 2
    assert "no metrics.csv under" in capsys.readouterr().err


@pytest.mark.parametrize(("metrics", "text"), [
    ({"test/top1": 0.87, "test/top5": 0.99, "test/videos": 100.0, "test/missing": 0.0, "test/views": 30.0},
     "top-1 87.0 %, top-5 99.0 %, 100 videos, 0 missing, 30 views"),
    ({"top1": 0.745812, "top5": 0.916312, "videos": 19796, "missing": 85, "views": 30},  # Kinetics-400 val size
     "top-1 74.58 %, top-5 91.63 %, 19,796 videos, 85 missing, 30 views"),
    ({"val/loss": 1.23456, "val/top1": 1 / 3, "val/top5": 1.0}, "top-1 33.3 %, top-5 100.0 %, loss 1.235"),
])
def test_metrics_are_printed_as_percentages_and_counts(metrics, text):
    assert format_metrics(metrics) == text


def _scheduler(**kwargs) -> tuple[torch.optim.Optimizer, WarmupCosineLR]:
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    return optimizer, WarmupCosineLR(optimizer, **kwargs)


def test_the_schedule_takes_its_length_from_the_trainer():
    optimizer, scheduler = _scheduler(warmup_epochs=1, warmup_start_factor=0.1)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.01)  # the first rate needs no length
    scheduler.set_max_epochs(4)
    for _ in range(4):
        optimizer.step()
        scheduler.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.0)  # a cosine over 4 epochs, not another length
    with pytest.raises(UserError, match="warm-up of 1 epochs does not fit a run of 1 epochs"):
        _scheduler(warmup_epochs=1)[1].set_max_epochs(1)
    with pytest.raises(UserError, match=r"max_epochs \(8\) differs from trainer.max_epochs \(2\)"):
        _scheduler(max_epochs=8)[1].set_max_epochs(2)
    with pytest.raises(RuntimeError, match="length is unknown"):
        optimizer, unset = _scheduler()
        optimizer.step()
        unset.step()


def test_a_resumed_schedule_keeps_this_runs_length():
    """Lightning restores the scheduler after configure_optimizers set the length from this run's trainer."""
    optimizer, scheduler = _scheduler(max_epochs=4)
    optimizer.step()
    scheduler.step()
    saved = scheduler.state_dict()
    _, resumed = _scheduler()
    resumed.set_max_epochs(6)  # the run was extended to 6 epochs
    resumed.load_state_dict(saved)
    assert (resumed.last_epoch, resumed.max_epochs) == (1, 6.0)
