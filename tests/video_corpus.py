"""A small corpus of real-world video files, made with the ffmpeg command line.

Every frame paints its index as a 4 x 3 grid of black/white blocks (12 bits, least significant first,
row by row), big enough to survive lossy coding, so a decoded frame can be identified by
``read_index`` whatever the codec. The corpus covers the files decord is known to read wrong (an mp4
cut with an edit list, MPEG-4 part 2 with B-frames in avi and mp4, HEVC with an open GOP), the common
ones (H.264 High with B-frames, VP9/webm, AV1, mkv, mov), the layout as downloaded (rotation metadata),
frame rates (29.97, 60, variable), a short 720p file, and damage (truncation, corruption).

Run ``python tests/video_corpus.py OUT_DIR`` to write it by hand; the tests build it once per session.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

GRID = (3, 4)  # rows, columns of the index pattern
LOW, HIGH = 30, 225


@dataclass(frozen=True)
class CorpusFile:
    """One file of the corpus and what a right decoder must see in it."""

    name: str
    path: Path
    rotation: int = 0  # degrees counter-clockwise a player turns the stored picture (the display matrix)
    damaged: bool = False  # truncated or corrupted: only part of it decodes


def paint_index(index: int, height: int, width: int) -> np.ndarray:
    """A (H, W, 3) uint8 frame showing ``index`` as blocks, plus a thin moving bar (some motion to code)."""
    rows, cols = GRID
    bits = np.array([(index >> b) & 1 for b in range(rows * cols)], dtype=np.uint8).reshape(rows, cols)
    frame = np.where(np.kron(bits, np.ones((height // rows + 1, width // cols + 1), np.uint8))[:height, :width],
                     HIGH, LOW).astype(np.uint8)
    frame = np.repeat(frame[:, :, None], 3, axis=2)
    bar = (index * 3) % width
    frame[: max(1, height // 16), bar: bar + max(1, width // 16)] = (200, 40, 40)
    return frame


def read_index(frame: np.ndarray) -> int:
    """The index painted by ``paint_index`` on a decoded (H, W, 3) frame (upright as it was encoded)."""
    rows, cols = GRID
    height, width = frame.shape[:2]
    bh, bw = height // rows, width // cols
    gray = frame.astype(np.float32).mean(axis=2)
    index = 0
    for r in range(rows):
        for c in range(cols):
            block = gray[r * bh + bh // 4: (r + 1) * bh - bh // 4, c * bw + bw // 4: (c + 1) * bw - bw // 4]
            index |= int(block.mean() > (LOW + HIGH) / 2) << (r * cols + c)
    return index


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args], check=True)


def _encode(path: Path, frames: int, size: tuple[int, int], rate: str, codec: list[str],
            filters: str | None = None, extra: list[str] = ()) -> None:
    """Pipe painted frames (width, height = size) at ``rate`` into ffmpeg with the given codec options."""
    width, height = size
    video = b"".join(paint_index(i, height, width).tobytes() for i in range(frames))
    cmd = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
           "-s", f"{width}x{height}", "-r", rate, "-i", "-"]
    cmd += (["-vf", filters] if filters else []) + ["-pix_fmt", "yuv420p", *codec, *extra, str(path)]
    done = subprocess.run(cmd, input=video, capture_output=True)
    if done.returncode:
        raise RuntimeError(f"ffmpeg failed on {path.name}: {done.stderr.decode(errors='replace')[-2000:]}")


def has_encoder(name: str) -> bool:
    out = subprocess.run(["ffmpeg", "-hide_banner", "-encoders"], capture_output=True, text=True).stdout
    return any(line.split()[1:2] == [name] for line in out.splitlines() if line.startswith(" "))


X264 = ["-c:v", "libx264", "-profile:v", "high", "-bf", "3", "-preset", "veryfast", "-crf", "18"]
SIZE = (64, 48)


def build_corpus(out: str | Path) -> dict[str, CorpusFile]:
    """Write the corpus into ``out`` (about 2-4 s in all) and describe each file."""
    if shutil.which("ffmpeg") is None:
        raise RuntimeError("the video corpus needs the ffmpeg command (Debian package ffmpeg)")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, CorpusFile] = {}

    def add(name: str, **kw) -> Path:
        stem, ext = name.split(".")
        key = stem if ext == "mp4" else f"{stem}_{ext}"
        files[key] = CorpusFile(key, out / name, **kw)
        return out / name

    _encode(add("h264_high.mp4"), 60, SIZE, "30", X264 + ["-g", "25"])
    _encode(add("h264_high.mkv"), 60, SIZE, "30", X264 + ["-g", "25"])
    _encode(add("h264_high.mov"), 60, SIZE, "30", X264 + ["-g", "25"])
    _encode(add("hevc_open_gop.mp4"), 60, SIZE, "30",
            ["-c:v", "libx265", "-preset", "ultrafast", "-crf", "18", "-tag:v", "hvc1",
             "-x265-params", "keyint=20:min-keyint=20:open-gop=1:bframes=3:scenecut=0:log-level=error"])
    mpeg4 = ["-c:v", "mpeg4", "-bf", "2", "-q:v", "2", "-g", "20"]
    _encode(add("mpeg4_bframes.avi"), 60, SIZE, "30", mpeg4)
    _encode(add("mpeg4_bframes.mp4"), 60, SIZE, "30", mpeg4)
    _encode(add("vp9.webm"), 45, SIZE, "30", ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8",
                                                  "-crf", "20", "-b:v", "0", "-g", "20"])
    if has_encoder("libsvtav1"):
        _encode(add("av1.mp4"), 30, (64, 64), "30", ["-c:v", "libsvtav1", "-preset", "12", "-crf", "30", "-g", "20",
                                                     "-svtav1-params", "lp=1"])
    _encode(add("ntsc_2997.mp4"), 60, SIZE, "30000/1001", X264 + ["-g", "25"])
    _encode(add("fps60.mp4"), 120, SIZE, "60", X264 + ["-g", "50"])
    # variable frame rate: the first 30 frames at 60 fps, the rest at 20 fps (timestamps as given)
    _encode(add("vfr.mp4"), 60, SIZE, "60", X264 + ["-g", "25", "-fps_mode", "vfr"],
            filters="setpts='(if(lt(N,30),N,30+(N-30)*3))/60/TB'")
    _encode(add("h264_720p.mp4"), 12, (1280, 720), "30", X264 + ["-g", "12"])
    # the layout as downloaded: a phone's rotation metadata (ffmpeg 5.1 writes rotate=90 as a display
    # matrix that turns the picture 90 degrees counter-clockwise, as ffmpeg and torchcodec show it)
    _encode(out / "upright.mp4", 40, SIZE, "30", X264 + ["-g", "25"])
    _ffmpeg("-i", str(out / "upright.mp4"), "-c", "copy", "-metadata:s:v:0", "rotate=90",
            str(add("rotated90.mp4", rotation=90)))
    # an edit-list cut from a longer download, as Kinetics clips are cut from YouTube videos
    _encode(out / "long.mp4", 240, SIZE, "30", X264 + ["-g", "90"], extra=["-movflags", "+faststart"])
    _ffmpeg("-ss", "3.3", "-t", "2", "-i", str(out / "long.mp4"), "-c", "copy", str(add("editlist_cut.mp4")))
    # damage: 95% of a faststart mp4 (the index is complete, the last frames are missing), and noise mid-file
    data = (out / "long.mp4").read_bytes()
    add("truncated.mp4", damaged=True).write_bytes(data[: int(len(data) * 0.95)])
    noisy = bytearray(data)
    noisy[len(data) // 2: len(data) // 2 + 400] = np.random.default_rng(0).integers(0, 256, 400, np.uint8).tobytes()
    add("corrupted.mp4", damaged=True).write_bytes(bytes(noisy))
    (out / "upright.mp4").unlink()
    return files


if __name__ == "__main__":
    for f in build_corpus(sys.argv[1] if len(sys.argv) > 1 else "video_corpus").values():
        print(f.path)


def reference_frames(path: str | Path) -> list[tuple[float, int, tuple[int, ...]]]:
    """(seconds, painted index, shown shape) of every frame an in-order PyAV decode gives (damaged packets
    skipped), the picture turned back upright before its index is read."""
    import av

    out = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        for packet in container.demux(stream):
            try:
                decoded = packet.decode()
            except av.error.FFmpegError:
                continue
            for frame in decoded:
                picture = frame.to_ndarray(format="rgb24")
                k = int(round((frame.rotation or 0) / 90)) % 4
                shown = np.rot90(picture, k)
                out.append((float(frame.pts * stream.time_base), read_index(picture), shown.shape))
    return out


def painted(frames: np.ndarray, rotation: int) -> list[int]:
    """Painted indices of decoded (T, H, W, 3) frames shown turned by ``rotation`` degrees counter-clockwise."""
    return [read_index(np.rot90(f, -int(round(rotation / 90)) % 4)) for f in np.asarray(frames)]


def wrong_frames(path: str | Path, rotation: int, backend: str, seed: int = 0, views: int = 6) -> int:
    """Wrong frames (or of a wrong shape) among random sets of 8 indices decoded with ``backend``, against
    an in-order decode."""
    from gcvideo.data.decoding.decode import decode_frames

    reference = reference_frames(path)
    rng = np.random.default_rng(seed)
    wrong = 0
    for _ in range(views):
        wanted = np.sort(rng.choice(len(reference), size=min(8, len(reference)), replace=False))
        frames = decode_frames(path, lambda count: wanted, backend).numpy()
        wrong += sum(frame.shape != reference[i][2] for frame, i in zip(frames, wanted))
        wrong += sum(p != reference[i][1] for p, i in zip(painted(frames, rotation), wanted))
    return wrong


def shown_as_ffmpeg_shows(turned: str | Path, shown: np.ndarray, backend: str) -> bool:
    """Whether ``backend`` decodes the first frames of ``turned`` exactly as ``shown``."""
    from gcvideo.data.decoding.decode import decode_frames

    frames = decode_frames(turned, lambda count: np.arange(len(shown)), backend).numpy()
    return bool(np.array_equal(frames, shown))


def in_own_process(function, *args):
    """``function(*args)`` in a fresh Python process. torchcodec loads the system FFmpeg libraries, and once
    they are in a process, PyAV's bundled x264 encodes differently there (the synthetic-data tests compare
    encodes): torchcodec is tested away from the test session's process."""
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(function, args)


_BUILT: dict[str, dict[str, CorpusFile]] = {}


@pytest.fixture(scope="session")
def video_corpus(tmp_path_factory) -> dict[str, CorpusFile]:
    """The corpus, built once per test session (a few seconds)."""
    if "corpus" not in _BUILT:
        _BUILT["corpus"] = build_corpus(tmp_path_factory.mktemp("video_corpus"))
    return _BUILT["corpus"]
