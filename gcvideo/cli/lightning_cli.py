"""``gcvideo fit|validate|test|predict``: LightningCLI over ``gcvideo.training.Classifier`` (issue 4).

    gcvideo fit --config configs/kinetics400/slow_r50_gc5.yaml [--data.root DIR] [--ckpt_path last]
    gcvideo test --config configs/kinetics400/slow_r50_gc5.yaml --ckpt_path runs/.../checkpoints/last.ckpt
    gcvideo predict --config CFG --ckpt_path CKPT --data.predict_paths '[a.mp4, b.mp4]' \
        [--prediction.output preds.jsonl|preds.csv] [--prediction.mode features --prediction.output f.safetensors]

What this adds to plain LightningCLI:
- ``model.num_classes``, ``model.class_names`` and ``model.data_info`` are linked from the data module;
- a ModelCheckpoint (``--checkpoint.*``) whose directory is fixed at ``<trainer.default_root_dir>/checkpoints``
  with ``save_last``, so re-running ``fit ... --ckpt_path last`` resumes a killed run where it stopped;
- a PredictionWriter (``--prediction.*``) used by ``predict``;
- the saved ``config.yaml`` is overwritten on re-runs.
"""

from __future__ import annotations

import os
import sys

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI

from gcvideo.training.module import Classifier, describe_data
from gcvideo.training.prediction import PredictionWriter
from gcvideo.training.throughput import TrainThroughput


def checkpoint_dir(default_root_dir: str | None) -> str:
    """Fixed (unversioned) checkpoint folder under the run folder, so ``--ckpt_path last`` finds it."""
    return os.path.join(default_root_dir or os.getcwd(), "checkpoints")


class GCVideoCLI(LightningCLI):
    """LightningCLI with gcvideo's links, checkpointing and prediction writer (module docstring)."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.link_arguments("data.num_classes", "model.num_classes", apply_on="instantiate")
        parser.link_arguments("data.class_names", "model.class_names", apply_on="instantiate")
        parser.link_arguments("data", "model.data_info", compute_fn=describe_data, apply_on="instantiate")
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        parser.set_defaults({"checkpoint.save_last": True})
        parser.link_arguments("trainer.default_root_dir", "checkpoint.dirpath", compute_fn=checkpoint_dir)
        parser.add_lightning_class_args(PredictionWriter, "prediction")
        parser.add_lightning_class_args(TrainThroughput, "throughput")  # clips/s and data wait (--throughput.*)


def run_lightning_cli(argv: list[str]) -> None:
    """Run ``gcvideo <fit|validate|test|predict> ...`` (``argv`` starts with the subcommand)."""
    GCVideoCLI(
        Classifier,
        L.LightningDataModule,
        subclass_mode_data=True,
        # the same list as the command line: let LightningCLI read sys.argv (it warns when given both)
        args=None if list(argv) == sys.argv[1:] else list(argv),
        save_config_kwargs={"overwrite": True},
        auto_configure_optimizers=False,
    )
