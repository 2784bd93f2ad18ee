"""Embedded synthetic image-classification dataset for the 2D variants.

Each class is a relation across the whole image, the kind of cue global context captures: a pair of
identical shapes lying on a horizontal / vertical / diagonal / anti-diagonal line far apart, among
distractors of other colours and shapes, or an image mirrored left-right / top-bottom. Written as
``DIR/{train,val}/<class>/<index>.png`` with ``DIR/classnames.txt``; a pure function of the seed.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
from PIL import Image

from gcvideo.data.synthetic.drawing import SHAPES, Canvas, cluttered_background, random_colour
from gcvideo.progress import progress_bar

IMAGE_CLASSES: tuple[str, ...] = (
    "pair horizontal", "pair vertical", "pair diagonal", "pair antidiagonal", "mirror left-right", "mirror top-bottom",
)


def render_image(label: int, seed, size: int = 64) -> np.ndarray:
    """Image (H, W, 3) uint8 of class ``label`` (an index into ``IMAGE_CLASSES``)."""
    if not 0 <= label < len(IMAGE_CLASSES):
        raise ValueError(f"label must be in [0, {len(IMAGE_CLASSES)}), got {label}")
    rng = np.random.default_rng(seed)
    canvas, s = Canvas(size, size), float(size)
    image = cluttered_background(rng, canvas, s)
    name = IMAGE_CLASSES[label]
    r = rng.uniform(0.06, 0.09) * s
    for _ in range(int(rng.integers(3, 6))):  # distractors: all different shapes/colours
        image[canvas.shape(str(rng.choice(SHAPES)), *rng.uniform(r, s - r, 2), r, rng.uniform(0, 360))] = \
            random_colour(rng, bright=True)
    if name.startswith("pair"):
        theta = {"horizontal": 0.0, "vertical": 90.0, "diagonal": -45.0, "antidiagonal": 45.0}[name.split()[1]]
        ux, uy = math.cos(math.radians(theta)), -math.sin(math.radians(theta))
        d = rng.uniform(0.45, 0.7) * (s - 2 * r) / max(abs(ux), abs(uy)) / 2
        cx = rng.uniform(r + d * abs(ux), s - r - d * abs(ux))
        cy = rng.uniform(r + d * abs(uy), s - r - d * abs(uy))
        kind, colour, angle = str(rng.choice(SHAPES)), random_colour(rng, bright=True), rng.uniform(0, 360)
        for sign in (-1, 1):
            image[canvas.shape(kind, cx + sign * d * ux, cy + sign * d * uy, r, angle)] = colour
    elif name == "mirror left-right":
        half = image.shape[1] // 2
        image[:, size - half:] = image[:, :half][:, ::-1]
    else:
        half = image.shape[0] // 2
        image[size - half:] = image[:half][::-1]
    return np.clip(image, 0, 255).astype(np.uint8)


def write_image_dataset(out: str | os.PathLike, *, classes: int = 6, train_per_class: int = 100,
                        val_per_class: int = 20, size: int = 64, seed: int = 0, progress: bool = True) -> Path:
    """Write ``out/{train,val}/<class>/<i>.png`` and ``out/classnames.txt``; returns ``out``."""
    if not 1 <= classes <= len(IMAGE_CLASSES):
        raise ValueError(f"classes must be in [1, {len(IMAGE_CLASSES)}] for images, got {classes}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    names = IMAGE_CLASSES[:classes]
    (out / "classnames.txt").write_text("".join(f"{n}\n" for n in names), encoding="utf-8")
    jobs = [(split_index, split, label, i) for split_index, (split, count) in
            enumerate((("train", train_per_class), ("val", val_per_class)))
            for label in range(classes) for i in range(count)]
    for split_index, split, label, i in progress_bar(jobs, desc="synth images", unit="image", disable=not progress):
        folder = out / split / names[label]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(render_image(label, (seed, split_index, label, i), size)).save(folder / f"{i:05d}.png")
    return out
