"""``gcvideo test`` output: the video-level results of the multi-view test and one row per test video.

Every test video is scored on the average softmax of its views (10 clips x 3 crops in GCNet's Kinetics
experiments, arXiv 1904.11492, Sec. 5, following SlowFast, arXiv 1812.03982, Sec. 4 "Inference"), as
computed by ``gcvideo.training.MultiViewAccuracy``. ``TestResultsWriter`` writes what the module's metric
computed into ``<default_root_dir>/test/``:

- ``results.json``: top-1 and top-5 over the evaluated videos, and the counts (``videos`` evaluated,
  ``missing``: a view could not be decoded, ``incomplete``: not every view was tested, ``views`` per video).
  Strict JSON: a top-k is ``null`` when no video was evaluated (e.g. ``trainer.limit_test_batches``).
- ``predictions.csv``: per video its index, path, label and status (ok, missing, incomplete) and, when
  evaluated, the top-1 class, whether it is correct, and the top-k classes and probabilities (k = min(5,
  classes)).
"""

from __future__ import annotations

import csv
import json
import logging
import math
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback

log = logging.getLogger(__name__)

# The per-video tensors of MultiViewAccuracy.compute(); its other entries are the results.
PER_VIDEO_KEYS = ("probs", "labels", "status")
STATUS_NAMES = ("ok", "missing", "incomplete")  # MultiViewAccuracy.per_video()'s status codes
TOP_K = 5


class TestResultsWriter(Callback):
    """Write ``results.json`` and ``predictions.csv`` (module docstring) on the first process after a test.

    Reads ``pl_module.test_results``, the multi-view metric's ``compute()`` (already synchronised over
    processes) that ``gcvideo.training.Classifier`` keeps at the end of a multi-view test; a test without
    one (clip-level items) writes nothing.
    """

    __test__ = False  # a Lightning callback, not a pytest test class

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        results = getattr(pl_module, "test_results", None)
        if results is None or not trainer.is_global_zero:
            return
        loaders = trainer.test_dataloaders
        dataset = (loaders[0] if isinstance(loaders, (list, tuple)) else loaders).dataset
        names = pl_module.hparams.get("class_names") or [str(i) for i in range(pl_module.num_classes)]
        write_test_results(Path(trainer.default_root_dir) / "test", results, names,
                           list(getattr(dataset, "video_paths", [])))


def results_dict(results: dict[str, Any]) -> dict[str, Any]:
    """The content of ``results.json``: the metric's results without its per-video tensors, a NaN top-k
    (no video evaluated) as None."""
    return {key: None if isinstance(value, float) and math.isnan(value) else value
            for key, value in results.items() if key not in PER_VIDEO_KEYS}


def prediction_rows(results: dict[str, Any], names: list[str], paths: list[str]) -> list[list[Any]]:
    """The rows of ``predictions.csv``, header first (module docstring)."""
    probs, labels, statuses = (results[key] for key in PER_VIDEO_KEYS)
    k = min(TOP_K, probs.shape[1])
    top_p, top_i = probs.topk(k, dim=1)
    rows: list[list[Any]] = [["video_index", "path", "label", "status", "top1", "correct",
                              f"top{k}_classes", f"top{k}_probs"]]
    for v in range(len(statuses)):
        status, label = int(statuses[v]), int(labels[v])
        row = [v, paths[v] if v < len(paths) else "", names[label] if label >= 0 else "", STATUS_NAMES[status]]
        if status == 0:
            classes = [names[int(i)] for i in top_i[v]]
            row += [classes[0], int(int(top_i[v, 0]) == label), "|".join(classes),
                    "|".join(f"{float(p):.6f}" for p in top_p[v])]
        rows.append(row)
    return rows


def write_test_results(out: str | Path, results: dict[str, Any], names: list[str], paths: list[str]) -> None:
    """Write ``results.json`` and ``predictions.csv`` into the folder ``out``.

    Args:
        out: the folder (created if needed), ``<default_root_dir>/test`` for ``gcvideo test``.
        results: ``MultiViewAccuracy.compute()``: top-k, counts and the per-video tensors.
        names: the class names, by class index.
        paths: the test videos' paths, by video index (an empty path for a video beyond the list).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "predictions.csv", "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(prediction_rows(results, names, paths))
    summary = results_dict(results)
    (out / "results.json").write_text(json.dumps(summary, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    undefined = [key for key, value in summary.items() if value is None]
    if undefined:
        log.warning("%s: %s null: no test video was evaluated (%s incomplete: not every view tested, e.g. with "
                    "trainer.limit_test_batches; %s missing: a view could not be decoded)", out / "results.json",
                    ", ".join(undefined), summary.get("incomplete"), summary.get("missing"))
    log.info("test results (%s): %s", out, summary)
