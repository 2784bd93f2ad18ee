"""Training queues step after step without waiting for the GPU, so that a fit runs at the model's rate.

Two things in a training step would make the CPU wait for the GPU at every step on CUDA: a Python number
given to ``self.log`` (Lightning copies it to the GPU with a blocking copy) and a GPU tensor logged with
``prog_bar=True`` (Lightning calls ``.item()`` on it after every batch). A CPU run cannot observe a
synchronisation, so these tests check that neither cause is there, and that the bars still show the loss.
"""

from __future__ import annotations

import lightning as L
import pytest
import torch
from training_fixtures import SYNTH_VIDEO_CONFIG, TINY_VIDEO_OVERRIDES, run_dir_args, tiny_videos  # noqa: F401

from gcvideo.cli.lightning_cli import run_lightning_cli
from gcvideo.training.bar_metrics import LOSS_KEY, LossReader, TerminalProgressBar, cpu_scalar, with_loss

STEPS = 12  # the tiny set's training videos, one per batch


def test_training_logs_nothing_that_synchronises(tiny_videos, tmp_path, monkeypatch, capsys):
    logged, reads = [], []
    log, read = L.LightningModule.log, LossReader.__call__

    def spy_log(self, name, value, *args, **kwargs):
        if self.trainer.training:
            logged.append((name, value, kwargs.get("prog_bar", False)))
        return log(self, name, value, *args, **kwargs)

    def spy_read(self, trainer):
        reads.append(trainer.global_step)
        return read(self, trainer)

    monkeypatch.setattr(L.LightningModule, "log", spy_log)
    monkeypatch.setattr(LossReader, "__call__", spy_read)
    overrides = [o for o in TINY_VIDEO_OVERRIDES if "enable_progress_bar" not in o]  # the line bar, as in a log
    run_lightning_cli(["fit", "--config", str(SYNTH_VIDEO_CONFIG), *overrides, f"--data.init_args.root={tiny_videos}",
                       "--trainer.max_epochs=1", "--data.init_args.batch_size=1", "--trainer.limit_val_batches=0",
                       "--model.lr_scheduler.init_args.warmup_epochs=0", "--throughput.skip_steps=0",
                       "--throughput.window=2", *run_dir_args(tmp_path)])

    names = {name for name, _, _ in logged}
    assert {LOSS_KEY, "train/lr", "throughput/clips_per_s", "throughput/data_wait"} <= names
    for name, value, prog_bar in logged:
        assert isinstance(value, torch.Tensor), f"{name} logged as a Python number: a blocking copy to the GPU"
        computed = value.grad_fn is not None  # computed by the model: on its device
        assert not (computed and prog_bar), f"{name} is a model tensor in the bar: .item() after every batch"
        if not computed:
            assert value.device.type == "cpu"
    assert len([n for n, _, _ in logged if n == LOSS_KEY]) == STEPS
    assert 0 < len(reads) <= 11 < STEPS  # the line bar reads the loss when it prints (10 lines and the epoch's end)
    out = capsys.readouterr().out
    assert f"{LOSS_KEY} " in out and "train/lr " in out  # still shown


class _Trainer:
    training = True

    def __init__(self, loss: torch.Tensor | None) -> None:
        self.callback_metrics = {} if loss is None else {LOSS_KEY: loss}


def test_loss_reader_reads_at_most_once_per_interval():
    reader = LossReader(interval=3600.0)
    assert reader(_Trainer(None)) == {}  # nothing logged yet
    assert reader(_Trainer(torch.tensor(2.5))) == {LOSS_KEY: 2.5}
    assert reader(_Trainer(torch.tensor(1.0))) == {LOSS_KEY: 2.5}  # within the interval: the value read last
    assert reader.reads == 1
    eager = LossReader(interval=0.0)
    assert eager(_Trainer(torch.tensor(2.5))) == {LOSS_KEY: 2.5} and eager(_Trainer(torch.tensor(1.0))) == {LOSS_KEY: 1.0}


def test_terminal_bar_shows_the_loss_first():
    bar = TerminalProgressBar()
    assert isinstance(bar, L.pytorch.callbacks.TQDMProgressBar)
    assert list(with_loss({"train/lr": 0.1, "v_num": 0}, {LOSS_KEY: 2.0})) == [LOSS_KEY, "train/lr", "v_num"]


def test_cpu_scalar_is_a_cpu_tensor():
    value = cpu_scalar(0.25)
    assert value.device.type == "cpu" and value.dim() == 0 and float(value) == 0.25


@pytest.mark.parametrize("value", [1, 0.5])
def test_cpu_scalar_accepts_numbers(value):
    assert float(cpu_scalar(value)) == value


# --- DDP: Lightning's SIGTERM broadcast ------------------------------------------------------------------
COUNTING_FIT = """
import os, sys
from lightning.pytorch.loops.training_epoch_loop import _TrainingEpochLoop

real = _TrainingEpochLoop._broadcast_sigterm_tensor

def counted(self):
    with open(os.environ["BROADCASTS"] + os.environ.get("LOCAL_RANK", "0"), "a") as f:
        f.write(f"{self.total_batch_idx + 1}\\n")
    return real(self)

_TrainingEpochLoop._broadcast_sigterm_tensor = counted
from gcvideo.cli.main import main
sys.exit(main())
"""


def test_ddp_broadcasts_sigterm_once_per_logging_interval(tiny_videos, tmp_path):
    """2 processes (gloo), 6 batches each, log_every_n_steps 3: Lightning would broadcast (and wait for the
    GPU) before each of the 6; here before batches 0 and 3, on both ranks alike, and the run completes."""
    import os
    import subprocess
    import sys

    from training_fixtures import ROOT

    (tmp_path / "cli.py").write_text(COUNTING_FIT)
    args = [sys.executable, str(tmp_path / "cli.py"), "fit", "--config", str(SYNTH_VIDEO_CONFIG), *TINY_VIDEO_OVERRIDES,
            f"--data.init_args.root={tiny_videos}", "--data.init_args.batch_size=1", "--trainer.max_epochs=1",
            "--trainer.devices=2", "--trainer.strategy=ddp", "--trainer.limit_train_batches=6",
            "--trainer.limit_val_batches=0", "--trainer.log_every_n_steps=3",
            "--model.lr_scheduler.init_args.warmup_epochs=0", *run_dir_args(tmp_path / "run")]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": "", "PYTHONPATH": str(ROOT),
           "BROADCASTS": str(tmp_path / "broadcasts")}
    proc = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for rank in (0, 1):
        assert (tmp_path / f"broadcasts{rank}").read_text().split() == ["0", "3"]
    assert (tmp_path / "run" / "checkpoints" / "last.ckpt").is_file()


def test_sigterm_broadcast_every_n_steps_option():
    from gcvideo.training.sigterm_broadcast import SigtermBroadcastEvery

    with pytest.raises(ValueError, match="every_n_steps"):
        SigtermBroadcastEvery(0)
    trainer = L.Trainer(accelerator="cpu", logger=False, log_every_n_steps=7, enable_progress_bar=False)
    callback = SigtermBroadcastEvery()
    callback.setup(trainer, None, "fit")
    assert callback.every == 7  # the logging interval by default
    callback.teardown(trainer, None, "fit")
    assert "_broadcast_sigterm_tensor" not in vars(trainer.fit_loop.epoch_loop)  # the class's method again
