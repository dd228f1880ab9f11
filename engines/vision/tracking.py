"""Between-frame state: One Euro smoothing and face tracks with stable IDs."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .geometry import Roi, RoiFix


class OneEuro:
    """One Euro filter (Casiez et al. 2012) on an array of values.

    Speeds are divided by `scale` (the face size in pixels) so that the same settings fit a
    small and a large face: still faces get a low cutoff (no jitter), fast motion a high one
    (little lag)."""

    def __init__(self, min_cutoff: float = 1.0, beta: float = 20.0, d_cutoff: float = 1.0):
        self.min_cutoff, self.beta, self.d_cutoff = min_cutoff, beta, d_cutoff
        self._x: np.ndarray | None = None
        self._dx: np.ndarray | None = None

    @staticmethod
    def _alpha(cutoff, dt: float):
        tau = 1.0 / (2 * math.pi * cutoff)
        return 1.0 / (1.0 + tau / dt)

    def reset(self) -> None:
        self._x = self._dx = None

    def __call__(self, x: np.ndarray, dt: float, scale: float = 1.0) -> np.ndarray:
        x = np.asarray(x, np.float64)
        if self._x is None or self._x.shape != x.shape:
            self._x, self._dx = x.copy(), np.zeros_like(x)
            return x.astype(np.float32)
        dx = (x - self._x) / dt
        a_d = self._alpha(self.d_cutoff, dt)
        self._dx = a_d * dx + (1 - a_d) * self._dx
        speed = np.abs(self._dx) / max(scale, 1e-6)
        a = self._alpha(self.min_cutoff + self.beta * speed, dt)
        self._x = a * x + (1 - a) * self._x
        return self._x.astype(np.float32)


@dataclass
class Track:
    """One face followed across frames: by its mesh (`raw` holds the landmarks) or, where the
    mesh does not confirm it, by the detector (`raw` is None, `box` and `keypoints` from it)."""

    id: int
    roi: Roi                                 # where the next mesh looks
    box: np.ndarray                          # (x0, y0, x1, y1), frame pixels
    keypoints: np.ndarray                    # (6, 2), from the detector
    score: float = 0.0
    raw: np.ndarray | None = None            # the last mesh's landmarks (468, 3), before smoothing
    good_roi: Roi | None = None              # the region of the last mesh that found the face
    roi_fix: RoiFix | None = None            # applied to the regions drawn from its landmarks (tracker._update_mesh)
    measured: int = 0                        # Frame.index of the last mesh that found the face (the last
                                             # detection, for a face only the detector sees)
    kept: int = 0                            # frames since then whose mesh was skipped (a still face)
    coasting: bool = False                   # not measured in this frame, carried into it (tracker._coast)
    anchor: np.ndarray | None = None         # the face's thumbnail in frame `measured` (still-face test)
    anchor_box: np.ndarray | None = None     # where that thumbnail was taken
    filt: OneEuro = field(default_factory=OneEuro)
    box_filt: OneEuro = field(default_factory=OneEuro)
