"""``TrainThroughput``: clips/s and the fraction of time spent waiting for data, on a clock the test controls.

Every time stamp below is a multiple of 1/64 s, so each sum and difference is exact in binary and the
expected rates and fractions are the correctly rounded quotients the callback must log, bit for bit.
"""

from __future__ import annotations

import logging
import time
from types import SimpleNamespace

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from gcvideo.training.throughput import TrainThroughput


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class RecordingModule:
    """Stands in for the LightningModule: keeps every value ``log`` receives, per name."""

    def __init__(self) -> None:
        self.logged: dict[str, list[float]] = {}

    def log(self, name: str, value: torch.Tensor, **kwargs) -> None:
        assert value.device.type == "cpu" and value.dtype == torch.float64, name  # no GPU copy (bar_metrics)
        self.logged.setdefault(name, []).append(float(value))


def run_steps(monitor: TrainThroughput, clock: FakeClock, steps: list[tuple[float, float, int]], *,
              world_size: int = 1) -> RecordingModule:
    """One epoch of ``(wait s, step s, batch size)`` steps through the callback's hooks."""
    trainer = SimpleNamespace(world_size=world_size, strategy=SimpleNamespace(root_device=torch.device("cpu")))
    module = RecordingModule()
    monitor.on_train_epoch_start(trainer, module)
    for index, (wait, step, size) in enumerate(steps):
        clock.advance(wait)
        batch = {"video": torch.zeros(size, 3), "label": torch.zeros(size, dtype=torch.long)}
        monitor.on_train_batch_start(trainer, module, batch, index)
        clock.advance(step)
        monitor.on_train_batch_end(trainer, module, None, batch, index)
    return module


def test_rate_and_wait_fraction_over_the_window_from_known_time_stamps():
    clock = FakeClock()
    monitor = TrainThroughput(window=3, warn_above=0.9, skip_steps=2)
    monitor.clock = clock
    # (wait, step, batch): the first step has no previous end (no wait measured), the second is skipped.
    steps = [(7.0, 0.5, 4), (0.25, 0.5, 4), (0.125, 0.25, 4), (0.5, 0.25, 2), (0.0, 0.75, 4), (1.0, 0.5, 3),
             (0.375, 0.125, 1)]
    module = run_steps(monitor, clock, steps, world_size=2)
    measured = steps[2:]
    rates, waits = [], []
    for end in range(1, len(measured) + 1):
        window = measured[max(0, end - 3):end]
        wait, busy, clips = (sum(w for w, _, _ in window), sum(s for _, s, _ in window),
                             sum(2 * n for _, _, n in window))  # clips of both processes
        rates.append(clips / (wait + busy))
        waits.append(wait / (wait + busy))
    assert module.logged == {"throughput/clips_per_s": rates, "throughput/data_wait": waits}
    # by hand, the last window: 16 clips in 2.75 s, half of it waiting
    assert rates[-1] == 16 / 2.75 and waits[-1] == 0.5
    assert monitor.totals == {"wait": 2.0, "step": 1.875, "clips": 28, "steps": 5}


def test_a_full_window_above_the_threshold_warns_once():
    clock = FakeClock()
    monitor = TrainThroughput(window=2, warn_above=0.5, skip_steps=0)
    monitor.clock = clock
    # fractions of full windows: 0.5 (not above), then 0.7 (warns), then 0.8 (already warned)
    with pytest.warns(UserWarning, match=r"bottleneck: 70% of the last 2 .* \(0\.4 clips/s\)") as caught:
        module = run_steps(monitor, clock, [(0.0, 1.0, 1), (1.0, 1.0, 1), (1.0, 1.0, 1), (2.5, 0.5, 1),
                                            (1.5, 0.5, 1)])
    assert len([w for w in caught if "bottleneck" in str(w.message)]) == 1
    assert module.logged["throughput/data_wait"] == [0.5, 0.5, 3.5 / 5, 4.0 / 5]


def test_no_warning_while_the_window_is_not_full(recwarn):
    clock = FakeClock()
    monitor = TrainThroughput(window=4, warn_above=0.1, skip_steps=0)
    monitor.clock = clock
    module = run_steps(monitor, clock, [(0.0, 1.0, 1)] + [(3.0, 1.0, 1)] * 3)  # 3 measured steps at 0.75
    assert module.logged["throughput/data_wait"] == [0.75] * 3
    assert not [w for w in recwarn if "bottleneck" in str(w.message)]


def test_validation_and_a_new_epoch_are_not_counted_as_waiting():
    clock = FakeClock()
    monitor = TrainThroughput(window=10, warn_above=1.0, skip_steps=0)
    monitor.clock = clock
    run_steps(monitor, clock, [(0.0, 1.0, 2), (0.5, 1.0, 2)])
    monitor.on_validation_end(None, None)
    clock.advance(100.0)  # validation, then the loader's next batch
    module = RecordingModule()
    trainer = SimpleNamespace(world_size=1, strategy=SimpleNamespace(root_device=torch.device("cpu")))
    batch = {"label": torch.zeros(2)}
    for index in range(2):
        monitor.on_train_batch_start(trainer, module, batch, index)
        clock.advance(1.0)
        monitor.on_train_batch_end(trainer, module, None, batch, index)
        clock.advance(0.5)
    # the step after validation has no measured wait; the next one waited 0.5 s
    assert module.logged["throughput/data_wait"] == [1.0 / 3.0]  # (0.5 + 0.5) / (0.5 + 0.5 + 1 + 1)
    run_steps(monitor, clock, [(50.0, 1.0, 2)])  # a new epoch's first step: no wait either
    assert monitor.totals == {"wait": 1.0, "step": 2.0, "clips": 4, "steps": 2}


class FreeData(Dataset):
    """Items that cost no time."""

    def __len__(self) -> int:
        return 21

    def __getitem__(self, i: int) -> dict:
        return {"video": torch.ones(3), "label": torch.tensor(0)}


class WaitBeforeStep(L.Callback):
    """Moves the clock by ``seconds`` before each step: the data wait TrainThroughput must see (it runs after)."""

    def __init__(self, clock: FakeClock, seconds: float) -> None:
        self.clock, self.seconds = clock, seconds

    def on_train_batch_start(self, *args) -> None:
        self.clock.advance(self.seconds)


class TimedStep(L.LightningModule):
    """A training step that moves the clock by ``seconds``."""

    def __init__(self, clock: FakeClock, seconds: float) -> None:
        super().__init__()
        self.clock, self.seconds, self.layer = clock, seconds, torch.nn.Linear(3, 2)

    def training_step(self, batch, batch_idx):
        self.clock.advance(self.seconds)
        return self.layer(batch["video"]).sum()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


def fit(wait_s: float, step_s: float, clock: FakeClock) -> tuple[L.Trainer, TrainThroughput]:
    """One epoch of 21 items in batches of 2 (the last holds 1) with the monitor on ``clock``."""
    monitor = TrainThroughput(window=8, warn_above=0.3, skip_steps=2)
    monitor.clock = clock
    trainer = L.Trainer(max_epochs=1, callbacks=[WaitBeforeStep(clock, wait_s), monitor], logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        accelerator="cpu", log_every_n_steps=1)
    trainer.fit(TimedStep(clock, step_s), DataLoader(FreeData(), batch_size=2, num_workers=0))
    return trainer, monitor


def test_fit_logs_the_rate_and_wait_of_its_steps(caplog):
    clock = FakeClock()
    with pytest.warns(UserWarning, match="input pipeline is the bottleneck"), \
            caplog.at_level(logging.INFO, logger="lightning.pytorch.utilities.rank_zero"):
        trainer, monitor = fit(wait_s=0.5, step_s=0.125, clock=clock)
    # 11 steps, the first two skipped; the window holds the last 8 (7 batches of 2 clips and one of 1)
    assert float(trainer.callback_metrics["throughput/data_wait"]) == 0.5 / 0.625
    assert float(trainer.callback_metrics["throughput/clips_per_s"]) == 15 / (8 * 0.625)
    assert monitor.totals == {"wait": 4.5, "step": 1.125, "clips": 17, "steps": 9}
    assert "training throughput: 3.0 clips/s over 9 steps, 80% of the time waiting for data" in caplog.text


def test_fit_without_data_wait_does_not_warn(recwarn):
    trainer, _ = fit(wait_s=0.0, step_s=0.25, clock=FakeClock())
    assert float(trainer.callback_metrics["throughput/data_wait"]) == 0.0
    assert float(trainer.callback_metrics["throughput/clips_per_s"]) == 15 / (8 * 0.25)
    assert not [w for w in recwarn if "bottleneck" in str(w.message)]


def test_the_default_clock_is_the_wall_clock():
    assert TrainThroughput().clock is time.perf_counter


def test_wrong_options():
    with pytest.raises(ValueError, match="warn_above"):
        TrainThroughput(warn_above=1.5)
