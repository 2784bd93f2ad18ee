"""Kinetics-like video files for measuring whether the input pipeline feeds the GPU.

The synthetic action dataset (``gcvideo.data.synthetic.videos``) is tiny and easy to decode; what the training pipeline
costs on real downloads depends on how those files are encoded. These files are encoded the way YouTube
clips are: H.264 High profile with B-frames (x264 ``medium``, 3 B-frames, CABAC), one keyframe every 250
frames, 30 fps, 10 s, yuv420p, with an AAC stereo audio track. The picture is natural-looking enough for
a realistic bitrate: a panning textured background, a few moving blobs and sensor-like grain.

    DIR/classnames.txt
    DIR/kinetics_like.json                        the settings, written last (a complete dataset)
    DIR/annotations/{train,val}.csv               label,youtube_id,time_start,time_end,split
    DIR/videos/{split}/<label>/<youtube_id>_<time_start:06d>_<time_end:06d>.mp4

    gcvideo data make-bench-videos --out datasets/bench340 --size 340x256 --videos 16
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np

from gcvideo.data.annotations import KINETICS_HEADER, kinetics_video_name
from gcvideo.parallel import map_with_progress

AUDIO_RATE = 44_100
KINETICS_LIKE_VERSION = 1  # bumped whenever the picture or the encoding changes


def render_frames(seed: int, frames: int, height: int, width: int) -> np.ndarray:
    """(T, H, W, 3) uint8: a textured background panning across the frame, moving blobs and grain."""
    rng = np.random.default_rng(seed)
    margin = max(height, width) // 4
    th, tw = height + 2 * margin, width + 2 * margin
    # smooth texture: coarse noise upsampled bilinearly (two octaves), per colour channel
    texture = np.zeros((th, tw, 3), dtype=np.float32)
    for cell, weight in ((48, 90.0), (12, 35.0)):
        coarse = rng.uniform(-1, 1, (th // cell + 2, tw // cell + 2, 3)).astype(np.float32)
        ys, xs = np.arange(th) / cell, np.arange(tw) / cell
        y0, x0 = ys.astype(int), xs.astype(int)
        fy, fx = (ys - y0)[:, None, None], (xs - x0)[None, :, None]
        top = coarse[y0][:, x0] * (1 - fx) + coarse[y0][:, x0 + 1] * fx
        bottom = coarse[y0 + 1][:, x0] * (1 - fx) + coarse[y0 + 1][:, x0 + 1] * fx
        texture += weight * (top * (1 - fy) + bottom * fy)
    texture += rng.uniform(60, 190, 3).astype(np.float32)
    grain = rng.normal(0, 6, (8, height, width, 1)).astype(np.float32)  # cycled: a pool, not fresh noise
    path = rng.uniform(0, 2 * margin, 2) + np.cumsum(rng.normal(0, 0.6, (frames, 2)), axis=0)
    path = np.clip(path, 0, 2 * margin - 1).astype(int)  # camera pan (y, x) per frame
    blobs = [(rng.uniform(0, width), rng.uniform(0, height), rng.uniform(-3, 3), rng.uniform(-2, 2),
              rng.uniform(0.05, 0.15) * min(height, width), rng.uniform(0, 255, 3)) for _ in range(3)]
    video = np.empty((frames, height, width, 3), dtype=np.uint8)
    for t in range(frames):
        y, x = path[t]
        frame = texture[y:y + height, x:x + width] + grain[t % len(grain)]
        for bx, by, vx, vy, r, colour in blobs:
            cx, cy = (bx + vx * t) % width, (by + vy * t) % height
            y0, y1 = int(max(cy - r, 0)), int(min(cy + r + 1, height))
            x0, x1 = int(max(cx - r, 0)), int(min(cx + r + 1, width))
            yy, xx = np.ogrid[y0:y1, x0:x1]
            inside = ((xx - cx) ** 2 + (yy - cy) ** 2) <= r * r  # only the blob's bounding box
            box = frame[y0:y1, x0:x1]
            box[inside] = 0.3 * box[inside] + 0.7 * colour
        video[t] = np.clip(frame, 0, 255).astype(np.uint8)
    return video


def write_kinetics_like_mp4(path: str | os.PathLike, video: np.ndarray, fps: int = 30, *, gop: int = 250,
                            crf: int = 23, preset: str = "medium", audio: bool = True, seed: int = 0) -> None:
    """Write (T, H, W, 3) uint8 frames as H.264 High (B-frames, keyframe every ``gop``) + AAC, atomically."""
    import av

    t, h, w, _ = video.shape
    if h % 2 or w % 2:
        raise ValueError(f"H.264 yuv420p needs even frame sizes, got {w}x{h}")
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    rng = np.random.default_rng(seed)
    with av.open(str(tmp), mode="w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.codec_context.thread_count = 1
        # min-keyint = keyint and no scene cuts: exactly one keyframe every ``gop`` frames
        stream.options = {"crf": str(crf), "preset": preset, "profile": "high",
                          "x264-params": f"keyint={gop}:min-keyint={gop}:scenecut=0:bframes=3"}
        sound = container.add_stream("aac", rate=AUDIO_RATE, layout="stereo") if audio else None
        samples_written = 0
        for i, frame in enumerate(video):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
            while sound is not None and samples_written < (i + 1) * AUDIO_RATE // fps:  # interleaved, as muxed
                n = 1024
                tone = np.sin(2 * np.pi * 220 * (samples_written + np.arange(n)) / AUDIO_RATE)
                pcm = (0.2 * tone + 0.05 * rng.standard_normal(n)).astype(np.float32)
                chunk = av.AudioFrame.from_ndarray(np.stack([pcm, pcm]), format="fltp", layout="stereo")
                chunk.sample_rate, chunk.pts = AUDIO_RATE, samples_written
                container.mux(sound.encode(chunk))
                samples_written += n
        container.mux(stream.encode())
        if sound is not None:
            container.mux(sound.encode())
    os.replace(tmp, path)


def _write_one(job: tuple) -> None:
    path, seed, frames, height, width, fps, gop, preset = job
    write_kinetics_like_mp4(path, render_frames(seed, frames, height, width), fps, gop=gop, preset=preset, seed=seed)


def write_kinetics_like_dataset(out: str | os.PathLike, *, size: tuple[int, int] = (340, 256), videos: int = 16,
                                val_videos: int = 2, classes: int = 4, seconds: float = 10.0, fps: int = 30,
                                gop: int = 250, preset: str = "medium", seed: int = 0, workers: int | None = None,
                                progress: bool = True) -> Path:
    """Write ``videos`` training and ``val_videos`` validation files of ``size`` (W, H) in the Kinetics layout.

    ``out/kinetics_like.json`` records the settings; when it matches and every file exists, nothing is
    written again. ``preset`` is x264's (``medium`` as on YouTube; ``veryfast`` writes ~3x faster and
    decodes at about the same speed).
    """
    width, height = size
    frames = round(seconds * fps)
    if frames < 1 or width % 2 or height % 2 or videos < 1 or classes < 1:
        raise ValueError(f"need >= 1 frame, video and class, and even sizes; got {frames} frames of "
                         f"{width}x{height}, {videos} videos, {classes} classes")
    out = Path(out)
    settings = {"version": KINETICS_LIKE_VERSION, "size": [width, height], "videos": videos, "val_videos": val_videos,
                "classes": classes, "seconds": seconds, "fps": fps, "gop": gop, "preset": preset, "seed": seed}
    stamp = out / "kinetics_like.json"
    names = [f"class {i:02d}" for i in range(classes)]
    jobs, rows = [], {"train": [], "val": []}
    for split, count in (("train", videos), ("val", val_videos)):
        for i in range(count):
            label = names[i % classes]
            youtube_id = f"{split[:2]}{seed:03d}{i:06d}"[:11].ljust(11, "x")
            rows[split].append((label, youtube_id, 0, round(seconds), split))
            path = out / "videos" / split / label / kinetics_video_name(youtube_id, 0, round(seconds))
            jobs.append((str(path), seed * 1_000_003 + i + (0 if split == "train" else 500_000),
                         frames, height, width, fps, gop, preset))
    if stamp.is_file() and json.loads(stamp.read_text(encoding="utf-8")) == settings and \
            all(os.path.isfile(job[0]) for job in jobs):
        return out
    stamp.unlink(missing_ok=True)  # written last: it stamps only a complete dataset
    (out / "annotations").mkdir(parents=True, exist_ok=True)
    (out / "classnames.txt").write_text("".join(f"{n}\n" for n in names), encoding="utf-8")
    for split, split_rows in rows.items():
        for label in names:
            (out / "videos" / split / label).mkdir(parents=True, exist_ok=True)
        with open(out / "annotations" / f"{split}.csv", "w", newline="", encoding="utf-8") as f:
            csv.writer(f).writerows([KINETICS_HEADER, *split_rows])
    todo = [job for job in jobs if not os.path.isfile(job[0])]  # resumable: finished files stay
    for _ in map_with_progress(_write_one, todo, workers=workers, desc=f"kinetics-like {width}x{height}",
                               progress=progress):
        pass
    stamp.write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")
    return out
