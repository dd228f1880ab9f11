"""The picture every stage passes on: NV12 planes, its pts and its index in the stream."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class Frame:
    """One decoded picture in NV12.

    `y` is the full-resolution luma plane (H, W) and `uv` the half-resolution interleaved
    chroma plane (H/2, W/2, 2), both uint8. On the CPU backend they are NumPy arrays, on the
    GPU backend CuPy arrays on the session's stream; stages modify them in place.

    NV12 needs an even width and height: a picture with an odd one is carried with its last
    column or row repeated once, and `pad` says how many (columns, rows) were added.
    """

    y: Any
    uv: Any
    pts: int
    index: int = 0
    pad: tuple[int, int] = (0, 0)

    @property
    def width(self) -> int:
        return int(self.y.shape[1])

    @property
    def height(self) -> int:
        return int(self.y.shape[0])

    @property
    def picture_size(self) -> tuple[int, int]:
        """(width, height) of the picture itself, without the padding."""
        return self.width - self.pad[0], self.height - self.pad[1]

    def without_pixels(self) -> Frame:
        """Its pts, index and size, with planes that hold no pixels: the record of a frame whose pixels
        stay in the process that works on it (server/pipeline_process.py)."""
        return Frame(_no_pixels(self.y.shape), _no_pixels(self.uv.shape), self.pts, self.index, self.pad)


class _NoPixels(np.ndarray):
    """A read-only all-zero plane of a frame's shape that takes no memory and pickles as its shape."""

    def __reduce__(self) -> tuple[Any, ...]:
        return _no_pixels, (self.shape,)


def _no_pixels(shape: tuple[int, ...]) -> np.ndarray:
    return np.broadcast_to(np.uint8(0), shape).view(_NoPixels)
