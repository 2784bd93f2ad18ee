"""``gcvideo predict`` output: top-k classes per video file, or the pooled backbone feature per video.

Views of one video (clips x crops) are averaged as in the test protocol (SlowFast, arXiv 1812.03982,
Sec. 4 "Inference"): softmax probabilities for classes, pooled features (``model.forward_features``) for
features.
Output by extension: ``.jsonl`` or ``.csv`` (classes); ``.safetensors`` or ``.npz`` (features: an
(N, D) float32 array ``features``, a boolean ``valid`` per video, and the video paths).
"""

from __future__ import annotations

import csv
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Sequence

import lightning as L
import numpy as np
import torch
import torch.distributed as dist
from lightning.pytorch.callbacks import BasePredictionWriter

MODES = ("classes", "features")
_SUFFIXES = {"classes": (".jsonl", ".csv"), "features": (".safetensors", ".npz")}


class PredictionWriter(BasePredictionWriter):
    """Collect per-view predictions and write one record per video when predict ends.

    Args:
        output: output file (default ``<default_root_dir>/predictions.jsonl``, or ``features.safetensors``
            in features mode); its extension picks the format (module docstring).
        mode: "classes" (top-k class names with probabilities) or "features".
        top_k: classes listed per video.
    """

    def __init__(self, output: str | None = None, mode: str = "classes", top_k: int = 5) -> None:
        super().__init__(write_interval="batch")
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; valid: {', '.join(MODES)}")
        if output is not None and Path(output).suffix not in _SUFFIXES[mode]:
            raise ValueError(f"{mode} output must end with one of {_SUFFIXES[mode]}, got {output!r}")
        if top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {top_k}")
        self.output, self.mode, self.top_k = output, mode, top_k
        self._views: dict[tuple[int, int], tuple[bool, torch.Tensor]] = {}

    def on_predict_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._views = {}

    def write_on_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, prediction: Any,
                           batch_indices: Sequence[int] | None, batch: Any, batch_idx: int,
                           dataloader_idx: int = 0) -> None:
        values = prediction["probs" if self.mode == "classes" else "features"]
        for i in range(len(values)):
            key = (int(prediction["video_index"][i]), int(prediction["view"][i]))
            self._views[key] = (bool(prediction["valid"][i]), values[i].clone())

    def on_predict_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        views = self._views
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            gathered: list[Any] = [None] * dist.get_world_size()
            dist.all_gather_object(gathered, views)
            views = {k: v for part in gathered for k, v in part.items()}  # a padded duplicate is the same view
        if trainer.is_global_zero:
            loaders = trainer.predict_dataloaders
            dataset = (loaders[0] if isinstance(loaders, (list, tuple)) else loaders).dataset
            paths = list(getattr(dataset, "video_paths", []))
            names = pl_module.hparams.get("class_names") or [str(i) for i in range(pl_module.num_classes)]
            default = "predictions.jsonl" if self.mode == "classes" else "features.safetensors"
            out = Path(self.output or Path(trainer.default_root_dir) / default)
            write_predictions(out, aggregate(views, len(paths)), paths, names, self.mode, self.top_k)
            print(f"predictions of {len(paths)} videos written to {out}")
        self._views = {}


def aggregate(views: dict[tuple[int, int], tuple[bool, torch.Tensor]], num_videos: int) -> list[torch.Tensor | None]:
    """Mean over the views of each video; None for a video with an invalid view (or no view)."""
    per_video: list[list[torch.Tensor] | None] = [[] for _ in range(num_videos)]
    for (video, _view), (valid, value) in sorted(views.items()):
        if per_video[video] is None:
            continue
        per_video[video] = per_video[video] + [value] if valid else None
    return [torch.stack(v).double().mean(0) if v else None for v in per_video]


def _atomic_path(out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    os.close(fd)
    return Path(tmp)


def write_predictions(out: Path, values: list[torch.Tensor | None], paths: list[str], names: list[str],
                      mode: str, top_k: int) -> None:
    """Write per-video results (see the module docstring for the formats), atomically."""
    tmp = _atomic_path(out)
    try:
        if mode == "features":
            dim = next((v.numel() for v in values if v is not None), 0)
            feats = np.stack([v.float().numpy() if v is not None else np.zeros(dim, np.float32) for v in values]) \
                if values else np.zeros((0, dim), np.float32)
            valid = np.array([v is not None for v in values], dtype=bool)
            if out.suffix == ".npz":
                with open(tmp, "wb") as f:
                    np.savez(f, features=feats, valid=valid, paths=np.array(paths))
            else:
                from safetensors.numpy import save_file

                save_file({"features": feats, "valid": valid}, str(tmp), metadata={"paths": json.dumps(paths)})
        else:
            k = min(top_k, len(names))
            records = []
            for path, probs in zip(paths, values):
                if probs is None:
                    records.append({"path": path, "valid": False, "classes": [], "probs": []})
                    continue
                p, i = probs.topk(k)
                records.append({"path": path, "valid": True, "classes": [names[int(j)] for j in i],
                                "probs": [round(float(x), 6) for x in p]})
            with open(tmp, "w", newline="", encoding="utf-8") as f:
                if out.suffix == ".jsonl":
                    f.writelines(json.dumps(r) + "\n" for r in records)
                else:
                    writer = csv.writer(f)
                    writer.writerow(["path", "valid", *[c for r in range(1, k + 1) for c in (f"class{r}", f"prob{r}")]])
                    for r in records:
                        pairs = [x for c, p in zip(r["classes"], r["probs"]) for x in (c, p)]
                        writer.writerow([r["path"], int(r["valid"]), *pairs])
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            tmp.unlink()
