"""What a test's numbers rest on, written into ``test/results.json`` beside top-1 and top-5.

GCNet's tables (arXiv 1904.11492, Sec. 5) compare rows trained and tested alike; a reproduction has to
show that its rows were. ``provenance`` gives four entries:

- ``model``: the preset, width, depths, custom block placement, classes, the test input, the weights the fit
  started from (``init_from``) and the weights tested;
- ``dataset``: the test list as read and as tested (``SplitRecord.tested``: sha256 of the list and the
  classes, the class order, videos listed, evaluated, missing, undecodable and partly decodable, the
  backends, and a fingerprint of what was evaluated);
- ``compute``: the fit's cost from the run folder's own records (``compute_record``);
- ``software``: the versions of gcvideo, torch, lightning and av, and the sha256 of the fit's resolved config.

Everything comes from the merged per-video statuses and from files, nothing from one process (no host
name, no test wall time), so one process and several write the same record.
"""

from __future__ import annotations

import csv
import json
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import yaml

from gcvideo.training.fit_record import FIT_RECORD

COMPUTE_KEYS = ("wall_s", "devices", "num_nodes", "accelerator", "device_name", "precision", "device_hours",
                "gpu_hours", "clips", "clips_per_s", "segments", "source")


def _same(values: list[Any]) -> Any:
    """The value all segments share, else None."""
    return values[0] if values and all(v == values[0] for v in values) else None


def _from_fit_record(record: dict[str, Any]) -> dict[str, Any]:
    segments = record.get("segments") or []
    walls = [s.get("wall_s") for s in segments]
    known = segments and all(w is not None and s.get("devices") and s.get("num_nodes")
                             for w, s in zip(walls, segments))
    device_hours = sum(s["wall_s"] * s["devices"] * s["num_nodes"] for s in segments) / 3600 if known else None
    timed = [s for s in segments if s.get("clips_per_s")]
    accelerator = _same([s.get("accelerator") for s in segments])
    return {"wall_s": round(sum(walls), 3) if known else None, "devices": _same([s.get("devices") for s in segments]),
            "num_nodes": _same([s.get("num_nodes") for s in segments]), "accelerator": accelerator,
            "device_name": _same([s.get("device_name") for s in segments]),
            "precision": _same([s.get("precision") for s in segments]),
            "device_hours": None if device_hours is None else round(device_hours, 6),
            "gpu_hours": None if device_hours is None or accelerator != "cuda" else round(device_hours, 6),
            "clips": sum(s.get("clips") or 0 for s in segments),
            "clips_per_s": round(sum(s["clips"] for s in timed) / sum(s["clips"] / s["clips_per_s"] for s in timed), 3)
            if timed and all(s.get("clips") for s in timed) else None,
            "segments": len(segments), "source": FIT_RECORD}


def _from_logs(run_dir: Path) -> dict[str, Any]:
    """Without ``fit.json``: the mean logged training clips/s and the saved config's trainer settings."""
    out: dict[str, Any] = dict.fromkeys(COMPUTE_KEYS)
    for metrics in sorted(run_dir.glob("logs/version_*/metrics.csv")):
        with open(metrics, newline="", encoding="utf-8") as f:
            values = [float(r["throughput/clips_per_s"]) for r in csv.DictReader(f) if r.get("throughput/clips_per_s")]
        if not values:
            continue
        config = metrics.parent / "config.yaml"
        saved = yaml.safe_load(config.read_text(encoding="utf-8")) if config.is_file() else None
        trainer = (saved or {}).get("trainer") or {}
        number = lambda v: v if isinstance(v, int) else None  # noqa: E731  ("auto" or a list: not a count)
        out.update(clips_per_s=round(sum(values) / len(values), 3), devices=number(trainer.get("devices")),
                   num_nodes=number(trainer.get("num_nodes")), precision=trainer.get("precision"),
                   source=str(metrics.relative_to(run_dir)))
        break
    return out


def compute_record(run_dir: str | Path) -> dict[str, Any]:
    """The fit's cost (``COMPUTE_KEYS``): from ``fit.json``, else from the logs; what neither holds is None.

    ``device_hours`` is the sum over the fit's segments of wall hours x devices x nodes; ``gpu_hours`` the
    same when every segment ran on CUDA devices, else None.
    """
    run_dir = Path(run_dir)
    path = run_dir / FIT_RECORD
    if path.is_file():
        return _from_fit_record(json.loads(path.read_text(encoding="utf-8")))
    return _from_logs(run_dir)


def _version(package: str) -> str | None:
    try:
        return version(package)
    except PackageNotFoundError:
        return None


def software_record(run_dir: str | Path) -> dict[str, Any]:
    """Versions of gcvideo, torch, lightning and av, and the sha256 of the last fit segment's saved config."""
    path = Path(run_dir) / FIT_RECORD
    segments = json.loads(path.read_text(encoding="utf-8")).get("segments", []) if path.is_file() else []
    return {"gcvideo": _version("gcvideo"), "torch": _version("torch"), "lightning": _version("lightning"),
            "av": _version("av"), "config_sha256": segments[-1].get("config_sha256") if segments else None}


def model_record(hparams: Any, weights: str | None) -> dict[str, Any]:
    """The preset as built (``Classifier`` hyperparameters), its test input and the weights tested."""
    info = hparams.get("data_info") or {}
    crop = info.get("test_crop", info.get("crop"))
    size = None if crop is None else f"{crop}x{crop}"
    test_input = f"{info['frames']}x{size}" if size and info.get("frames") else size
    return {"preset": hparams.get("preset"), "width": hparams.get("width"),
            "depths": [int(d) for d in hparams.get("depths", ())], "blocks": hparams.get("blocks"),
            "num_classes": hparams.get("num_classes"), "input": test_input, "init_from": hparams.get("init_from"),
            "weights": weights}


def provenance(run_dir: str | Path, hparams: Any, weights: str | None, split: Any,
                status: Any) -> dict[str, Any]:
    """``model``, ``dataset``, ``compute`` and ``software`` (module docstring); ``split`` is the data module's
    ``SplitRecord`` of the test (None: ``dataset`` is None) and ``status`` the merged per-video statuses."""
    return {"model": model_record(hparams, weights),
            "dataset": None if split is None else split.tested(status),
            "compute": compute_record(run_dir), "software": software_record(run_dir)}
