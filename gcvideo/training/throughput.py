"""Training throughput and input starvation, logged by ``gcvideo fit``, so that a user sees when the GPU
waits for data.

Every training step is split in two: the wait for data (from the end of one step to the start of the
next: the loader delivering the batch and its copy to the device) and the step itself (forward,
backward, update). Over a moving window of steps this logs

- ``throughput/clips_per_s``: clips of all processes per second of wall time (data wait included);
- ``throughput/data_wait``: the fraction of that time spent waiting for data (0 = the loader keeps up),

and warns once, in one line, when the wait stays above ``warn_above``. On CUDA the step's end is taken
when the CPU has queued it, without synchronising (free): a GPU-bound step blocks the CPU inside later
steps, so its time still counts as compute. Nothing else in a training step waits for the GPU either
(``bar_metrics``; only the loggers' read every ``log_every_n_steps`` does), so a wait shorter than the
queued work does not idle the GPU. ``sync_cuda=True`` synchronises at every step end for exact figures,
at the cost of that overlap. Validation and the time between epochs are not counted.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn

from gcvideo.training.bar_metrics import cpu_scalar

log = logging.getLogger(__name__)


def batch_size(batch: Any) -> int:
    """Clips (or images) in a batch: the length of its labels, else of its first entry."""
    if isinstance(batch, dict):
        batch = batch.get("label", next(iter(batch.values())))
    if isinstance(batch, (list, tuple)):
        batch = batch[0]
    return len(batch)


class TrainThroughput(L.Callback):
    """Logs clips/s and the data-wait fraction of training (module docstring).

    Args:
        window: steps averaged for each logged value and for the warning.
        warn_above: warn (once per run) when the data-wait fraction of a full window exceeds this.
        skip_steps: first steps of each epoch left out (workers starting, the first decodes).
        sync_cuda: synchronise CUDA at each step end (exact step times, small cost).

    ``clock`` (seconds, ``time.perf_counter``) is an attribute rather than an option: the command line
    cannot spell a function, and a test replaces it with one it controls.
    """

    def __init__(self, window: int = 50, warn_above: float = 0.1, skip_steps: int = 5, sync_cuda: bool = False) -> None:
        if window < 1 or not 0 <= warn_above <= 1 or skip_steps < 0:
            raise ValueError(f"need window >= 1, 0 <= warn_above <= 1, skip_steps >= 0; got {window}, "
                             f"{warn_above}, {skip_steps}")
        self.window, self.warn_above, self.skip_steps, self.sync_cuda = window, warn_above, skip_steps, sync_cuda
        self._steps: deque[tuple[float, float, int]] = deque(maxlen=window)  # (wait s, step s, clips)
        self.clock: Callable[[], float] = time.perf_counter
        self._step_end: float | None = None
        self._step_start = 0.0
        self._wait = 0.0
        self._seen_in_epoch = 0
        self._warned = False
        self.totals = {"wait": 0.0, "step": 0.0, "clips": 0, "steps": 0}

    def _now(self, trainer: L.Trainer) -> float:
        if self.sync_cuda and trainer.strategy.root_device.type == "cuda":
            torch.cuda.synchronize(trainer.strategy.root_device)
        return self.clock()

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._step_end, self._seen_in_epoch = None, 0

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._step_end = None  # the next batch's wait would include validation

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch, batch_idx: int) -> None:
        self._step_start = self.clock()
        self._wait = self._step_start - self._step_end if self._step_end is not None else -1.0

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch,
                           batch_idx: int) -> None:
        self._step_end = self._now(trainer)
        self._seen_in_epoch += 1
        if self._wait < 0 or self._seen_in_epoch <= self.skip_steps:
            return
        clips = batch_size(batch) * trainer.world_size
        self._steps.append((self._wait, self._step_end - self._step_start, clips))
        for key, value in (("wait", self._wait), ("step", self._step_end - self._step_start), ("clips", clips),
                           ("steps", 1)):
            self.totals[key] += value
        wait, busy, done = (sum(column) for column in zip(*self._steps))
        fraction = wait / max(wait + busy, 1e-9)
        # CPU tensors: a Python number would reach the GPU through a copy that waits for the step (bar_metrics)
        pl_module.log("throughput/clips_per_s", cpu_scalar(done / max(wait + busy, 1e-9)), on_step=True,
                      on_epoch=False)
        pl_module.log("throughput/data_wait", cpu_scalar(fraction), on_step=True, on_epoch=False)
        if not self._warned and len(self._steps) == self.window and fraction > self.warn_above:
            self._warned = True
            rank_zero_warn(
                f"the input pipeline is the bottleneck: {fraction:.0%} of the last {self.window} training steps' time "
                f"was spent waiting for data ({done / (wait + busy):.1f} clips/s). Raise data.num_workers, prepare the "
                f"videos (`gcvideo data prepare`), use data.decoder auto or data.clips_per_video (docs/gpu-training.md)")

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        t = self.totals
        if t["steps"]:
            total = t["wait"] + t["step"]
            rank_zero_info(f"training throughput: {t['clips'] / total:.1f} clips/s over {t['steps']} steps, "
                           f"{t['wait'] / total:.0%} of the time waiting for data")
