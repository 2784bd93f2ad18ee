"""The training loss in the progress bars without a GPU synchronisation at every step.

Lightning turns every metric logged with ``prog_bar=True`` into a Python number at the end of each
training batch (``.item()``). For a loss on the GPU that waits until the step has run: the CPU cannot
queue the next step while the GPU computes, and the batch hand-off, the transfer and the first kernel
launches of every step run with the GPU idle. The same holds for a Python number given to ``self.log``,
which Lightning copies to the GPU with a blocking copy. So in training:

- the loss is logged for the loggers and callbacks only (read every ``log_every_n_steps``);
- numbers (learning rate, throughput) are logged as CPU tensors (``cpu_scalar``);
- the bars read the loss from ``trainer.callback_metrics`` when they draw, at most once per ``interval``
  seconds (``LossReader``).
"""

from __future__ import annotations

import time
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import TQDMProgressBar

LOSS_KEY = "train/loss"


def cpu_scalar(value: float) -> torch.Tensor:
    """``value`` as a CPU tensor for ``self.log``: a Python number would become a GPU tensor through a
    copy that waits for the GPU."""
    return torch.tensor(float(value), dtype=torch.float64)


class LossReader:
    """The latest training loss for a progress bar, read (one GPU synchronisation) at most once per
    ``interval`` seconds; the value read last is shown in between.

    Args:
        interval: least seconds between two reads (0: read at every call).
    """

    def __init__(self, interval: float = 1.0) -> None:
        self.interval = interval
        self._read_at = -float("inf")
        self._value: float | None = None
        self.reads = 0

    def __call__(self, trainer: L.Trainer) -> dict[str, float]:
        if not trainer.training:  # validation, test, predict: no training loss to show
            return {}
        now = time.monotonic()
        if now - self._read_at >= self.interval:
            value = trainer.callback_metrics.get(LOSS_KEY)
            if isinstance(value, torch.Tensor) and value.numel() == 1:
                self._value, self._read_at = float(value), now
                self.reads += 1
        return {} if self._value is None else {LOSS_KEY: self._value}


def with_loss(metrics: dict[str, Any], loss: dict[str, float]) -> dict[str, Any]:
    """``metrics`` with the loss first, the place a loss logged with ``prog_bar=True`` takes in Lightning's bar."""
    return {**loss, **{k: v for k, v in metrics.items() if k not in loss}}


class TerminalProgressBar(TQDMProgressBar):
    """Lightning's tqdm bar for a terminal, showing the training loss read at most once a second."""

    def __init__(self, refresh_rate: int = 1, leave: bool = False) -> None:
        super().__init__(refresh_rate=refresh_rate, leave=leave)
        self.loss_reader = LossReader(interval=1.0)

    def get_metrics(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, Any]:
        return with_loss(super().get_metrics(trainer, pl_module), self.loss_reader(trainer))
