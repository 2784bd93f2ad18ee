"""``gcvideo fit|validate|test|predict``: LightningCLI over ``gcvideo.training.Classifier``.

    gcvideo fit --config configs/kinetics400/slow_r50_gc5.yaml [--data.root DIR] [--ckpt_path last]
    gcvideo test --config configs/kinetics400/slow_r50_gc5.yaml --ckpt_path runs/.../checkpoints/last.ckpt
    gcvideo predict --config CFG --ckpt_path CKPT --data.predict_paths '[a.mp4, b.mp4]' \
        [--prediction.output preds.jsonl|preds.csv] [--prediction.mode features --prediction.output f.safetensors]

What this adds to plain LightningCLI:
- ``model.num_classes``, ``model.class_names`` and ``model.data_info`` are linked from the data module;
- the config is the source of truth: a checkpoint (``--ckpt_path``, or ``model.init_from`` when
  evaluating) that records another preset, width, depth, class count or class list stops the command
  with one line naming both (Lightning's CLI would silently rebuild the model from the checkpoint);
- validate / test / predict refuse to score untrained weights unless ``--random_weights true``;
- one run per run folder (``trainer.default_root_dir``): a ModelCheckpoint (``--checkpoint.*``) fixed at
  ``<run>/checkpoints`` with one ``last.ckpt``; ``fit`` refuses a folder holding another run, resumes
  this one with ``--ckpt_path last``, and ``fast_dev_run`` writes no checkpoint; the checkpoint folder and
  the logs' folder follow the run folder (``gcvideo.cli.run_folder_options``);
- the LR schedule takes its length from ``trainer.max_epochs``, checked before any process starts;
- Ctrl-C during fit saves ``last.ckpt`` where it stopped (``gcvideo.training.interrupt``);
- CSV and TensorBoard logs in ``<run>/logs/version_N`` (``--tensorboard false`` for CSV only), line-wise
  progress when the output is not a terminal, the run folder and results printed, curves at the end;
- a PredictionWriter (``--prediction.*``) used by ``predict``, a TestResultsWriter (``<run>/test/``) used by
  ``test``; the saved ``config.yaml`` is overwritten.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint, ProgressBar
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

from gcvideo.cli import summary
from gcvideo.cli.run_folder_options import (
    arguments_to_parse,
    check_run_folder_options,
    given_run_folder_options,
)
from gcvideo.errors import UserError
from gcvideo.training.bar_metrics import TerminalProgressBar
from gcvideo.training.checkpoint_check import (
    check_fits,
    check_state_fits,
    saved_architecture,
)
from gcvideo.training.interrupt import SaveOnInterrupt
from gcvideo.training.line_progress import LineProgressBar
from gcvideo.training.module import Classifier, describe_data
from gcvideo.training.prediction import PredictionWriter
from gcvideo.training.run_folder import (
    LAST,
    check_new_or_resumed,
    checkpoint_dir,
    checkpoint_position,
    resolve_resume,
    run_folder,
)
from gcvideo.training.sigterm_broadcast import SigtermBroadcastEvery
from gcvideo.training.test_results import TestResultsWriter
from gcvideo.training.throughput import TrainThroughput

SUBCOMMANDS = ("fit", "validate", "test", "predict")


def _is_terminal() -> bool:
    return sys.stdout.isatty() and sys.stderr.isatty()


def _as_list(value: Any) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


class GCVideoCLI(LightningCLI):
    """LightningCLI with gcvideo's links, checks, checkpointing and outputs (module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.interrupt = SaveOnInterrupt()
        self.started = time.time()
        try:
            super().__init__(*args, **kwargs)
        except SystemExit as stop:  # Lightning exits with 1 after Ctrl-C; a shell's convention is 130
            if self.interrupt.interrupted:
                raise SystemExit(130) from stop
            raise

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.link_arguments("data.num_classes", "model.num_classes", apply_on="instantiate")
        parser.link_arguments("data.class_names", "model.class_names", apply_on="instantiate")
        parser.link_arguments("data", "model.data_info", compute_fn=describe_data, apply_on="instantiate")
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        # one last.ckpt per run folder: never last-v1.ckpt beside it (a new run is refused in before_fit)
        parser.set_defaults({"checkpoint.save_last": True, "checkpoint.enable_version_counter": False})
        parser.link_arguments("trainer.default_root_dir", "checkpoint.dirpath", compute_fn=checkpoint_dir)
        # the logs live in the run folder too (a config names the folder once)
        parser.link_arguments("trainer.default_root_dir", "trainer.logger.init_args.save_dir", compute_fn=run_folder)
        parser.add_lightning_class_args(PredictionWriter, "prediction")
        parser.add_lightning_class_args(TrainThroughput, "throughput")  # clips/s and data wait (--throughput.*)
        parser.add_argument("--random_weights", type=bool, default=False,
                            help="validate/test/predict without trained weights, on purpose (a chance-level "
                                 "reference); otherwise --ckpt_path or --model.init_from must give the weights")
        parser.add_argument("--tensorboard", type=bool, default=True,
                            help="TensorBoard logs next to the CSV logs (<run>/logs/version_N/tensorboard)")

    def parse_arguments(self, parser: LightningArgumentParser, args: Any) -> None:
        # always given the arguments by run_lightning_cli (without --debug): no "args and sys.argv" warning
        if isinstance(args, dict):
            self.config = parser.parse_object(args)
            return
        args = list(args)
        given = given_run_folder_options(args)  # read before parsing: the parser drops or refuses them
        self.config = parser.parse_args(arguments_to_parse(args))
        subcommand = self.config.get("subcommand")
        section = self.config[subcommand] if subcommand else self.config
        check_run_folder_options(given, section.get("trainer.default_root_dir"))

    def _parse_ckpt_path(self) -> None:
        """Lightning's CLI rebuilds the model from the hyperparameters of ``--ckpt_path``, silently
        overriding the config. Here the config is the source of truth and the checkpoint is checked
        against it (``before_<subcommand>``)."""

    # --- building the objects -----------------------------------------------------------------------
    def before_instantiate_classes(self) -> None:
        data = getattr(self.config[self.subcommand].get("data"), "init_args", None)
        for key, least in (("batch_size", 1), ("num_workers", 0)):  # torch would only fail once training starts
            value = data.get(key) if data is not None else None
            if isinstance(value, int) and value < least:
                raise UserError(f"data.init_args.{key} must be >= {least}, got {value}")

    def instantiate_classes(self) -> None:
        try:
            super().instantiate_classes()
        except (ValueError, TypeError, KeyError, OSError) as error:  # a value of the config does not work
            if isinstance(error, UserError):
                raise
            raise UserError(str(error).strip("'\"")) from error

    def instantiate_trainer(self, **kwargs: Any) -> L.Trainer:
        config = self._get(self.config_init, "trainer", default={})
        callbacks = [*_as_list(config.get("callbacks")), self.interrupt, SigtermBroadcastEvery(), TestResultsWriter()]
        if config.get("enable_progress_bar") is not False and not any(isinstance(c, ProgressBar) for c in callbacks):
            # both read the loss themselves: Lightning's own bar would synchronise with the GPU every step
            callbacks.append(TerminalProgressBar() if _is_terminal() else LineProgressBar())
        trainer = super().instantiate_trainer(**{**kwargs, "callbacks": callbacks})
        if trainer.fast_dev_run:  # a smoke test of a batch or two: nothing of it becomes the run's state
            trainer.callbacks = [c for c in trainer.callbacks if not isinstance(c, ModelCheckpoint)]
        elif self._get(self.config, "tensorboard"):
            _add_tensorboard(trainer)
        return trainer

    # --- before each subcommand ---------------------------------------------------------------------
    def _checkpoint_dir(self) -> Path:
        return Path(checkpoint_dir(self.trainer.default_root_dir))

    def _check_weights_file(self, path: str, option: str) -> None:
        if saved_architecture(path) is not None:
            check_fits(path, self.model.hparams, option=option)
        elif option == "--ckpt_path":
            check_state_fits(path, self.model, option=option)

    def before_fit(self) -> None:
        config, trainer = self.config_init["fit"], self.trainer
        resume = resolve_resume(config.get("ckpt_path"), self._checkpoint_dir())
        if not trainer.fast_dev_run:
            check_new_or_resumed(trainer.default_root_dir, self._checkpoint_dir(), resume)
            self.model.check_schedule(trainer.max_epochs)
        if resume is not None and resume not in ("best", "hpc", "registry"):
            self._check_weights_file(resume, "--ckpt_path")
            self.model.skip_initial_weights()
        config["ckpt_path"] = resume
        state = "fast_dev_run: nothing is saved" if trainer.fast_dev_run else (
            f"resuming {resume} ({checkpoint_position(resume)})" if resume else "new run")
        summary.say(summary.run_folder_lines("fit", trainer, state, self._checkpoint_dir())
                    + summary.clips_per_video_lines(getattr(self.datamodule, "clips_per_video", 1),
                                                    None if trainer.fast_dev_run else trainer.max_epochs))

    def _before_evaluation(self, subcommand: str) -> None:
        config = self.config_init[subcommand]
        ckpt = config.get("ckpt_path")
        if ckpt == "last":
            last = self._checkpoint_dir() / LAST
            if not last.is_file():
                raise UserError(f"--ckpt_path last: there is no {last} (trainer.default_root_dir is the run folder)")
            ckpt = config["ckpt_path"] = str(last)
        if ckpt is not None:
            if ckpt not in ("best", "hpc", "registry"):
                self._check_weights_file(ckpt, "--ckpt_path")
            self.model.skip_initial_weights()
            weights = f"{ckpt} ({checkpoint_position(ckpt)})" if Path(ckpt).suffix == ".ckpt" else ckpt
        elif self.model.hparams.get("init_from"):
            source = self.model.hparams.init_from
            self._check_weights_file(source, "--model.init_from")
            self.model.load_initial_weights(strict=True)
            weights = f"model.init_from {source}"
        elif self._get(self.config, "random_weights"):
            weights = "untrained (--random_weights true)"
        else:
            raise UserError(f"no weights to {subcommand}: give --ckpt_path (e.g. "
                            f"{self._checkpoint_dir() / LAST}) or --model.init_from, or --random_weights true "
                            f"to score an untrained model on purpose")
        if subcommand != "predict":
            config["verbose"] = False  # summary.results_line prints the metrics instead of Lightning's table
        summary.say(summary.run_folder_lines(subcommand, self.trainer, f"weights: {weights}", self._checkpoint_dir()))

    def before_validate(self) -> None:
        self._before_evaluation("validate")

    def before_test(self) -> None:
        self._before_evaluation("test")

    def before_predict(self) -> None:
        self._before_evaluation("predict")

    # --- after each subcommand ----------------------------------------------------------------------
    def after_fit(self) -> None:
        trainer = self.trainer
        if not trainer.is_global_zero or trainer.fast_dev_run or trainer.state.status != "finished":
            return
        summary.say(summary.after_fit_lines(self.trainer, self._checkpoint_dir(), self._get(self.config, "config")))

    def after_validate(self) -> None:
        summary.say([summary.results_line("validate", self.trainer.callback_metrics)])

    def after_test(self) -> None:
        if self.trainer.is_global_zero:  # one process reads the results and draws the curves
            summary.say(summary.after_test_lines(self.trainer, self.started))


def _add_tensorboard(trainer: L.Trainer) -> None:
    """A TensorBoard logger writing into the CSV logger's version folder (``.../version_N/tensorboard``)."""
    loggers = trainer.loggers
    csv = next((lg for lg in loggers if isinstance(lg, CSVLogger)), None)
    if csv is None or any(isinstance(lg, TensorBoardLogger) for lg in loggers):
        return
    board = TensorBoardLogger(save_dir=csv.save_dir, name=csv.name, version=csv.version, sub_dir="tensorboard",
                              default_hp_metric=False)
    trainer.loggers = [*loggers, board]


def run_lightning_cli(argv: list[str]) -> None:
    """Run ``gcvideo <fit|validate|test|predict> ...`` (``argv`` starts with the subcommand).

    Raises:
        UserError: a mistake in the command line, the config or the files it names (one line).
        SystemExit: 130 after Ctrl-C (the run's state saved, see ``gcvideo.training.interrupt``).
    """
    # Lightning ignores SIGINT while it shuts down after Ctrl-C; give it back afterwards (tests, notebooks)
    sigint = signal.getsignal(signal.SIGINT) if threading.current_thread() is threading.main_thread() else None
    try:
        GCVideoCLI(
            Classifier,
            L.LightningDataModule,
            subclass_mode_data=True,
            args=list(argv),
            save_config_kwargs={"overwrite": True},
            auto_configure_optimizers=False,
            parser_kwargs={"prog": "gcvideo", "exit_on_error": False,
                           **{name: {"exit_on_error": False} for name in SUBCOMMANDS}},
        )
    finally:
        if sigint is not None:
            signal.signal(signal.SIGINT, sigint)
