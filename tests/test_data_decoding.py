import numpy as np
import pytest
import torch

from data_fixtures import bad_files, ramp_video  # noqa: F401
from gcvideo.data import decoding
from gcvideo.data.decoding import DecodeError, count_frames, decode_frames
from gcvideo.data.synth import write_mp4


@pytest.fixture()
def ramp(tmp_path):
    path = tmp_path / "ramp.mp4"
    write_mp4(path, ramp_video(12), 8)
    return path


@pytest.mark.parametrize("backend", ["decord", "pyav"])
def test_decodes_only_selected_frames_with_clamping(ramp, backend):
    frames = decode_frames(ramp, lambda n: np.array([0, 5, 5, 11, 30]), backend)
    assert frames.shape == (5, 24, 32, 3) and frames.dtype == torch.uint8
    levels = frames.float().mean(dim=(1, 2, 3))
    np.testing.assert_allclose(levels.numpy(), [10, 110, 110, 230, 230], atol=3)  # index 30 -> last frame


def test_backends_agree_and_count(ramp):
    a = decode_frames(ramp, lambda n: np.arange(n), "decord")
    b = decode_frames(ramp, lambda n: np.arange(n), "pyav")
    assert torch.equal(a, b) and count_frames(ramp) == 12 == count_frames(ramp, "pyav")


def test_decord_failure_falls_back_to_pyav(ramp, monkeypatch):
    def broken(path, select):
        raise RuntimeError("decord cannot read this")

    monkeypatch.setitem(decoding._DECODERS, "decord", broken)
    frames = decode_frames(ramp, lambda n: np.array([1, 2]), "decord")
    assert frames.shape == (2, 24, 32, 3)


@pytest.mark.parametrize("kind,reason", [("missing", "missing"), ("empty", "empty"), ("garbage", "undecodable")])
def test_bad_files_raise_decode_error(bad_files, kind, reason):  # noqa: F811
    with pytest.raises(DecodeError) as info:
        decode_frames(bad_files[kind], lambda n: np.arange(2))
    assert info.value.reason == reason


def test_unknown_backend():
    with pytest.raises(ValueError, match="decord, pyav"):
        decode_frames("x.mp4", lambda n: np.arange(2), "opencv")
