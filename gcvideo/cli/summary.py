"""What ``gcvideo fit|validate|test`` print: where the run's files go, and the results in readable units."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from lightning.fabric.utilities.rank_zero import rank_zero_only

# what a metric is called in a sentence
_NAMES = {"top1": "top-1", "top5": "top-5", "loss": "loss"}
COUNT_KEYS = ("videos", "missing", "incomplete", "views")


def say(lines: Iterable[str]) -> None:
    """Print on the first process only (every DDP process runs the command line)."""
    if rank_zero_only.rank == 0:
        for line in lines:
            print(line, flush=True)
    sys.stdout.flush()


def _log_dir(trainer: Any) -> str | None:
    """The first logger's folder (not ``trainer.log_dir``: a collective call, and this runs on rank 0 only)."""
    logger = trainer.logger
    if logger is None or not getattr(logger, "log_dir", None):
        return None
    return logger.log_dir


def run_folder_lines(subcommand: str, trainer: Any, state: str, checkpoint_dir: Path) -> list[str]:
    """``gcvideo fit: run folder X (new run)`` and where logs, checkpoints and results go."""
    run = Path(trainer.default_root_dir)
    lines = [f"gcvideo {subcommand}: run folder {run} ({state})"]
    log_dir = None if trainer.fast_dev_run else _log_dir(trainer)
    if log_dir:
        board = "; TensorBoard: tensorboard --logdir " + str(Path(log_dir).parent) \
            if any(type(lg).__name__ == "TensorBoardLogger" for lg in trainer.loggers) else ""
        lines.append(f"  logs         {log_dir} (metrics.csv{board})")
    if subcommand == "fit" and not trainer.fast_dev_run:
        lines.append(f"  checkpoints  {checkpoint_dir} (last.ckpt: the latest state; --ckpt_path last resumes it)")
    if subcommand == "test":
        lines.append(f"  results      {run / 'test'} (results.json, predictions.csv)")
    return lines


def clips_per_video_lines(clips_per_video: int, max_epochs: int | None) -> list[str]:
    """What ``data.clips_per_video`` k > 1 does to an epoch: said at the start, since the schedule's epochs
    then hold k times the clips of the recipe's (the config documents dividing them by k)."""
    if clips_per_video <= 1:
        return []
    length = f"; trainer.max_epochs {max_epochs} trains on as many clips as {clips_per_video * max_epochs} " \
             "one-clip epochs" if max_epochs and max_epochs > 0 else ""
    return [f"  data         clips_per_video {clips_per_video}: an epoch reads every video once and holds "
            f"{clips_per_video}x the clips and steps{length}"]


def _decimals(videos: float | None) -> int:
    """One decimal of a percent up to 1,000 videos (one video moves top-1 by 0.1 or more), then two."""
    return 1 if videos is None or videos <= 1000 else 2


def format_metrics(metrics: Mapping[str, Any]) -> str:
    """``top-1 87.0 %, top-5 99.0 %, loss 0.4312, 100 videos, 0 missing, 30 views``.

    Accuracies (``*top1``, ``*top5``, ``*acc*``) as percentages, counts as integers, the rest with four
    significant digits; a ``test/`` or ``val/`` prefix is dropped.
    """
    values = {str(k).split("/")[-1]: float(v) for k, v in metrics.items()}
    decimals = _decimals(values.get("videos"))
    parts, counts_extra = [], []
    accuracies_first = sorted(values.items(), key=lambda item: not item[0].startswith(("top", "acc")))
    for key, value in accuracies_first:
        if key in COUNT_KEYS:
            continue
        name = _NAMES.get(key, key)
        if key.startswith(("top", "acc")) and 0.0 <= value <= 1.0:
            parts.append(f"{name} {100 * value:.{decimals}f} %")
        elif math.isfinite(value) and value == int(value) and "loss" not in key:  # a count, e.g. incomplete
            counts_extra.append(f"{int(value):,} {key}")
        else:
            parts.append(f"{name} {value:.4g}")
    counts = [f"{int(values[k]):,} {k}" for k in COUNT_KEYS if k in values]
    return ", ".join(parts + counts + counts_extra)


def results_line(subcommand: str, metrics: Mapping[str, Any]) -> str:
    prefix = {"validate": "val/", "test": "test/"}.get(subcommand, "")
    shown = {k: v for k, v in metrics.items() if str(k).startswith(prefix)}
    return f"gcvideo {subcommand}: {format_metrics(shown) if shown else 'no metrics logged'}"


def after_fit_lines(trainer: Any, checkpoint_dir: Path, configs: Any) -> list[str]:
    from gcvideo.analysis.curves import write_curves
    from gcvideo.training.run_folder import LAST, checkpoint_position

    run = Path(trainer.default_root_dir)
    last = checkpoint_dir / LAST
    lines = [f"gcvideo fit: done; {last} ({checkpoint_position(last)})" if last.is_file()
             else f"gcvideo fit: done; no checkpoint in {checkpoint_dir}"]
    lines += _curves_lines(write_curves, run)
    saved = Path(_log_dir(trainer) or "") / "config.yaml"  # the run's whole config, overrides included
    if saved.is_file():
        configs = [saved]
    if last.is_file():
        command = ["gcvideo test", *[f"--config {c}" for c in configs or []], f"--ckpt_path {last}"]
        lines.append(f"  test it      {' '.join(command)}")
    return lines


def _curves_lines(write_curves: Any, run: Path) -> list[str]:
    try:
        png, table = write_curves(run)
    except FileNotFoundError:
        return []
    return [f"  curves       {png} ({table.name}; again any time: gcvideo report {run})"]


def after_test_lines(trainer: Any, started: float) -> list[str]:
    """The test's results (``test/results.json`` of this command when written, else the logged metrics)."""
    from gcvideo.analysis.curves import write_curves

    run = Path(trainer.default_root_dir)
    results = run / "test" / "results.json"
    if results.is_file() and results.stat().st_mtime >= started - 1:
        metrics = json.loads(results.read_text(encoding="utf-8"))
        # numbers only: a top-k is null when no video was evaluated (the writer's warning says why)
        metrics = {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        lines = [f"gcvideo test: {format_metrics(metrics)}",
                 f"  written      {results} and {results.parent / 'predictions.csv'}"]
    else:
        lines = [results_line("test", trainer.callback_metrics)]
    return lines + _curves_lines(write_curves, run)
