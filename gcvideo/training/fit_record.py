"""``<run>/fit.json``: what a fit trained on and what it cost, written by ``gcvideo fit`` as it goes.

A row of GCNet's tables (arXiv 1904.11492, Sec. 5) is only comparable with another when both were trained
on the same copy of the data, and its cost is part of what a reproduction reports. Before the first step
the first process writes

- ``train``: the training list as read (``gcvideo.data.datamodules.split_record``: its sha256, listed, found
  and missing videos), ``model`` (the preset) and ``seed``;
- ``segments``: one per ``gcvideo fit`` command (a resumed fit adds one): when it started, ``wall_s`` (from the
  trainer's set-up to the latest update), ``devices`` per node, ``num_nodes``, ``accelerator`` (cpu, cuda,
  ...) and ``device_name``, ``precision``, ``clips`` and ``steps`` trained, ``clips_per_s`` (the mean of
  ``gcvideo.training.TrainThroughput``: clips over the counted steps' time, data wait included),
  ``config_sha256`` (the saved ``config.yaml``) and ``resumed_from``.

It is updated at the end of every training epoch, at the end of the fit and when the fit stops on an error
or Ctrl-C, so a killed run keeps most of its time. A ``fast_dev_run`` writes nothing.
"""

from __future__ import annotations

import json
import os
import platform
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback

from gcvideo.data.datamodules.split_record import file_sha256
from gcvideo.training.throughput import TrainThroughput, batch_size

FIT_RECORD = "fit.json"


def write_json(path: Path, content: dict[str, Any]) -> None:
    """Write strict JSON through a temporary file, so a reader never sees half a file."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(content, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    os.replace(partial, path)


def device_name(device: torch.device) -> str:
    """The accelerator's product name, or the CPU's."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return platform.processor() or platform.machine() or device.type


class FitRecord(Callback):
    """Writes ``<default_root_dir>/fit.json`` (module docstring) on the first process."""

    def __init__(self) -> None:
        self.started = time.time()
        self.clips = self.steps = 0
        self.record: dict[str, Any] | None = None

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage == "fit":
            self.started, self.clips, self.steps = time.time(), 0, 0

    def _path(self, trainer: L.Trainer) -> Path:
        return Path(trainer.default_root_dir) / FIT_RECORD

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.fast_dev_run or not trainer.is_global_zero:
            return
        path = self._path(trainer)
        resumed = trainer.ckpt_path
        record = json.loads(path.read_text(encoding="utf-8")) if resumed and path.is_file() else {}
        split = getattr(trainer.datamodule, "split_records", {}).get("train")
        record["train"] = split.as_json() if split is not None else record.get("train")
        record["model"] = pl_module.hparams.get("preset")
        record["seed"] = record.get("seed", _seed())
        device = trainer.strategy.root_device
        log_dir = getattr(trainer.logger, "log_dir", None) if trainer.logger is not None else None
        config = Path(log_dir) / "config.yaml" if log_dir else None
        segment = {"started": datetime.fromtimestamp(self.started, timezone.utc).isoformat(timespec="seconds"),
                   "wall_s": 0.0, "devices": trainer.num_devices, "num_nodes": trainer.num_nodes,
                   "accelerator": device.type, "device_name": device_name(device),
                   "precision": str(trainer.precision), "clips": 0, "steps": 0, "clips_per_s": None,
                   "config_sha256": file_sha256(config) if config is not None and config.is_file() else None,
                   "resumed_from": None if resumed is None else str(resumed)}
        record["segments"] = [*record.get("segments", []), segment]
        self.record = record
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json(path, record)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        self.clips += batch_size(batch) * trainer.world_size
        self.steps += 1

    def _update(self, trainer: L.Trainer) -> None:
        if self.record is None:
            return
        segment = self.record["segments"][-1]
        segment.update(wall_s=round(time.time() - self.started, 3), clips=self.clips, steps=self.steps)
        throughput = next((c for c in trainer.callbacks if isinstance(c, TrainThroughput)), None)
        if throughput is not None and throughput.totals["steps"]:
            totals = throughput.totals
            segment["clips_per_s"] = round(totals["clips"] / max(totals["wait"] + totals["step"], 1e-9), 3)
        write_json(self._path(trainer), self.record)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._update(trainer)

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._update(trainer)
        self.record = None

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        self._update(trainer)
        self.record = None


def _seed() -> int | None:
    """The seed ``seed_everything`` set for this process (LightningCLI's ``--seed_everything``)."""
    value = os.environ.get("PL_GLOBAL_SEED")
    return int(value) if value is not None and value.lstrip("-").isdigit() else None
