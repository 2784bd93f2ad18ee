"""What the synthetic videos and images are drawn with: a canvas of pixel centres, shapes, colours and
a cluttered background. Everything is a function of the random generator passed in."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

SHAPES: tuple[str, ...] = ("disc", "square", "arrow")


class Canvas:
    """Pixel-centre coordinates of an (H, W) frame and the few shapes the classes draw."""

    def __init__(self, height: int, width: int) -> None:
        self.yy, self.xx = np.mgrid[0:height, 0:width].astype(np.float32) + 0.5  # (H, W) each

    def disc(self, cx: float, cy: float, r: float) -> np.ndarray:
        return (self.xx - cx) ** 2 + (self.yy - cy) ** 2 <= r * r

    def polygon(self, cx: float, cy: float, r: float, angle: float, corners: Sequence[tuple[float, float]]) -> np.ndarray:
        """Convex polygon given as (angle offset in degrees, radius fraction) corners, anticlockwise."""
        pts = [(cx + r * f * math.cos(math.radians(angle + a)), cy - r * f * math.sin(math.radians(angle + a)))
               for a, f in corners]
        mask = np.ones_like(self.xx, dtype=bool)
        for (x0, y0), (x1, y1) in zip(pts, pts[1:] + pts[:1]):
            # image y points down, so an anticlockwise polygon has all cross products <= 0
            mask &= (x1 - x0) * (self.yy - y0) - (y1 - y0) * (self.xx - x0) <= 0
        return mask

    def shape(self, kind: str, cx: float, cy: float, r: float, angle: float = 0.0) -> np.ndarray:
        if kind == "disc":
            return self.disc(cx, cy, r)
        if kind == "square":
            return self.polygon(cx, cy, r, angle, [(45, 1), (135, 1), (225, 1), (315, 1)])
        if kind == "arrow":  # a long isosceles triangle: its orientation shows the rotation
            return self.polygon(cx, cy, r, angle, [(0, 1.0), (140, 0.6), (220, 0.6)])
        raise ValueError(f"unknown shape {kind!r}; valid: disc, square, arrow")


def random_colour(rng: np.random.Generator, bright: bool) -> np.ndarray:
    """A random saturated colour (one channel damped): bright for objects, any for clutter."""
    c = rng.uniform(140, 255, 3) if bright else rng.uniform(0, 255, 3)
    c[rng.integers(3)] *= rng.uniform(0.0, 0.5)  # saturated: one channel damped
    return c.astype(np.float32)


def cluttered_background(rng: np.random.Generator, canvas: Canvas, size: float) -> np.ndarray:
    """A float (H, W, 3) frame: a dark colour gradient with a few static shapes of clutter."""
    h, w = canvas.xx.shape
    base = rng.uniform(0, 110, 3).astype(np.float32)
    gx, gy = rng.uniform(-40, 40, 2)
    frame = base + (gx * canvas.xx[..., None] / w + gy * canvas.yy[..., None] / h)
    for _ in range(int(rng.integers(3, 7))):  # static clutter
        kind = str(rng.choice(SHAPES))
        mask = canvas.shape(kind, rng.uniform(0, w), rng.uniform(0, h), rng.uniform(0.03, 0.09) * size,
                            rng.uniform(0, 360))
        frame[mask] = random_colour(rng, bright=False)
    return frame
