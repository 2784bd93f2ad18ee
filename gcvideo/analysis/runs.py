"""Run folders read back for ``gcvideo table --runs``: what each run trained, what its test measured, and
which videos it got right.

A run folder is a folder holding ``checkpoints/`` or ``test/results.json``; folders below one are not
searched further. Each run gives a ``Run``: its preset (from ``test/results.json``, else ``fit.json``, else
the saved ``config.yaml``), the test's results and provenance (``gcvideo.training.provenance``) and, from
``test/predictions.csv``, whether each evaluated video was right. Videos are matched across runs by class
and file name without folder or extension (``label/stem``), so copies of a dataset under different roots
or containers (``.mp4`` / ``.webm``) match. Unreadable files raise ``UserError`` naming the file.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import yaml

from gcvideo.errors import UserError

RESULTS = Path("test") / "results.json"
PREDICTIONS = Path("test") / "predictions.csv"
FIT_RECORD = "fit.json"


@dataclass
class Run:
    """One run folder as read (module docstring); ``results`` is None for a run that was not tested."""

    path: Path
    preset: str
    fine_tuned: bool = False
    results: dict[str, Any] | None = None
    fit: dict[str, Any] = field(default_factory=dict)
    correct: dict[str, int] = field(default_factory=dict)  # video key -> 1 if right (evaluated videos only)
    labels: dict[str, str] = field(default_factory=dict)  # video key -> class name

    @property
    def tested(self) -> bool:
        return self.results is not None

    @property
    def row(self) -> str:
        """The table row it belongs to: its preset, marked when it started from other weights."""
        return f"{self.preset} (fine-tuned)" if self.fine_tuned else self.preset

    def section(self, key: str) -> dict[str, Any]:
        """An entry of ``results.json`` (``model``, ``dataset``, ``compute``, ``software``), {} when absent."""
        return (self.results or {}).get(key) or {}


def is_run_folder(path: Path) -> bool:
    return (path / "checkpoints").is_dir() or (path / RESULTS).is_file()


def find_run_folders(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """The run folders at or below ``paths``, sorted, each once.

    Raises:
        UserError: a path does not exist, or no run folder is found below any of them.
    """
    found: set[Path] = set()
    for given in paths:
        root = Path(given)
        if not root.is_dir():
            raise UserError(f"--runs {given}: no such folder")
        for folder, subfolders, _ in os.walk(root):
            here = Path(folder)
            if is_run_folder(here):
                found.add(here.resolve())
                subfolders.clear()  # its logs and checkpoints hold no other run
            else:
                subfolders[:] = sorted(d for d in subfolders if not d.startswith("."))
    if not found:
        raise UserError(f"no run folder (one holding checkpoints/ or test/results.json) below "
                        f"{', '.join(str(p) for p in paths)}")
    return sorted(found)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise UserError(f"{path}: unreadable ({str(error).splitlines()[0][:120]})") from error
    if not isinstance(content, dict):
        raise UserError(f"{path}: unreadable (expected a JSON object)")
    return content


def video_key(path: str, label: str, index: str) -> str:
    """``label/stem`` of a video (module docstring); ``#index`` when the row has no path."""
    stem = Path(path).stem if path else f"#{index}"
    return f"{label}/{stem}"


def read_predictions(path: Path) -> tuple[dict[str, int], dict[str, str]]:
    """From ``predictions.csv``: per evaluated video, whether its top-1 is right, and its class."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            missing = {"video_index", "path", "label", "status", "correct"} - set(reader.fieldnames or ())
            if missing:
                raise UserError(f"{path}: unreadable (no column {', '.join(sorted(missing))})")
            rows = [r for r in reader if r["status"] == "ok"]
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise UserError(f"{path}: unreadable ({str(error).splitlines()[0][:120]})") from error
    correct, labels = {}, {}
    for r in rows:
        key = video_key(r["path"], r["label"], r["video_index"])
        if r["correct"] not in ("0", "1"):
            raise UserError(f"{path}: unreadable (video {r['video_index']}: correct is {r['correct']!r})")
        correct.setdefault(key, int(r["correct"]))
        labels.setdefault(key, r["label"])
    return correct, labels


def _saved_model(run_dir: Path) -> dict[str, Any]:
    """The ``model`` section of the newest saved ``config.yaml`` that names a preset."""
    configs = sorted(run_dir.glob("logs/version_*/config.yaml"),
                     key=lambda p: int(p.parent.name.split("_")[-1]) if p.parent.name.split("_")[-1].isdigit() else -1)
    for config in reversed(configs):
        try:
            model = (yaml.safe_load(config.read_text(encoding="utf-8")) or {}).get("model") or {}
        except (OSError, yaml.YAMLError) as error:
            raise UserError(f"{config}: unreadable ({str(error).splitlines()[0][:120]})") from error
        if model.get("preset"):
            return model
    return {}


def read_run(run_dir: str | os.PathLike) -> Run:
    """One run folder (module docstring).

    Raises:
        UserError: a results, predictions or fit file that cannot be read, or no way to tell the preset.
    """
    run_dir = Path(run_dir)
    fit = _read_json(run_dir / FIT_RECORD) if (run_dir / FIT_RECORD).is_file() else {}
    results = _read_json(run_dir / RESULTS) if (run_dir / RESULTS).is_file() else None
    model = (results or {}).get("model") or {}
    saved = {} if model.get("preset") else _saved_model(run_dir)
    preset = model.get("preset") or fit.get("model") or saved.get("preset")
    if not preset:
        raise UserError(f"{run_dir}: cannot tell which preset it trained (no test/results.json, fit.json or "
                        f"logs/version_N/config.yaml naming one)")
    run = Run(run_dir, str(preset), bool(model.get("init_from") or saved.get("init_from")), results, fit)
    if results is not None:
        if not (run_dir / PREDICTIONS).is_file():
            raise UserError(f"{run_dir / PREDICTIONS}: missing beside {run_dir / RESULTS}")
        run.correct, run.labels = read_predictions(run_dir / PREDICTIONS)
    return run
