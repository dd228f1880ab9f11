"""What the vision stage reports about one face, in frame pixel coordinates."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Face:
    """A face found in (or tracked into) a frame.

    `box` is (x0, y0, x1, y1); `keypoints` is (6, 2), in BlazeFace's order: right eye, left eye,
    nose tip, mouth, right ear, left ear; `landmarks` is the (468, 3) face mesh
    (x, y in pixels, z in the same scale as x) or None when only detection ran.
    """

    id: int
    box: np.ndarray
    score: float
    keypoints: np.ndarray
    landmarks: np.ndarray | None = None
