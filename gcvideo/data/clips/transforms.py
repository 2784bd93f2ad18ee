"""Clip transforms of the Slow-only recipe (SlowFast arXiv 1812.03982, Sec. 4; as in GCNet's Kinetics experiments).

Train: short side jittered in [lo, hi], random crop, horizontal flip. Val: short side, centre crop.
Test: short side, one of ``crops`` crops spread along the long side. Resizing, cropping and flipping are
torchvision.transforms.v2 on uint8 video tensors (T, C, H, W), applied only to the frames of the window;
the uint8 -> float conversion and the mean/std normalisation happen once, on the crop: in the worker
(``normalize``) or, for uint8 batches, on the GPU (``normalize_batch``).

The train crop is cut before resizing (``ScaleJitterCrop``): resizing a frame to short side s and
cropping 224 equals cropping 224 / s of the short side and resizing that to 224, which resizes 2-3x
fewer pixels.
"""

from __future__ import annotations

import functools
from typing import Sequence

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

KINETICS_MEAN: tuple[float, float, float] = (0.45, 0.45, 0.45)
KINETICS_STD: tuple[float, float, float] = (0.225, 0.225, 0.225)
MODES: tuple[str, ...] = ("train", "val", "test")
OUTPUTS: tuple[str, ...] = ("float", "uint8")


def short_side_range(short_side: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(short_side, int):
        return short_side, short_side
    lo, hi = (int(s) for s in short_side)
    if not 0 < lo <= hi:
        raise ValueError(f"short side range must be 0 < lo <= hi, got {short_side}")
    return lo, hi


class ScaleJitterCrop(v2.Transform):
    """Random short side s in [lo, hi], random ``crop`` square, cut before resizing (module docstring).

    The crop's place is drawn as ``v2.RandomCrop`` draws it on the resized frame, then mapped back to
    the frame: the same distribution of scales and places as ``RandomShortestSize`` + ``RandomCrop``.
    """

    def __init__(self, short_side: tuple[int, int], crop: int) -> None:
        super().__init__()
        self.lo, self.hi = short_side_range(short_side)
        if crop > self.lo:
            raise ValueError(f"crop {crop} larger than the shortest jittered side {self.lo}")
        self.crop = crop

    def make_params(self, flat_inputs: list) -> dict:
        h, w = v2.query_size(flat_inputs)
        scale = int(torch.randint(self.lo, self.hi + 1, ())) / min(h, w)
        new_h, new_w = int(h * scale), int(w * scale)  # as RandomShortestSize rounds
        top = int(torch.randint(0, new_h - self.crop + 1, ()))
        left = int(torch.randint(0, new_w - self.crop + 1, ()))
        size = min(round(self.crop / scale), h, w)
        return {"top": min(round(top / scale), h - size), "left": min(round(left / scale), w - size), "size": size}

    def transform(self, inpt, params: dict):
        return F.resized_crop(inpt, params["top"], params["left"], params["size"], params["size"],
                              [self.crop, self.crop], antialias=True)


def spatial_transform(mode: str, short_side: int | Sequence[int], crop: int, *, flip: bool = True,
                      crop_first: bool = True) -> v2.Transform:
    """The random (train) or deterministic (val) resize-crop-flip of a uint8 video (T, C, H, W).

    ``flip=False`` for data whose classes are mirror images of each other (the synthetic "moving left" /
    "moving right", "rotating clockwise" / "anticlockwise"): a flip would turn one into the other.
    ``crop_first=False`` resizes the whole frame first (slower; the same augmentation, as pytorchvideo
    and PySlowFast order it; the baseline of ``gcvideo data bench --mode training``).
    """
    lo, hi = short_side_range(short_side)
    if mode == "train":
        if crop_first and crop <= lo:
            steps = [ScaleJitterCrop((lo, hi), crop)]
        else:  # a crop larger than the frame needs RandomCrop's padding
            steps = [v2.RandomShortestSize(list(range(lo, hi + 1)), antialias=True),
                     v2.RandomCrop(crop, pad_if_needed=True)]
        return v2.Compose(steps + ([v2.RandomHorizontalFlip()] if flip else []))
    if mode in ("val", "test"):
        return v2.Compose([v2.Resize(lo, antialias=True), v2.CenterCrop(crop)])
    raise ValueError(f"unknown mode {mode!r}; valid: {', '.join(MODES)}")


def resize_short_side(video: torch.Tensor, short_side: int) -> torch.Tensor:
    """Resize uint8 (T, C, H, W) so that its short side is ``short_side``."""
    return F.resize(tv_tensors.Video(video), [short_side], antialias=True).as_subclass(torch.Tensor)


def long_side_crop(video: torch.Tensor, crop: int, index: int, crops: int) -> torch.Tensor:
    """Crop ``index`` of ``crops`` square crops spread evenly along the long side (centre on the other)."""
    h, w = video.shape[-2:]
    if h < crop or w < crop:
        video = F.center_crop(video, [max(h, crop), max(w, crop)])  # pads with zeros
        h, w = video.shape[-2:]
    spread = lambda size: (size - crop) * index // (crops - 1) if crops > 1 else (size - crop) // 2  # noqa: E731
    top, left = ((h - crop) // 2, spread(w)) if w >= h else (spread(h), (w - crop) // 2)
    return video[..., top:top + crop, left:left + crop]


def frames_to_video(frames: torch.Tensor) -> tv_tensors.Video:
    """Decoder output uint8 (T, H, W, 3) -> torchvision video (T, 3, H, W)."""
    return tv_tensors.Video(frames.permute(0, 3, 1, 2))


def normalize(video: torch.Tensor, mean: Sequence[float] = KINETICS_MEAN,
              std: Sequence[float] = KINETICS_STD) -> torch.Tensor:
    """uint8 (T, C, H, W) -> normalised float32 (C, T, H, W), one conversion and two in-place ops."""
    x = video.as_subclass(torch.Tensor).permute(1, 0, 2, 3).contiguous().float()  # (C, T, H, W)
    m = torch.tensor(mean, dtype=torch.float32).mul_(255).view(-1, 1, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).mul_(255).view(-1, 1, 1, 1)
    return x.sub_(m).div_(s)


def to_uint8_clip(video: torch.Tensor) -> torch.Tensor:
    """uint8 (T, C, H, W) -> uint8 (C, T, H, W), contiguous: the layout of a normalised clip, 4x fewer bytes."""
    return video.as_subclass(torch.Tensor).permute(1, 0, 2, 3).contiguous()


@functools.lru_cache(maxsize=16)
def _channel_stats(mean: tuple[float, ...], std: tuple[float, ...], device: torch.device) -> tuple[torch.Tensor, ...]:
    # made once per device: building a CUDA tensor from a list waits for the GPU's queued work, every step
    m = torch.tensor(mean, dtype=torch.float32).mul_(255).view(-1, 1, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).mul_(255).view(-1, 1, 1, 1)
    return m.to(device), s.to(device)


def normalize_batch(video: torch.Tensor, mean: Sequence[float] = KINETICS_MEAN,
                    std: Sequence[float] = KINETICS_STD) -> torch.Tensor:
    """uint8 clips (..., C, T, H, W) -> normalised float32 on the same device (the same maths as ``normalize``)."""
    m, s = _channel_stats(tuple(float(v) for v in mean), tuple(float(v) for v in std), video.device)
    return video.float().sub_(m).div_(s)
