"""``TrainThroughput``: clips/s and the fraction of time spent waiting for data."""

import time

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from gcvideo.training.throughput import TrainThroughput


class SlowData(Dataset):
    """Items that take ``seconds`` each to load."""

    def __init__(self, seconds: float, n: int = 40) -> None:
        self.seconds, self.n = seconds, n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict:
        time.sleep(self.seconds)
        return {"video": torch.ones(3), "label": torch.tensor(0)}


class SlowStep(L.LightningModule):
    """A training step that takes ``seconds``."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds, self.layer = seconds, torch.nn.Linear(3, 2)

    def training_step(self, batch, batch_idx):
        time.sleep(self.seconds)
        return self.layer(batch["video"]).sum()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


def fit(load_s: float, step_s: float, batch: int = 2):
    monitor = TrainThroughput(window=8, warn_above=0.3, skip_steps=2)
    trainer = L.Trainer(max_epochs=1, callbacks=[monitor], logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, accelerator="cpu", log_every_n_steps=1)
    trainer.fit(SlowStep(step_s), DataLoader(SlowData(load_s), batch_size=batch, num_workers=0))
    return trainer, monitor


@pytest.mark.slow
def test_wait_fraction_and_rate_follow_load_and_step_times():
    with pytest.warns(UserWarning, match="input pipeline is the bottleneck"):
        trainer, monitor = fit(load_s=0.01, step_s=0.005)  # a batch of 2 loads in 20 ms, its step takes 5 ms
    wait = float(trainer.callback_metrics["throughput/data_wait"])
    assert wait == pytest.approx(0.020 / 0.025, abs=0.1)  # wait / (wait + step)
    rate = float(trainer.callback_metrics["throughput/clips_per_s"])
    assert rate == pytest.approx(2 / 0.025, rel=0.35)
    assert monitor.totals["steps"] == 20 - 2  # the first two steps skipped (the very first has no wait)


@pytest.mark.slow
def test_no_warning_when_the_loader_keeps_up(recwarn):
    trainer, _ = fit(load_s=0.0, step_s=0.05)  # the loop's own few ms between steps count as waiting
    assert float(trainer.callback_metrics["throughput/data_wait"]) < 0.15
    assert not [w for w in recwarn if "bottleneck" in str(w.message)]


def test_wrong_options():
    with pytest.raises(ValueError, match="warn_above"):
        TrainThroughput(warn_above=1.5)
