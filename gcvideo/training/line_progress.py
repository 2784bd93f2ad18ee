"""Progress as whole lines, for output that is not a terminal (a log file, a batch job, CI).

tqdm redraws its bar with carriage returns; written to a file, every redraw is kept, and an epoch of
Kinetics turns into thousands of partial lines. ``LineProgressBar`` prints one line at every tenth of
an epoch (or evaluation) and one at its end, with the metrics the bar would show.
"""

from __future__ import annotations

import math
import sys
import time
from typing import Any

import lightning as L
from lightning.pytorch.callbacks.progress import ProgressBar

from gcvideo.training.bar_metrics import LossReader, with_loss


def _metric_text(metrics: dict[str, Any]) -> str:
    parts = []
    for key, value in metrics.items():
        if key == "v_num":
            continue
        try:
            number = float(value)
        except (TypeError, ValueError):
            parts.append(f"{key} {value}")
            continue
        parts.append(f"{key} {100 * number:.1f}%" if key.endswith(("top1", "top5")) else f"{key} {number:.4g}")
    return "  ".join(parts)


def _clock(seconds: float) -> str:
    minutes, seconds = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


class LineProgressBar(ProgressBar):
    """Lightning progress bar that prints a line per tenth of the work instead of redrawing a bar.

    Args:
        parts: lines per epoch or evaluation (besides the last one).
        stream: where to write (default: standard output).
    """

    def __init__(self, parts: int = 10, stream: Any = None) -> None:
        super().__init__()
        self.parts, self.stream = max(1, parts), stream
        self._enabled = True
        self._start = time.perf_counter()
        self._stage_start = self._start
        self.loss_reader = LossReader(interval=0.0)  # a line per tenth of an epoch: read the loss for each

    def get_metrics(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, Any]:
        return with_loss(super().get_metrics(trainer, pl_module), self.loss_reader(trainer))

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    def _write(self, text: str) -> None:
        if self._enabled and self.trainer.is_global_zero:
            print(text, file=self.stream or sys.stdout, flush=True)

    def _due(self, done: int, total: int | float) -> bool:
        if not math.isfinite(total) or total <= 0:
            return done % 100 == 0
        every = max(1, math.ceil(total / self.parts))
        return done % every == 0 and done < total

    def _total(self, value: int | float) -> str:
        return str(int(value)) if math.isfinite(value) else "?"

    # --- training ---------------------------------------------------------------------------------
    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._stage_start = time.perf_counter()

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        done, total = batch_idx + 1, self.total_train_batches
        if self._due(done, total):
            self._write(f"epoch {trainer.current_epoch}  batch {done}/{self._total(total)}  "
                        f"{_metric_text(self.get_metrics(trainer, pl_module))}  "
                        f"[{_clock(time.perf_counter() - self._stage_start)}]")

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._write(f"epoch {trainer.current_epoch} done  {_metric_text(self.get_metrics(trainer, pl_module))}  "
                    f"[{_clock(time.perf_counter() - self._stage_start)}, {_clock(time.perf_counter() - self._start)} "
                    f"in all]")

    # --- evaluation -------------------------------------------------------------------------------
    def _eval_batch(self, name: str, done: int, total: int | float, start: float | None = None) -> None:
        if self._due(done, total):
            elapsed = time.perf_counter() - (self._stage_start if start is None else start)
            self._write(f"{name}  batch {done}/{self._total(total)}  [{_clock(elapsed)}]")

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._val_start = time.perf_counter()

    def on_validation_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                                batch_idx: int, dataloader_idx: int = 0) -> None:
        if not trainer.sanity_checking:
            self._eval_batch("validation", batch_idx + 1, trainer.num_val_batches[dataloader_idx], self._val_start)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        metrics = {k: v for k, v in trainer.callback_metrics.items() if k.startswith("val/")}
        self._write(f"epoch {trainer.current_epoch} validation  {_metric_text(metrics)}  "
                    f"[{_clock(time.perf_counter() - self._val_start)}]")

    def on_test_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._stage_start = time.perf_counter()

    def on_test_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                          batch_idx: int, dataloader_idx: int = 0) -> None:
        self._eval_batch("test", batch_idx + 1, trainer.num_test_batches[dataloader_idx])

    def on_predict_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._stage_start = time.perf_counter()

    def on_predict_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                             batch_idx: int, dataloader_idx: int = 0) -> None:
        self._eval_batch("predict", batch_idx + 1, trainer.num_predict_batches[dataloader_idx])
