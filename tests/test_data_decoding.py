"""Decoding: every backend and the per-file routing against an in-order decode of real-world files, seeking by
timestamp, the manifest file."""

import csv
import ctypes
import gc
import subprocess
from fractions import Fraction
from pathlib import Path
from types import SimpleNamespace

import av
import numpy as np
import pytest
import torch
from data_fixtures import all_frames, bad_files, needs_ffmpeg, packets, ramp_video  # noqa: F401
from video_corpus import in_own_process, painted, reference_frames, shown_as_ffmpeg_shows, video_corpus, wrong_frames  # noqa: F401

from gcvideo.data.decoding import backends
from gcvideo.data.decoding import decode as decoding
from gcvideo.data.decoding.backends import FrameNotFound, PacketTable, decode_pyav
from gcvideo.data.decoding.decode import DecodeError, decode_frames
from gcvideo.data.decoding.manifest import COLUMNS, ManifestRow, read_rows
from gcvideo.data.decoding.mp4_header import read_track_header
from gcvideo.data.decoding.probe import probe_video, torchcodec_available
from gcvideo.data.decoding.video_info import ASSUMED_FPS, FrameCount
from gcvideo.data.synthetic.kinetics_like import render_frames, write_kinetics_like_mp4
from gcvideo.data.synthetic.videos import write_mp4

CLEAN = ["h264_high", "h264_high_mkv", "h264_high_mov", "hevc_open_gop", "mpeg4_bframes", "mpeg4_bframes_avi",
         "vp9_webm", "av1", "ntsc_2997", "fps60", "vfr", "h264_720p", "rotated90", "editlist_cut"]


needs_torchcodec = pytest.mark.skipif(not torchcodec_available(), reason="torchcodec (gcvideo[exact]) not installed")


@pytest.fixture()
def ramp(tmp_path):
    path = tmp_path / "ramp.mp4"
    write_mp4(path, ramp_video(12), 8)
    return path


@pytest.fixture(scope="module")
def youtube_like(tmp_path_factory):
    """60 frames of H.264 High with 3 B-frames and a keyframe every 25 frames, plus audio."""
    path = tmp_path_factory.mktemp("kl") / "clip.mp4"
    write_kinetics_like_mp4(path, render_frames(0, 60, 48, 64), 30, gop=25, preset="veryfast")
    return path


@pytest.fixture(scope="module")
def ffmpeg_files(tmp_path_factory):
    """Files whose frames are easy to get wrong when seeking: MPEG-4 part 2 with B-frames, an edit list."""
    d = tmp_path_factory.mktemp("ff")
    run = lambda *a: subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *a], check=True)  # noqa: E731
    src = ["-f", "lavfi", "-i", "testsrc=size=64x48:rate=30"]
    run(*src, "-t", "2", "-c:v", "mpeg4", "-bf", "2", "-g", "12", "-q:v", "3", str(d / "mpeg4_bframes.avi"))
    run(*src, "-t", "8", "-c:v", "libx264", "-bf", "3", "-g", "90", str(d / "long.mp4"))
    run("-ss", "3.3", "-t", "2", "-i", str(d / "long.mp4"), "-c", "copy", str(d / "editlist_cut.mp4"))
    run(*src, "-t", "1", "-c:v", "libx264", "-g", "10", str(d / "raw.h264"))  # no timestamps at all
    return d


def windows(rng, n, k, frames=8, stride=3):
    starts = rng.integers(-5, n, k)  # some past the end or before the start: clamped like every backend
    return np.concatenate([s + stride * np.arange(frames) for s in starts])


@pytest.mark.parametrize("backend", ["decord", "pyav", "pyav_sequential", "auto"])
def test_decodes_only_selected_frames_with_clamping(ramp, backend):
    frames = decode_frames(ramp, lambda n: np.array([0, 5, 5, 11, 30]), backend)
    assert frames.shape == (5, 24, 32, 3) and frames.dtype == torch.uint8
    levels = frames.float().mean(dim=(1, 2, 3))
    np.testing.assert_allclose(levels.numpy(), [10, 110, 110, 230, 230], atol=3)  # index 30 -> last frame


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                     "fsmblks", "uordblks", "fordblks", "keepcost")]


def _native_heap_bytes() -> int:
    """Bytes that glibc's malloc has handed out and not had back (heap and mmap)."""
    try:
        mallinfo2 = ctypes.CDLL("libc.so.6").mallinfo2
    except (OSError, AttributeError):
        pytest.skip("needs glibc >= 2.33 (mallinfo2)")
    mallinfo2.restype = _MallInfo2
    info = mallinfo2()
    return info.uordblks + info.hblkhd


@pytest.mark.parametrize("backend", ["pyav", "pyav_sequential", "decord"])
def test_decoding_part_of_a_video_leaves_no_native_memory_behind(ramp, backend):
    """A DataLoader worker decodes some 60k clips an epoch. PyAV's demux generator, dropped before the end of
    the video, leaked about 160 bytes of native memory per call: a worker grew by 4.6 MiB per 20k clips."""
    select = lambda n: np.array([0, 1])  # noqa: E731  (decoding stops long before the end)
    for _ in range(100):
        decode_frames(ramp, select, backend)
    gc.collect()
    before = _native_heap_bytes()
    for _ in range(1000):
        decode_frames(ramp, select, backend)
    gc.collect()
    assert (_native_heap_bytes() - before) / 1000 < 40  # bytes per call


def test_decord_failure_falls_back_to_an_exact_backend(ramp, monkeypatch):
    """A file decord fails on is read by PyAV seeking instead: the same frames as an in-order decode."""
    calls = []

    def broken(path, select, info):
        calls.append(path)
        raise RuntimeError("decord cannot read this")

    monkeypatch.setitem(backends.DECODERS, "decord", broken)
    frames = decode_frames(ramp, lambda n: np.array([1, 2, 11]), "decord").numpy()
    assert calls == [str(ramp)]
    np.testing.assert_array_equal(frames, all_frames(ramp)[[1, 2, 11]])


def test_a_stream_without_a_rate_is_sampled_at_the_assumed_rate():
    """No average rate and fewer than two timestamps: no rate to read, so ``FrameCount`` assumes 30 fps
    (sampling by time at 30 fps then keeps every frame index); with timestamps, the rate comes from them."""
    no_rate = SimpleNamespace(average_rate=None)
    one_frame = PacketTable(np.array([0]), np.array([0]), np.array([0]), 1 / 12800)
    assert backends.average_fps(no_rate, None) == 0.0 and backends.average_fps(no_rate, one_frame) == 0.0
    count = FrameCount(12, backends.average_fps(no_rate, None))
    assert count.fps == ASSUMED_FPS == 30.0 and count.duration == pytest.approx(12 / 30)
    np.testing.assert_array_equal(count.index_at(np.arange(12) / 30.0), np.arange(12))
    stamped = PacketTable(np.array([0, 512, 1024]), np.array([0]), np.array([0]), 1 / 12800)
    assert backends.average_fps(no_rate, stamped) == pytest.approx(25.0)
    ntsc = SimpleNamespace(average_rate=Fraction(30000, 1001))
    assert backends.average_fps(ntsc, stamped) == pytest.approx(29.97, abs=1e-3)  # the stream's own rate first


@pytest.mark.parametrize("kind,reason", [("missing", "missing"), ("empty", "empty"), ("garbage", "undecodable")])
def test_bad_files_raise_decode_error(bad_files, kind, reason):  # noqa: F811
    with pytest.raises(DecodeError) as info:
        decode_frames(bad_files[kind], lambda n: np.arange(2))
    assert info.value.reason == reason


def test_unknown_backend():
    with pytest.raises(ValueError, match="valid: auto, decord, torchcodec, pyav, pyav_sequential$"):
        decode_frames("x.mp4", lambda n: np.arange(2), "opencv")


def test_corpus_is_what_it_claims(video_corpus):  # noqa: F811
    """The corpus files are made as described: the three kinds decord reads wrong really are such files."""
    cut = read_track_header(video_corpus["editlist_cut"].path)
    assert cut.cuts_media(1 / 30) and not read_track_header(video_corpus["h264_high"].path).cuts_media(1 / 30)
    assert read_track_header(video_corpus["rotated90"].path).rotation == 90
    import decord

    assert len(decord.VideoReader(str(video_corpus["editlist_cut"].path))) > len(
        reference_frames(video_corpus["editlist_cut"].path)) + 40  # decord counts the frames the cut hides
    import av

    with av.open(str(video_corpus["hevc_open_gop"].path)) as c:  # keyframes after the first are CRA (type 21)
        keyframes = [bytes(p) for p in c.demux(video=0) if p.size and p.is_keyframe]
    assert len(keyframes) > 1 and all(21 in _nal_types(data) for data in keyframes[1:])


def _nal_types(data: bytes) -> set[int]:
    """HEVC NAL unit types of an mp4 sample (4-byte length prefixes)."""
    types, at = set(), 0
    while at + 5 <= len(data):
        size = int.from_bytes(data[at: at + 4], "big")
        types.add((data[at + 4] >> 1) & 0x3F)
        at += 4 + size
    return types


def test_probe_keeps_decord_only_where_it_reads_right(video_corpus):  # noqa: F811
    chosen = {name: probe_video(f.path).backend for name, f in video_corpus.items()}
    for name in ("h264_high", "h264_high_mkv", "h264_high_mov", "vp9_webm", "ntsc_2997", "fps60", "h264_720p"):
        assert chosen[name] == "decord", name
    for name in ("editlist_cut", "hevc_open_gop", "mpeg4_bframes", "mpeg4_bframes_avi", "rotated90", "vfr"):
        assert chosen[name] != "decord", name
    assert {chosen[name] for name in chosen if chosen[name] != "decord"} == {"pyav"}


@pytest.mark.parametrize("backend", ["auto", "pyav", "pyav_sequential"])
@pytest.mark.parametrize("name", CLEAN)
def test_zero_wrong_frames_on_the_corpus(video_corpus, name, backend):  # noqa: F811
    """auto and the exact PyAV backends give the in-order decode's frames, upright."""
    if name not in video_corpus:
        pytest.skip(f"{name}: no encoder for it here")
    assert wrong_frames(video_corpus[name].path, video_corpus[name].rotation, backend) == 0


@needs_torchcodec
def test_torchcodec_zero_wrong_frames_on_the_corpus(video_corpus):  # noqa: F811
    """torchcodec exact mode is right on every corpus file (in avi it hands over: it misplaces MPEG-4 B-frames)."""
    files = [video_corpus[name] for name in CLEAN if name in video_corpus]
    wrong = in_own_process(_wrong_frames_of_all, [(str(f.path), f.rotation) for f in files], "torchcodec")
    assert wrong == [0] * len(files), dict(zip([f.name for f in files], wrong))


def _wrong_frames_of_all(files: list[tuple[str, int]], backend: str) -> list[int]:
    return [wrong_frames(path, rotation, backend) for path, rotation in files]


def test_decord_really_is_wrong_where_it_is_routed_away(video_corpus):  # noqa: F811
    """Why the routing exists: decord on its own returns wrong frames for these files."""
    for name in ("hevc_open_gop", "mpeg4_bframes", "mpeg4_bframes_avi"):
        assert wrong_frames(video_corpus[name].path, 0, "decord") > 0, name


def test_frame_count_carries_the_timeline(video_corpus):  # noqa: F811
    """What selectors receive: the decodable count and the frame times of the in-order decode."""
    for name in ("vfr", "ntsc_2997", "editlist_cut", "fps60", "mpeg4_bframes_avi"):
        reference = reference_frames(video_corpus[name].path)
        times = np.array([t for t, _, _ in reference]) - reference[0][0]
        seen = []
        decode_frames(video_corpus[name].path, lambda count: seen.append(count) or np.arange(1))
        count = seen[0]
        assert int(count) == len(reference), name
        middles = (times[:-1] + times[1:]) / 2  # away from frame boundaries (timestamps are rounded)
        assert (count.index_at(middles) == np.arange(len(middles))).all(), name


def test_pyav_seeks_instead_of_decoding_from_the_start(video_corpus, monkeypatch):  # noqa: F811
    """The CPU proxy of a flat cost: frames decoded (and output) to reach a frame near the end of an 8 s,
    GOP-90 video: a GOP at most when seeking, all of them from the start."""
    calls = {"n": 0}
    real = backends.decoded_frames

    def counting(container, stream, keep=None):
        for frame in real(container, stream, keep):
            calls["n"] += 1
            yield frame

    monkeypatch.setattr(backends, "decoded_frames", counting)
    path = video_corpus["truncated"].path.with_name("long.mp4")
    costs = {}
    for backend in ("pyav", "pyav_sequential"):
        for where in (5, 230):
            calls["n"] = 0
            frames = decode_frames(path, lambda count: np.array([where]), backend)
            assert painted(frames.numpy(), 0) == [where]
            costs[backend, where] = calls["n"]
    assert costs["pyav", 230] <= 90 + 8 and costs["pyav", 5] <= 8  # from the keyframe at 180: one GOP at most
    assert costs["pyav_sequential", 230] > 230


def test_frame_count_is_an_int_for_selectors_that_only_count():
    count = FrameCount(10, 25.0)
    assert count == 10 and count - 3 == 7 and list(np.arange(count)) == list(range(10))
    assert count.duration == pytest.approx(0.4)


@pytest.fixture(scope="module")
def square_rotated(tmp_path_factory) -> tuple[Path, np.ndarray]:
    """A square H.264 video tagged "rotate 90", and its first 3 frames as ffmpeg's player shows them."""
    folder = tmp_path_factory.mktemp("rotated")
    plain, turned = folder / "square.mp4", folder / "turned.mp4"
    source = "testsrc2=size=64x64:rate=30:duration=0.5"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi", "-i", source,
                    "-c:v", "libx264", "-pix_fmt", "yuv420p", str(plain)], check=True)
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(plain), "-c", "copy", "-metadata:s:v:0", "rotate=90",
                    str(turned)], check=True)
    shown = np.rot90(all_frames(plain)[:3], 1, axes=(1, 2))  # 90 degrees counter-clockwise, as a player shows
    return turned, shown


@pytest.mark.parametrize("backend", ["auto", "decord", "pyav", "pyav_sequential"])
def test_a_square_rotated_video_is_upright_on_every_backend(square_rotated, backend):
    """decord 0.6 turns square rotated pictures itself and fails on the others: it is never asked for them."""
    turned, shown = square_rotated
    assert shown_as_ffmpeg_shows(turned, shown, backend)


@needs_torchcodec
def test_a_square_rotated_video_is_upright_on_torchcodec(square_rotated):
    turned, shown = square_rotated
    assert in_own_process(shown_as_ffmpeg_shows, str(turned), shown, "torchcodec")


def test_seek_decoder_is_exact_on_youtube_like_h264(youtube_like):
    reference = all_frames(youtube_like)
    assert len(reference) == 60
    keys = [pts for pts, key in packets(youtube_like) if key]
    assert len(keys) == 3  # frames 0, 25, 50: windows cross keyframes
    rng = np.random.default_rng(0)
    for trial in range(12):
        indices = windows(rng, 60, 1 + trial % 3)
        got = decode_pyav(str(youtube_like), lambda n: indices).numpy()
        np.testing.assert_array_equal(got, reference[np.clip(indices, 0, 59)])


def test_skipping_non_reference_frames_decodes_fewer_frames(youtube_like, monkeypatch):
    decoded = {True: 0, False: 0}
    for skip in (True, False):
        codec_decode = av.codec.context.CodecContext.decode

        def counting(self, packet=None, _skip=skip):
            frames = codec_decode(self, packet)
            decoded[_skip] += len(frames)
            return frames

        monkeypatch.setattr(av.codec.context.CodecContext, "decode", counting)
        a = decode_pyav(str(youtube_like), lambda n: np.array([20, 23]), skip_unwanted=skip)
        monkeypatch.undo()
        np.testing.assert_array_equal(a.numpy(), all_frames(youtube_like)[[20, 23]])
    assert decoded[True] < decoded[False] <= 25  # from keyframe 0 to frame 23 (and one reorder delay)


@needs_ffmpeg
@pytest.mark.parametrize("name", ["mpeg4_bframes.avi", "editlist_cut.mp4"])
def test_seek_decoder_is_exact_where_decord_is_not(ffmpeg_files, name):
    path = ffmpeg_files / name
    reference = all_frames(path)
    rng = np.random.default_rng(1)
    for _ in range(6):
        indices = windows(rng, len(reference), 2, frames=4)
        got = decode_pyav(str(path), lambda n: indices).numpy()
        np.testing.assert_array_equal(got, reference[np.clip(indices, 0, len(reference) - 1)])


@needs_ffmpeg
def test_pyav_seeking_falls_back_to_decoding_from_the_start(ffmpeg_files):
    path = ffmpeg_files / "raw.h264"
    with pytest.raises(FrameNotFound, match="timestamps"):
        decode_pyav(str(path), lambda n: np.arange(2))
    frames = decoding.decode_frames(path, lambda n: np.array([0, 7]), "auto")
    np.testing.assert_array_equal(frames.numpy(), all_frames(path)[[0, 7]])


def test_manifest_header_and_a_torn_last_line(tmp_path):
    path = tmp_path / "m.csv"
    row = ManifestRow("a.mp4", "ok")
    with open(path, "w", newline="") as f:
        csv.writer(f).writerow(COLUMNS)
        csv.writer(f).writerow(row.to_csv())
        f.write("b.mp4,ok,,dec")  # an interrupted write
    assert [r["path"] for r in read_rows(path)] == ["a.mp4"]
    from gcvideo.data.decoding.manifest import ManifestWriter

    with ManifestWriter(path) as writer:
        writer.write(ManifestRow("c.mp4", "bad", "missing"))
    assert [r["path"] for r in read_rows(path)] == ["a.mp4", "c.mp4"]
