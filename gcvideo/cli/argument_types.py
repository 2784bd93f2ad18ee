"""Argument types the ``gcvideo`` tools share."""

from __future__ import annotations

import argparse


def frame_size(text: str) -> tuple[int, int]:
    """``"WxH"`` -> ``(W, H)``, e.g. ``340x256``; anything else is an argparse error naming the form."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must be WxH, e.g. 340x256, got {text!r}") from None
    return w, h
