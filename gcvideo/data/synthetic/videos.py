"""Embedded synthetic action dataset, written in the official Kinetics-400 layout.

Each class is an action that can only be told apart over time or across the frame (the setting where
the paper's global-context blocks and the Slow pathway's temporal convolutions matter): an object moving
in one direction, growing or shrinking, two objects approaching or separating, a flash in one corner
followed by an object appearing in the opposite (or the same) corner, which only a relation across the
whole frame separates, and (outside the default 10) an object rotating one way. Colours, sizes,
positions, speeds and the static background clutter are random, so one frame does not give the label
away. The files go through exactly the same code path as a real Kinetics copy:

    DIR/classnames.txt
    DIR/synth.json                                the settings, written last (a complete dataset)
    DIR/annotations/{train,val,test}.csv          label,youtube_id,time_start,time_end,split
    DIR/videos/{split}/<label>/<youtube_id>_<time_start:06d>_<time_end:06d>.mp4   (H.264, yuv420p)

Everything is a pure function of ``seed``: same seed, same frames.
"""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
from pathlib import Path
from typing import Sequence

import numpy as np

from gcvideo.data.annotations import KINETICS_HEADER, kinetics_video_name
from gcvideo.data.synthetic.drawing import SHAPES, Canvas, cluttered_background, random_colour
from gcvideo.parallel import map_with_progress

CLASSES: tuple[str, ...] = (
    "moving left",
    "moving right",
    "moving up",
    "moving down",
    "growing",
    "shrinking",
    "two objects approaching",
    "two objects separating",
    "flash, then an object in the opposite corner",
    "flash, then an object in the same corner",
    # last, so outside the default 10: the direction of a turn is not learnt from 32x32 clips in the
    # quick start's budget (chance between the two after 8 epochs, with everything else at 0.85-1.0)
    "rotating clockwise",
    "rotating anticlockwise",
)
SPLITS: tuple[str, ...] = ("train", "val", "test")
# the version of the videos' content and encoding (write_mp4): a dataset of another version is written again
SYNTH_VERSION = 3
_ID_ALPHABET = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"))


def render_video(label: int, seed: Sequence[int] | int, frames: int = 64, height: int = 64,
                 width: int = 64) -> np.ndarray:
    """Frames (T, H, W, 3) uint8 of one clip of class ``label`` (an index into ``CLASSES``)."""
    if not 0 <= label < len(CLASSES):
        raise ValueError(f"label must be in [0, {len(CLASSES)}), got {label}")
    rng = np.random.default_rng(seed)
    canvas, s = Canvas(height, width), float(min(height, width))
    background = cluttered_background(rng, canvas, s)
    colour, kind = random_colour(rng, bright=True), str(rng.choice(SHAPES))
    p = np.linspace(0.0, 1.0, frames, dtype=np.float32)  # progress through the clip
    name = CLASSES[label]
    objects: list[list[tuple[float, float, float, float]]] = []  # per frame: (cx, cy, r, angle)
    visible = np.ones(frames, dtype=bool)
    flash: tuple[np.ndarray, np.ndarray] | None = None
    angle0 = rng.uniform(0, 360)
    if name.startswith("moving"):
        r = rng.uniform(0.08, 0.13) * s
        dist = rng.uniform(0.45, 0.75) * (s - 2 * r)
        along = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}[name.split()[1]]
        x0 = rng.uniform(r + max(0, -along[0]) * dist, width - r - max(0, along[0]) * dist)
        y0 = rng.uniform(r + max(0, -along[1]) * dist, height - r - max(0, along[1]) * dist)
        objects = [[(x0 + along[0] * dist * q, y0 + along[1] * dist * q, r, angle0)] for q in p]
    elif name.startswith("rotating"):
        kind, r = "arrow", rng.uniform(0.28, 0.38) * s  # large: its turn must show at 32x32
        turn = rng.uniform(150, 330) * (-1 if "anticlockwise" not in name else 1)  # degrees, maths convention
        cx, cy = rng.uniform(r, width - r), rng.uniform(r, height - r)
        objects = [[(cx, cy, r, angle0 + turn * q)] for q in p]
    elif name in ("growing", "shrinking"):
        r_small, r_big = rng.uniform(0.05, 0.08) * s, rng.uniform(0.2, 0.28) * s
        cx, cy = rng.uniform(r_big, width - r_big), rng.uniform(r_big, height - r_big)
        q = p if name == "growing" else 1 - p
        objects = [[(cx, cy, r_small + (r_big - r_small) * v, angle0)] for v in q]
    elif name.startswith("two objects"):
        r = rng.uniform(0.08, 0.11) * s
        near, far = rng.uniform(2.4, 3.2) * r, rng.uniform(0.55, 0.75) * s
        theta = rng.uniform(0, 2 * math.pi)
        half = 0.5 * far
        ux, uy = math.cos(theta), math.sin(theta)
        cx = rng.uniform(r + half * abs(ux), width - r - half * abs(ux))
        cy = rng.uniform(r + half * abs(uy), height - r - half * abs(uy))
        q = p if "separating" in name else 1 - p
        for v in q:
            d = 0.5 * (near + (far - near) * v)
            objects.append([(cx - d * ux, cy - d * uy, r, angle0), (cx + d * ux, cy + d * uy, r, angle0)])
    else:  # flash in one corner, then an object in the opposite or the same corner
        corner = rng.integers(2, size=2)  # (right?, bottom?)
        target = 1 - corner if "opposite" in name else corner
        r = rng.uniform(0.08, 0.12) * s
        start = int(rng.uniform(0.1, 0.3) * frames)
        stop = start + max(10, round(0.15 * frames))
        fx, fy = (0.2 + 0.6 * corner[0]) * width, (0.2 + 0.6 * corner[1]) * height
        flash_mask = canvas.disc(fx, fy, rng.uniform(0.12, 0.18) * s)
        flash = (np.arange(frames) >= start) & (np.arange(frames) < stop), flash_mask
        visible = np.arange(frames) >= stop
        tx, ty = (0.25 + 0.5 * target[0]) * width, (0.25 + 0.5 * target[1]) * height
        wobble = rng.uniform(0.04, 0.08) * s
        objects = [[(tx + wobble * math.cos(6 * q + angle0), ty + wobble * math.sin(6 * q + angle0), r, angle0)]
                   for q in p]
    video = np.empty((frames, height, width, 3), dtype=np.uint8)
    for t in range(frames):
        frame = background.copy()
        if flash is not None and flash[0][t]:
            frame[flash[1]] = 255.0
        if visible[t]:
            for cx, cy, r, angle in objects[t]:
                frame[canvas.shape(kind, cx, cy, r, angle)] = colour
        video[t] = np.clip(frame, 0, 255).astype(np.uint8)
    return video


def write_mp4(path: str | os.PathLike, video: np.ndarray, fps: float, crf: int = 18) -> None:
    """Write (T, H, W, 3) uint8 frames as H.264 yuv420p (atomically: temporary file, then rename).

    The same frames always give the same bytes. x264's macroblock-tree rate control (``mbtree``, on by
    default with ``crf``) did not: even with one thread, PyAV's libx264 wrote one of several different
    streams for the same input depending on the process's memory state (about 2% of the quick start's
    videos differed between two writes), so the quick start and the tests saw different pixels.
    """
    import av

    t, h, w, _ = video.shape
    if h % 2 or w % 2:
        raise ValueError(f"H.264 yuv420p needs even frame sizes, got {w}x{h}")
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    with av.open(str(tmp), mode="w") as container:
        stream = container.add_stream("libx264", rate=round(fps))
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.codec_context.thread_count = 1
        stream.options = {"crf": str(crf), "preset": "veryfast", "x264-params": "mbtree=0"}  # deterministic
        for frame in video:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    os.replace(tmp, path)


def _write_one(job: tuple[str, int, tuple[int, ...], int, int, int, float]) -> None:
    path, label, seed, frames, height, width, fps = job
    write_mp4(path, render_video(label, seed, frames, height, width), fps)


def write_video_dataset(out: str | os.PathLike, *, classes: int = 10, train_per_class: int = 240,
                        val_per_class: int = 10, test_per_class: int = 10, seconds: float = 1.28,
                        fps: float = 25.0, size: tuple[int, int] = (64, 64), seed: int = 0,
                        workers: int | None = None, progress: bool = True, force: bool = False) -> Path:
    """Write the synthetic dataset under ``out`` in the Kinetics layout; returns ``out``.

    The defaults are the quick start's dataset (``configs/synthetic``): 2,400 training videos of 32 frames,
    which the synthetic configs sample as 8 frames with stride 4. ``out/synth.json`` records the arguments;
    when it matches and every video exists, nothing is written again (``force=True`` rewrites).

    Args:
        classes: number of classes, the first ones of ``CLASSES``.
        seconds, fps: clip length (``round(seconds * fps)`` frames).
        size: (width, height) in pixels, both even (H.264 yuv420p).
        workers: encoding processes (default: all CPUs).
    """
    if not 1 <= classes <= len(CLASSES):
        raise ValueError(f"classes must be in [1, {len(CLASSES)}], got {classes}")
    width, height = size
    frames = round(seconds * fps)
    if frames < 1 or width < 2 or height < 2 or width % 2 or height % 2:
        raise ValueError(f"need >= 1 frame and even sizes, got {frames} frames of {width}x{height}")
    out = Path(out)
    settings = {"version": SYNTH_VERSION, "classes": classes, "train_per_class": train_per_class,
                "val_per_class": val_per_class, "test_per_class": test_per_class, "seconds": seconds, "fps": fps,
                "size": [width, height], "seed": seed}
    if not force and _up_to_date(out, settings):
        if progress:
            print(f"{out}: already written with these settings ({out / 'synth.json'})")
        return out
    if (out / "synth.json").is_file():  # ours, written with other settings: no stale videos left behind
        shutil.rmtree(out / "videos", ignore_errors=True)
        (out / "synth.json").unlink()  # written last: a stamp only of a complete dataset
    names = CLASSES[:classes]
    (out / "annotations").mkdir(parents=True, exist_ok=True)
    (out / "classnames.txt").write_text("".join(f"{n}\n" for n in names), encoding="utf-8")
    counts = {"train": train_per_class, "val": val_per_class, "test": test_per_class}
    jobs, seen = [], set()
    for split_index, split in enumerate(SPLITS):
        rows = []
        for label, name in enumerate(names):
            (out / "videos" / split / name).mkdir(parents=True, exist_ok=True)
            for i in range(counts[split]):
                key = (seed, split_index, label, i)
                id_rng = np.random.default_rng((*key, 1))
                youtube_id = "".join(id_rng.choice(_ID_ALPHABET, 11))
                while youtube_id in seen:
                    youtube_id = "".join(id_rng.choice(_ID_ALPHABET, 11))
                seen.add(youtube_id)
                start = int(id_rng.integers(0, 300))
                end = start + max(1, math.ceil(seconds))
                rows.append((name, youtube_id, start, end, split))
                path = out / "videos" / split / name / kinetics_video_name(youtube_id, start, end)
                jobs.append((str(path), label, key, frames, height, width, fps))
        with open(out / "annotations" / f"{split}.csv", "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(KINETICS_HEADER)
            writer.writerows(rows)
    for _ in map_with_progress(_write_one, jobs, workers=workers, desc="synth videos", progress=progress, chunksize=4):
        pass
    (out / "synth.json").write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")
    return out


def _up_to_date(out: Path, settings: dict) -> bool:
    """Whether ``out`` holds a complete dataset written with ``settings``."""
    try:
        if json.loads((out / "synth.json").read_text(encoding="utf-8")) != settings:
            return False
        for split in SPLITS:
            with open(out / "annotations" / f"{split}.csv", newline="", encoding="utf-8") as f:
                rows = list(csv.DictReader(f))
            if any(not (out / "videos" / split / r["label"] / kinetics_video_name(
                    r["youtube_id"], int(r["time_start"]), int(r["time_end"]))).is_file() for r in rows):
                return False
    except (OSError, ValueError, KeyError):
        return False
    return True
