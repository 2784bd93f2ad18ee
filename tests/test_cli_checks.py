"""The command line's traps, each a test: a checkpoint of another
architecture or class list, evaluation without weights, a second run in a run folder, the schedule's
length, Ctrl-C; and what users see: one line per user error (exit 2), the run folder, percentages,
line-wise progress, TensorBoard logs and curves."""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import lightning as L
import pytest
import torch
import yaml
from training_fixtures import ROOT, SYNTH_VIDEO_CONFIG, TINY_VIDEO_OVERRIDES, tiny_videos  # noqa: F401

from gcvideo.cli.main import main as gcvideo
from gcvideo.training import Classifier

NL5_CONFIG = ROOT / "configs" / "synthetic" / "slow_r50_nl5.yaml"


def _args(data: Path, run: Path, config: Path = SYNTH_VIDEO_CONFIG) -> list[str]:
    return ["--config", str(config), *TINY_VIDEO_OVERRIDES, f"--data.init_args.root={data}",
            f"--trainer.default_root_dir={run}"]


def _error_line(capsys) -> str:
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1, err
    return err[0]


@pytest.fixture(scope="module")
def run(tiny_videos, tmp_path_factory) -> Path:  # noqa: F811
    """slow_r50_gc5 trained 2 tiny epochs (the config's schedule: 1 warm-up epoch, then half-cosine)."""
    run = tmp_path_factory.mktemp("gc5")
    assert gcvideo(["fit", *_args(tiny_videos, run), "--trainer.max_epochs=2", "--trainer.log_every_n_steps=1"]) == 0
    return run


def _class_names(data: Path) -> list[str]:
    return (data / "classnames.txt").read_text().split("\n")[:3]


def _checkpoint(path: Path, preset: str, class_names: list[str], width: int = 4) -> Path:
    module = Classifier(preset, num_classes=len(class_names), width=width, class_names=class_names)
    torch.save({"state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams)}, path)
    return path


# --- 1. a checkpoint must fit the config ------------------------------------------------------------
def test_a_checkpoint_of_another_preset_stops_naming_both(run, tiny_videos, tmp_path, capsys):  # noqa: F811
    last = run / "checkpoints" / "last.ckpt"
    assert gcvideo(["test", *_args(tiny_videos, tmp_path, NL5_CONFIG), f"--ckpt_path={last}"]) == 2
    line = _error_line(capsys)
    assert "slow_r50_gc5 (video, width 4, 3 classes)" in line and "slow_r50_nl5 (video, width 4, 3 classes)" in line
    assert not (tmp_path / "test").exists()
    assert gcvideo(["validate", *_args(tiny_videos, tmp_path), "--model.width=8", f"--ckpt_path={last}"]) == 2
    assert "width 4" in (line := _error_line(capsys)) and "width 8" in line


def test_an_image_checkpoint_is_called_an_image_checkpoint(tiny_videos, tmp_path, capsys):  # noqa: F811
    image = _checkpoint(tmp_path / "image.ckpt", "resnet50", _class_names(tiny_videos))
    assert gcvideo(["test", *_args(tiny_videos, tmp_path), f"--ckpt_path={image}"]) == 2
    assert "is an image checkpoint (resnet50" in _error_line(capsys)
    assert gcvideo(["predict", *_args(tiny_videos, tmp_path), f"--model.init_from={image}"]) == 2
    assert "--model.init_from" in (line := _error_line(capsys)) and "image checkpoint" in line


def test_a_checkpoint_of_another_class_list_is_refused(tiny_videos, tmp_path, capsys):  # noqa: F811
    names = _class_names(tiny_videos)
    other = _checkpoint(tmp_path / "other.ckpt", "slow_r50_gc5", names[::-1])
    assert gcvideo(["test", *_args(tiny_videos, tmp_path), f"--ckpt_path={other}"]) == 2
    assert "another class list" in (line := _error_line(capsys)) and repr(names[0]) in line


def test_init_from_must_hold_every_weight_when_evaluating(tiny_videos, tmp_path, capsys):  # noqa: F811
    baseline = Classifier("slow_r50", num_classes=3, width=4)
    plain = tmp_path / "SLOW_8x8_R50.pyth"  # no gcvideo hyperparameters: checked tensor by tensor
    torch.save({"model_state": baseline.model.state_dict()}, plain)
    assert gcvideo(["test", *_args(tiny_videos, tmp_path), f"--model.init_from={plain}"]) == 2
    line = _error_line(capsys)
    assert "does not hold every weight of slow_r50_gc5" in line and "model tensors missing" in line


# --- 2. evaluation needs weights ----------------------------------------------------------------------
@pytest.mark.parametrize("subcommand", ["validate", "test", "predict"])
def test_evaluation_without_weights_is_refused(subcommand, tiny_videos, tmp_path, capsys):  # noqa: F811
    assert gcvideo([subcommand, *_args(tiny_videos, tmp_path)]) == 2
    line = _error_line(capsys)
    assert f"no weights to {subcommand}" in line and "--ckpt_path" in line and "--random_weights true" in line
    assert not (tmp_path / "test").exists()


def test_random_weights_on_purpose(tiny_videos, tmp_path, capsys):  # noqa: F811
    assert gcvideo(["validate", *_args(tiny_videos, tmp_path), "--random_weights=true"]) == 0
    out = capsys.readouterr().out
    assert "weights: untrained (--random_weights true)" in out and "gcvideo validate: top-1 " in out


# --- 3. one run per run folder --------------------------------------------------------------------
def _files(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in sorted(folder.iterdir())}


def test_one_run_per_run_folder_and_last_means_this_run(run, tiny_videos, tmp_path, capsys):  # noqa: F811
    folder = tmp_path / "run"
    shutil.copytree(run, folder)
    checkpoints = folder / "checkpoints"
    before = _files(checkpoints)
    assert gcvideo(["fit", *_args(tiny_videos, folder)]) == 2  # a new fit into a finished run
    line = _error_line(capsys)
    assert "already holds a run (last.ckpt: epoch 1, step 6)" in line and "--ckpt_path last" in line
    assert gcvideo(["fit", *_args(tiny_videos, folder), "--trainer.fast_dev_run=true"]) == 0
    assert _files(checkpoints) == before  # the smoke test writes no checkpoint
    stale = checkpoints / "last-v1.ckpt"  # a stray checkpoint, newer than last.ckpt: "last" still means last.ckpt
    shutil.copy(checkpoints / "last.ckpt", stale)
    capsys.readouterr()
    assert gcvideo(["fit", *_args(tiny_videos, folder), "--trainer.max_epochs=3", "--ckpt_path=last"]) == 0
    assert f"resuming {checkpoints / 'last.ckpt'} (epoch 1, step 6)" in capsys.readouterr().out
    assert torch.load(checkpoints / "last.ckpt", weights_only=True)["global_step"] == 9


# --- 4. the schedule's length is the trainer's ------------------------------------------------------
def test_the_schedule_follows_trainer_max_epochs(run):
    state = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["lr_schedulers"][0]
    assert state["max_epochs"] == 2.0  # trainer.max_epochs: the config's scheduler has no length of its own
    lrs = [float(row.split(",")[-1]) for row in (run / "curves.csv").read_text().splitlines()[1:]]
    assert len(lrs) == 2 and lrs[0] > lrs[1]
    # 6 steps: warm-up over epoch 0, half-cosine to 0 over epoch 1 (a cosine over 8 epochs is near 0.0088 here)
    assert lrs[-1] < 0.1 * 0.01
    # every step's rate is the recipe's (PySlowFast lr_policy) over E = trainer.max_epochs = 2 epochs of 3 steps:
    # lr 0.01 at its peak, a linear warm-up from 0.001 to the cosine's value at epoch 1
    from gcvideo.analysis.curves import epoch_table, read_metrics

    def recipe(epoch: float) -> float:
        cosine = 0.01 * 0.5 * (1 + math.cos(math.pi * max(epoch, 1.0) / 2))
        return 0.001 + (cosine - 0.001) * epoch if epoch < 1 else cosine

    logged = [lr for row in epoch_table(read_metrics(run)) for lr in row["lr_steps"]]
    assert logged == pytest.approx([recipe(step / 3) for step in range(6)], rel=1e-6)


def test_an_inconsistent_schedule_fails_before_anything_starts(tiny_videos, tmp_path, capsys):  # noqa: F811
    start = time.perf_counter()
    args = [*_args(tiny_videos, tmp_path), "--data.init_args.num_workers=1"]
    assert gcvideo(["fit", *args, "--trainer.max_epochs=1"]) == 2  # the config's warm-up is 1 epoch
    assert "warm-up of 1 epochs does not fit a run of 1 epochs" in _error_line(capsys)
    assert gcvideo(["fit", *args, "--model.lr_scheduler.init_args.max_epochs=4"]) == 2
    assert "differs from trainer.max_epochs (8)" in _error_line(capsys)
    assert not (tmp_path / "logs").exists() and not (tmp_path / "checkpoints").exists()
    assert time.perf_counter() - start < 60


# --- Ctrl-C --------------------------------------------------------------------------------------------
class _CtrlCAt(L.Callback):
    """Ctrl-C as Lightning sees it: a KeyboardInterrupt in the training loop, after ``steps`` steps."""

    def __init__(self, steps: int) -> None:
        self.steps = steps

    def on_train_batch_end(self, trainer, *args) -> None:
        if trainer.global_step >= self.steps:
            raise KeyboardInterrupt


def test_ctrl_c_saves_a_mid_epoch_checkpoint_and_exits_130(tiny_videos, tmp_path, capsys):  # noqa: F811
    args = [*_args(tiny_videos, tmp_path), "--trainer.max_epochs=3", "--trainer.limit_val_batches=0"]
    assert gcvideo(["fit", *args, "--trainer.callbacks+=test_cli_checks._CtrlCAt",
                    "--trainer.callbacks.steps=4"]) == 130
    line = _error_line(capsys)
    last = tmp_path / "checkpoints" / "last.ckpt"
    assert line == f"gcvideo fit: interrupted at epoch 1, step 4; saved {last}; resume with --ckpt_path last"
    saved = torch.load(last, weights_only=True)
    assert (saved["epoch"], saved["global_step"]) == (1, 4)  # one step into epoch 1 (3 steps per epoch)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # Lightning's SIG_IGN undone
    assert gcvideo(["fit", *args, "--ckpt_path=last"]) == 0
    assert torch.load(last, weights_only=True)["global_step"] == 9  # the interrupted epoch was finished, not redone


@pytest.mark.slow
def test_ctrl_c_with_data_workers_prints_one_line(tiny_videos, tmp_path):  # noqa: F811
    """A real SIGINT to the whole process group (as a terminal sends it), data workers included."""
    command = [sys.executable, "-m", "gcvideo.cli.main", "fit", *_args(tiny_videos, tmp_path),
               "--trainer.max_epochs=1000", "--data.init_args.num_workers=2", "--data.init_args.batch_size=2"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 120
    while not (tmp_path / "checkpoints" / "last.ckpt").is_file() and time.time() < deadline:
        time.sleep(0.5)  # the first epoch is over: training is under way with its workers
    time.sleep(1.0)
    os.killpg(process.pid, signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "Traceback" not in out + err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("gcvideo fit: interrupted at epoch"), err


# --- errors that say what to fix -------------------------------------------------------------------------
@pytest.mark.parametrize(("option", "message"), [
    ("--model.widht=4", "unrecognized arguments: --model.widht=4"),
    ("--model.preset=slow_r50_gc6", "unknown model 'slow_r50_gc6'; valid presets: slow_r50,"),
    ("--data.init_args.batch_size=0", "data.init_args.batch_size must be >= 1, got 0"),
    ("--data.init_args.frames=0", "data.init_args.frames must be >= 1, got 0"),  # not a traceback from the dataset
    ("--data.init_args.test_crops=0", "data.init_args.test_crops must be >= 1, got 0"),
    ("--checkpoint.dirpath=/tmp", "--checkpoint.dirpath follows trainer.default_root_dir"),  # says why
    ("--trainer.logger.init_args.save_dir=/elsewhere", "--trainer.logger.init_args.save_dir follows trainer.default"),
    # (the parser alone would replace it with the run folder without a word)
    ("--data.init_args.root=/no/such/root", "/no/such/root"),
    ("--trainer.precision=17", "trainer.precision: 17 is not accepted (expected Literal[64, 32, 16]"),
    ("--config=/no/such.yaml", "config: File does not exist: '/no/such.yaml'"),
])
def test_user_errors_print_one_line_and_exit_2(option, message, tiny_videos, tmp_path, capsys):  # noqa: F811
    assert gcvideo(["fit", *_args(tiny_videos, tmp_path), "--trainer.fast_dev_run=true", option]) == 2
    line = _error_line(capsys)
    assert line.startswith("gcvideo fit: error: ") and message in line, line


@pytest.mark.parametrize("key", ["checkpoint.dirpath", "trainer.logger.init_args.save_dir"])
def test_run_folder_options_in_a_config_file_are_refused_unless_the_same(key, tiny_videos, tmp_path, capsys):  # noqa: F811
    """jsonargparse alone replaces them with the linked run folder without a word: checkpoints and logs would
    not be where the file says."""
    section, *rest = key.split(".")
    extra = tmp_path / "extra.yaml"

    def write(value: str) -> None:
        node: dict = {rest[-1]: value}
        for part in reversed(rest[:-1]):
            node = {part: node}
        if key.startswith("trainer.logger"):
            node["logger"]["class_path"] = "lightning.pytorch.loggers.CSVLogger"
        extra.write_text(yaml.safe_dump({section: node}))

    run = tmp_path / "run"
    write(str(tmp_path / "elsewhere"))
    assert gcvideo(["fit", *_args(tiny_videos, run), "--config", str(extra), "--trainer.fast_dev_run=true"]) == 2
    line = _error_line(capsys)
    assert line.startswith(f"gcvideo fit: error: {key} in {extra} follows trainer.default_root_dir"), line
    assert not (tmp_path / "elsewhere").exists()
    write(str(run / "checkpoints") if key == "checkpoint.dirpath" else str(run))  # the run folder's own: fine
    assert gcvideo(["fit", *_args(tiny_videos, run), f"--config={extra}", "--trainer.fast_dev_run=true"]) == 0


def test_fit_says_what_clips_per_video_does_to_an_epoch(tiny_videos, tmp_path, capsys):  # noqa: F811
    assert gcvideo(["fit", *_args(tiny_videos, tmp_path / "a"), "--data.init_args.clips_per_video=2",
                    "--trainer.max_epochs=3", "--trainer.limit_train_batches=1", "--trainer.limit_val_batches=0"]) == 0
    out = capsys.readouterr().out
    assert ("  data         clips_per_video 2: an epoch reads every video once and holds 2x the clips and steps; "
            "trainer.max_epochs 3 trains on as many clips as 6 one-clip epochs") in out
    assert gcvideo(["fit", *_args(tiny_videos, tmp_path / "b"), "--trainer.fast_dev_run=true"]) == 0
    assert "clips_per_video" not in capsys.readouterr().out  # the recipe's one clip: nothing to say


def test_debug_shows_the_traceback(tiny_videos, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.delenv("GCVIDEO_DEBUG", raising=False)
    with pytest.raises(Exception, match="unknown model"):
        gcvideo(["--debug", "fit", *_args(tiny_videos, tmp_path), "--model.preset=slow_r50_gc6"])
    assert os.environ.pop("GCVIDEO_DEBUG") == "1"  # handed on to the processes DDP starts


def test_version(capsys):
    from importlib.metadata import version

    assert gcvideo(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"gcvideo {version('gcvideo')}"


# --- what a run shows and leaves -----------------------------------------------------------------------
def test_fit_leaves_tensorboard_logs_and_curves(run):
    assert list((run / "logs" / "version_0" / "tensorboard").glob("events.out.tfevents.*"))
    assert (run / "logs" / "version_0" / "metrics.csv").is_file()
    assert (run / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    header, *rows = (run / "curves.csv").read_text().splitlines()
    assert header.startswith("epoch,train_loss,val_loss,val_top1_percent") and len(rows) == 2


def test_test_prints_its_run_folder_percentages_and_progress_lines(run, tiny_videos, capsys):  # noqa: F811
    last = run / "checkpoints" / "last.ckpt"
    args = [arg for arg in _args(tiny_videos, run) if arg != "--trainer.enable_progress_bar=false"]
    assert gcvideo(["test", *args, f"--ckpt_path={last}"]) == 0
    out = capsys.readouterr().out
    assert "\r" not in out  # the output is not a terminal: whole lines, no redrawn bar
    assert f"gcvideo test: run folder {run} (weights: {last} (epoch 1, step 6))" in out
    assert "test  batch " in out
    results = json.loads((run / "test" / "results.json").read_text())
    top1 = f"{100 * results['top1']:.1f} %"
    assert f"gcvideo test: top-1 {top1}, top-5 " in out and ", 3 videos, 0 missing, " in out and "30 views" in out


def test_image_data_sizes_are_checked_before_anything_is_read(tmp_path):
    from gcvideo.data.datamodules.images import ImageFolderDataModule
    from gcvideo.errors import UserError

    with pytest.raises(UserError, match=r"^data.init_args.val_crop must be >= 1, got 0$"):
        ImageFolderDataModule(str(tmp_path / "no_such_root"), val_crop=0)

