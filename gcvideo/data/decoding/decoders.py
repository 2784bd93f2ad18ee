"""The decoder names: one Enum, as pytorchvideo's ``DecoderType``, used by every option, manifest and tool.

- ``decord``: seeks by frame number; fast, but wrong on mp4 edit lists, MPEG-4 part 2 with B-frames and
  HEVC open GOPs, and it mishandles rotation (``gcvideo.data.decoding.probe`` says which files).
- ``torchcodec``: exact seeking (``seek_mode="exact"``); optional (``pip install gcvideo[exact]``) and used
  only when asked for, because it loads the system FFmpeg libraries next to the ones PyAV and decord bundle.
- ``pyav``: seeking by timestamp; exact on every file, and the cheapest per clip by measurement.
- ``pyav_sequential``: decoding from the start; right for any file, slow on long ones (files whose
  timestamps cannot be seeked on).
- ``auto``: not a backend: each file's backend from its manifest row, else ``pyav``.
"""

from __future__ import annotations

from enum import Enum


class Decoder(str, Enum):
    """A decoder choice. The backends' order is their code in the manifest's numpy columns."""

    DECORD = "decord"
    TORCHCODEC = "torchcodec"
    PYAV = "pyav"
    PYAV_SEQUENTIAL = "pyav_sequential"
    AUTO = "auto"

    def __str__(self) -> str:
        return self.value


# What reads a file (a manifest's ``backend`` column): every decoder but ``auto``.
BACKEND_NAMES: tuple[str, ...] = tuple(d.value for d in Decoder if d is not Decoder.AUTO)
# What a data option or ``--decoder`` accepts, the default first.
DECODER_NAMES: tuple[str, ...] = (Decoder.AUTO.value, *BACKEND_NAMES)
# Exact on every file, in the order a file goes to after a backend fails on it.
EXACT_FALLBACK: tuple[str, ...] = (Decoder.PYAV.value, Decoder.PYAV_SEQUENTIAL.value)
# The default when neither the option nor a manifest names a backend.
DEFAULT_BACKEND: str = Decoder.PYAV.value
# What ``gcvideo data check`` can compare with its in-order decode (decoding from the start is that decode).
CHECKABLE_BACKENDS: tuple[str, ...] = tuple(b for b in BACKEND_NAMES if b != Decoder.PYAV_SEQUENTIAL)
