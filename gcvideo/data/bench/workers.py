"""``gcvideo data bench --mode training``: what one DataLoader worker delivers per second.

A worker decodes, transforms and collates training clips on one core; ``gcvideo fit`` on one GPU with
16 cores runs ~14 of them. This measures, side by side in one run, a baseline training pipeline
(decord, resize then crop, normalised float32 clips, one clip per decoded video: what pytorchvideo-style
loaders do) and each lever alone and together:

- ``uint8``: clips leave the worker as uint8, normalised on the GPU (``KineticsDataModule.uint8_batches``);
- ``crop first``: the train crop is cut before resizing (``transforms.ScaleJitterCrop``);
- ``PyAV seeking``: exact seeking by timestamp that skips unneeded non-reference frames (``data.decoder: auto``);
- ``clips_per_video=k``: k random windows from one decoding pass (``data.clips_per_video``, opt-in);
- ``prepared``: the same videos after ``gcvideo data prepare`` (short side 320, one keyframe every 32 frames).

Each row runs the real ``VideoDataset`` in this process with one thread, on the same videos and windows,
and collates batches of ``batch_size`` clips. Rates are clips per second of this process's CPU time
(what a worker on its own core achieves, and steady on a shared machine), the median of ``repeats``
rounds that interleave the rows; wall-clock rates are reported too.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import default_collate

from gcvideo.data.annotations import VideoRecord, load_class_names, resolve_split
from gcvideo.data.clips.datasets import VideoDataset, flatten_clips
from gcvideo.data.clips.transforms import spatial_transform
from gcvideo.data.preparation.reencode import prepare_video


@dataclass(frozen=True)
class PipelineRow:
    """One configuration of the training pipeline."""

    name: str
    decoder: str = "decord"
    output: str = "float"
    crop_first: bool = False
    clips_per_video: int = 1
    prepared: bool = False


def training_rows(clips_per_video: int, prepared: bool) -> list[PipelineRow]:
    """The baseline, each lever alone, and the combinations (recipe default: one clip per decoding pass)."""
    k = clips_per_video
    best = dict(decoder="auto", output="uint8", crop_first=True)
    rows = [PipelineRow("baseline: decord, resize then crop, float32 clips"),
            PipelineRow("lever: uint8 clips (normalised on the GPU)", output="uint8"),
            PipelineRow("lever: crop before resize", crop_first=True),
            PipelineRow("lever: PyAV seeking (decoder auto)", decoder="auto"),
            PipelineRow(f"lever: clips_per_video={k}", clips_per_video=k)]
    if prepared:
        rows.append(PipelineRow("lever: prepared files", prepared=True))
    rows.append(PipelineRow("all but clips_per_video (recipe default)", **best))
    rows.append(PipelineRow(f"all, clips_per_video={k}", clips_per_video=k, **best))
    if prepared:
        rows.append(PipelineRow("all on prepared files (recipe default)", prepared=True, **best))
        rows.append(PipelineRow(f"all on prepared files, clips_per_video={k}", prepared=True, clips_per_video=k,
                                **best))
    return rows


def _prepared_records(records: list[VideoRecord], folder: Path, **options) -> tuple[list[VideoRecord], float]:
    """The videos re-encoded by ``gcvideo data prepare``'s encoder, and its seconds per video (one process)."""
    out, start = [], time.perf_counter()
    for i, record in enumerate(records):
        target = folder / f"{i:05d}{Path(record.path).suffix}"
        prepare_video(record.path, target, **options)
        out.append(VideoRecord(str(target), record.label))
    return out, (time.perf_counter() - start) / max(len(records), 1)


def _run_row(row: PipelineRow, records: list[VideoRecord], clips: int, batch_size: int, *, frames: int,
             stride: int, short_side: tuple[int, int], crop: int, seed: int) -> tuple[float, float]:
    """(CPU seconds, wall seconds) to deliver ``clips`` collated training clips with ``row``'s pipeline."""
    dataset = VideoDataset(records, "train", frames=frames, stride=stride, short_side=short_side, crop=crop,
                           decoder=row.decoder, output=row.output, clips_per_video=row.clips_per_video)
    dataset.spatial = spatial_transform("train", short_side, crop, crop_first=row.crop_first)
    items_per_batch = max(batch_size // row.clips_per_video, 1)
    collate = flatten_clips if row.clips_per_video > 1 else default_collate
    torch.manual_seed(seed)  # the same windows and crops for every row
    dataset[0]  # warm-up: imports, first open
    cpu, wall = time.process_time(), time.perf_counter()
    index, delivered = 0, 0
    while delivered < clips:
        batch = collate([dataset[(index + i) % len(dataset)] for i in range(items_per_batch)])
        index += items_per_batch
        delivered += len(batch["label"])
    return (time.process_time() - cpu) / delivered, (time.perf_counter() - wall) / delivered


def bench_training(root: str, split: str = "train", *, clips: int = 48, batch_size: int = 8, videos: int = 16,
                   clips_per_video: int = 2, prepare: bool = True, repeats: int = 3, frames: int = 8, stride: int = 8,
                   short_side: tuple[int, int] = (256, 320), crop: int = 224, prepare_short_side: int = 320,
                   prepare_gop: int = 32, seed: int = 0) -> dict:
    """Per-worker clips/s of every row of ``training_rows`` (module docstring); returns a JSON-able dict."""
    torch.set_num_threads(1)
    records, _, _ = resolve_split(root, split, load_class_names(root))
    if not records:
        raise ValueError(f"split {split!r} of {root} lists no videos")
    records = records[:videos]
    result: dict = {"root": os.path.abspath(root), "split": split, "videos": len(records), "clips": clips,
                    "batch_size": batch_size, "repeats": repeats, "frames": frames, "stride": stride,
                    "short_side": list(short_side), "crop": crop, "unit": "clips per second of one worker's CPU time"}
    with tempfile.TemporaryDirectory(prefix="gcvideo_bench_") as scratch:
        prepared = None
        if prepare:
            prepared, seconds = _prepared_records(records, Path(scratch), short_side=prepare_short_side,
                                                  gop=prepare_gop)
            result["prepare"] = {"seconds_per_video": seconds, "short_side": prepare_short_side, "gop": prepare_gop,
                                 "note": "one process; `gcvideo data prepare --workers N` runs N at once"}
        rows = training_rows(clips_per_video, prepare)
        times: dict[str, list[tuple[float, float]]] = {row.name: [] for row in rows}
        for _ in range(repeats):  # rounds interleave the rows: a slow spell of the machine hits all of them
            for row in rows:
                times[row.name].append(_run_row(row, prepared if row.prepared else records, clips, batch_size,
                                                frames=frames, stride=stride, short_side=short_side, crop=crop,
                                                seed=seed))
    baseline = 1.0 / statistics.median(cpu for cpu, _ in times[rows[0].name])
    result["rows"] = []
    for row in rows:
        rate = 1.0 / statistics.median(cpu for cpu, _ in times[row.name])
        result["rows"].append({"name": row.name, "decoder": row.decoder, "output": row.output,
                               "crop_first": row.crop_first, "clips_per_video": row.clips_per_video,
                               "prepared": row.prepared, "clips_per_s": rate, "vs_baseline": rate / baseline,
                               "wall_clips_per_s": 1.0 / statistics.median(wall for _, wall in times[row.name])})
    return result


def format_training(result: dict) -> str:
    lines = [f"training pipeline per worker on {result['videos']} videos of {result['root']} ({result['split']}), "
             f"{result['clips']} clips per row, batches of {result['batch_size']}, median of {result['repeats']}",
             f"{'pipeline':<52}{'clips/s':>9}{'vs baseline':>13}{'wall clips/s':>14}"]
    lines += [f"{r['name']:<52}{r['clips_per_s']:>9.1f}{r['vs_baseline']:>12.2f}x{r['wall_clips_per_s']:>14.1f}"
              for r in result["rows"]]
    if "prepare" in result:
        p = result["prepare"]
        lines.append(f"prepare (short side {p['short_side']}, GOP {p['gop']}): {p['seconds_per_video']:.2f} s per "
                     f"video in one process")
    lines.append("clips/s: per second of the worker's CPU time (one core); wall: per second of elapsed time")
    return "\n".join(lines)
