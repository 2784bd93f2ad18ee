"""Decoding benchmarks (CPU, one thread per decoder, as a DataLoader worker runs).

Costs are CPU milliseconds of this process (``time.process_time``, all its threads), the lesser of a
few repeats: on a machine shared with other work, wall time measures the neighbours.

1. Per-clip cost of an 8x8 window (8 frames 8 apart, random positions, the same for every backend) on
   Kinetics-like files: H.264 High with B-frames, GOP 250, 340x256 and 1280x720, 10 s at 30 fps with audio,
   the same cut from a longer download with an edit list, and HEVC with an open GOP. "decord" reads every
   file with decord (the pytorchvideo/mmaction2 habit); "auto" routes per file.
2. Flat cost: one window at the start, middle and end of a 3-minute video, PyAV seeking by timestamp
   against PyAV decoding from the start (``pyav_sequential``).
3. ``gcvideo data check``: seconds per 340x256 10 s video, and the speed-up of 2 workers over 1.

    python scripts/bench_decode.py [--out DIR] [--clips 12] [--check-videos 16]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from gcvideo.data.decoding.backends import DECODERS
from gcvideo.data.preparation.split_check import check_split
from gcvideo.data.decoding.decode import decode_frames
from gcvideo.data.decoding.probe import probe_video, torchcodec_available
from gcvideo.data.decoding.video_check import check_video

H264 = ["-c:v", "libx264", "-profile:v", "high", "-bf", "3", "-g", "250", "-keyint_min", "250", "-preset", "veryfast"]


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *args], check=True)


def _kinetics_like(path: Path, size: str, seconds: float, codec: list[str]) -> Path:
    if not path.exists():
        _ffmpeg("-f", "lavfi", "-i", f"testsrc2=size={size}:rate=30:duration={seconds}", "-f", "lavfi", "-i",
                f"sine=frequency=440:duration={seconds}", *codec, "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest",
                "-movflags", "+faststart", str(path))
    return path


def make_videos(out: Path) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    videos = {
        "h264 340x256": _kinetics_like(out / "k340.mp4", "340x256", 10, H264),
        "h264 1280x720": _kinetics_like(out / "k720.mp4", "1280x720", 10, H264),
        "hevc open GOP 340x256": _kinetics_like(out / "hevc340.mp4", "340x256", 10, [
            "-c:v", "libx265", "-preset", "ultrafast", "-tag:v", "hvc1", "-x265-params", "keyint=250:log-level=error"]),
    }
    source = _kinetics_like(out / "download20.mp4", "340x256", 20, H264)
    cut = out / "cut.mp4"
    if not cut.exists():
        _ffmpeg("-ss", "4.3", "-t", "10", "-i", str(source), "-c", "copy", str(cut))
    videos["h264 edit-list cut 340x256"] = cut
    videos["3-minute 340x256"] = _kinetics_like(out / "long180.mp4", "340x256", 180, H264)
    return videos


def _cpu_ms(fn, repeats: int) -> float:
    """Least CPU time of ``repeats`` calls, in ms."""
    times = []
    for _ in range(repeats):
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return 1000 * min(times)


def clip_costs(videos: dict[str, Path], clips: int) -> None:
    backends = ["decord", "auto", *(["torchcodec"] if torchcodec_available() else []), "pyav"]
    print(f"\n1. CPU ms per 8x8 clip (mean over {clips} random windows of the least of 3 repeats; "
          f"decord = every file with decord, auto = the backend per file)")
    print(f"{'file':<28}{'auto picks':<12}" + "".join(f"{b:>12}" for b in backends))
    for name, path in videos.items():
        if name.startswith("3-minute"):
            continue
        info = probe_video(path)
        starts = np.random.default_rng(0).integers(0, max(info.frames - 57, 1), clips)
        row = {b: [] for b in backends}
        for start in starts:  # interleaved, so the machine's load falls on every backend alike
            window = start + 8 * np.arange(8)
            for b in backends:
                row[b].append(_cpu_ms(lambda: decode_frames(path, lambda count: window, b), 3))
        print(f"{name:<28}{info.backend:<12}" + "".join(f"{np.mean(row[b]):>12.1f}" for b in backends))


def flat_cost(path: Path, windows: int) -> None:
    info = probe_video(path)
    print(f"\n2. CPU ms per 8x8 clip along a {info.duration:.0f} s video with a keyframe every 250 frames "
          f"(mean of {windows} windows in each tenth of it)")
    print(f"{'where':<12}{'pyav (seek)':>14}{'pyav from start':>18}")
    rng = np.random.default_rng(0)
    for tenth in (0, 4, 9):
        starts = rng.integers(tenth * info.frames // 10, (tenth + 1) * info.frames // 10 - 57, windows)
        cost = {b: [] for b in ("pyav", "pyav_sequential")}
        for start in starts:
            window = start + 8 * np.arange(8)
            for b in cost:
                cost[b].append(_cpu_ms(lambda: DECODERS[b](str(path), lambda c: window, None), 1))
        where = f"{tenth * info.duration / 10:.0f}-{(tenth + 1) * info.duration / 10:.0f} s"
        print(f"{where:<12}{np.mean(cost['pyav']):>14.0f}{np.mean(cost['pyav_sequential']):>18.0f}")


def _decord_full_decode(path: Path) -> None:
    import decord

    reader = decord.VideoReader(str(path), num_threads=1)
    for start in range(0, len(reader), 32):
        reader.get_batch(list(range(start, min(len(reader), start + 32))))


def check_cost(path: Path, videos: int, out: Path) -> None:
    per_video = _cpu_ms(lambda: check_video(str(path), "x"), 3) / 1000
    full_decord = _cpu_ms(lambda: _decord_full_decode(path), 3) / 1000
    print(f"\n3. data check: {per_video:.2f} CPU s per 340x256 10 s video (in-order decode + backend checks; "
          f"a full decord decode for comparison: {full_decord:.2f} s); wall time of whole runs:")
    root = out / "check"
    shutil.rmtree(root, ignore_errors=True)
    (root / "videos").mkdir(parents=True)
    for i in range(videos):
        os.link(path, root / "videos" / f"v{i:03d}.mp4")
    (root / "classnames.txt").write_text("a\n")
    (root / "train.txt").write_text("".join(f"videos/v{i:03d}.mp4 0\n" for i in range(videos)))
    walls = {}
    check_split(root, "train", workers=1, progress=False, out=root / "warmup")  # the fork server's start
    for workers in (1, 2):
        start = time.perf_counter()
        check_split(root, "train", workers=workers, progress=False, out=root / f"w{workers}")
        walls[workers] = time.perf_counter() - start
        print(f"   {workers} worker(s): {walls[workers]:.1f} s for {videos} videos "
              f"({walls[workers] / videos:.2f} s per video)")
    print(f"   speed-up of 2 workers over 1: {walls[1] / walls[2]:.2f}x on {os.cpu_count()} cores")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=None, help="folder for the generated videos (kept; default: a temp dir)")
    parser.add_argument("--clips", type=int, default=12, help="random windows per file and backend")
    parser.add_argument("--check-videos", type=int, default=16, help="videos for the data check speed-up")
    parser.add_argument("--skip", nargs="*", default=[], choices=("clips", "flat", "check"), help="parts to skip")
    args = parser.parse_args()
    torch.set_num_threads(1)
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="bench_decode_"))
    videos = make_videos(out)
    if "clips" not in args.skip:
        clip_costs(videos, args.clips)
    if "flat" not in args.skip:
        flat_cost(videos["3-minute 340x256"], 4)
    if "check" not in args.skip:
        check_cost(videos["h264 340x256"], args.check_videos, out)


if __name__ == "__main__":
    main()
