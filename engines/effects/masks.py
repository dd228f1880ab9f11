"""Per-face region of interest and the soft masks the effects blend with.

Coordinates: landmarks are continuous frame coordinates in which luma pixel (row i, column j)
covers [j, j+1) x [i, i+1), so its centre is (j + 0.5, i + 0.5); chroma pixel (i, j) covers
luma [2j, 2j+2) x [2i, 2i+2), centre (2j + 1, 2i + 1). A polygon covers a pixel when the pixel
centre lies inside it (OpenCV fillPoly with 4 fractional bits).

All masks are float32 in 0..1 over the face ROI. The skin mask is

    oval     = gauss(fill(FACE_OVAL), s_f)
    features = min(1, 2 * gauss(fill(eyes, brows, lips, nostrils), s_f))   # 1 inside, fades outside
    geometry = oval * (1 - features)
    chroma   = 1 - smoothstep(T0, T1, |(Cb, Cr) - reference|)              # at chroma resolution
    skin     = geometry * chroma(nearest chroma pixel)

with s_f = FEATHER * face size, and the reference chroma the mean over two small cheek discs.
Polygons and Gaussians are OpenCV's; the per-pixel steps are compiled loops (jit.py) with NumPy's
float32 arithmetic, so a face's masks cost a few calls rather than dozens of array temporaries.
"""
from __future__ import annotations

import functools
import math

import cv2
import numpy as np

from . import jit, mesh
from .filters import gaussian_blur
from .jit import down2  # mean of each 2x2 block: luma-resolution mask to chroma resolution

MARGIN = 0.30  # ROI margin around the landmarks, as a fraction of the face size
FEATHER = 0.02  # Gaussian sigma of mask edges, fraction of the face size
SKIN_T0 = 9.0  # chroma distance (code values) still counted fully as skin
SKIN_T1 = 20.0  # chroma distance beyond which nothing is skin
CHEEK_DISC = 0.06  # radius of the discs that sample the reference skin chroma, fraction of face size
BLUSH_RADIUS = 0.17  # radius of the blush discs, fraction of face size


class FaceRegion:
    """A face's ROI in the frame (even-aligned so luma and chroma ROIs coincide) and its masks."""

    def __init__(self, landmarks: np.ndarray, height: int, width: int, margin: float = MARGIN):
        self.pts = np.asarray(landmarks, dtype=np.float64)[:, :2]
        lo = self.pts.min(axis=0)
        hi = self.pts.max(axis=0)
        self.size = float(max(hi[0] - lo[0], hi[1] - lo[1], 1.0))
        m = margin * self.size
        x0 = max(0, int(math.floor((lo[0] - m) / 2)) * 2)
        y0 = max(0, int(math.floor((lo[1] - m) / 2)) * 2)
        x1 = min(width - width % 2, int(math.ceil((hi[0] + m) / 2)) * 2)
        y1 = min(height - height % 2, int(math.ceil((hi[1] + m) / 2)) * 2)
        self.x0, self.y0, self.x1, self.y1 = x0, y0, max(x1, x0), max(y1, y0)
        self._cache: dict[str, np.ndarray] = {}

    @property
    def empty(self) -> bool:
        return self.x1 - self.x0 < 4 or self.y1 - self.y0 < 4

    @property
    def luma(self) -> tuple[slice, slice]:
        return slice(self.y0, self.y1), slice(self.x0, self.x1)

    @property
    def chroma(self) -> tuple[slice, slice]:
        return slice(self.y0 // 2, self.y1 // 2), slice(self.x0 // 2, self.x1 // 2)

    @property
    def shape(self) -> tuple[int, int]:
        return self.y1 - self.y0, self.x1 - self.x0

    def luma_grid(self) -> tuple[np.ndarray, np.ndarray]:
        """Continuous frame coordinates (x, y) of the luma pixel centres of the ROI, as (1, W) and (H, 1)."""
        xs = (np.arange(self.x0, self.x1, dtype=np.float32) + 0.5)[None, :]
        ys = (np.arange(self.y0, self.y1, dtype=np.float32) + 0.5)[:, None]
        return xs, ys

    def chroma_grid(self) -> tuple[np.ndarray, np.ndarray]:
        """Continuous frame (luma) coordinates of the chroma pixel centres of the ROI."""
        xs = (np.arange(self.x0 // 2, self.x1 // 2, dtype=np.float32) * 2 + 1)[None, :]
        ys = (np.arange(self.y0 // 2, self.y1 // 2, dtype=np.float32) * 2 + 1)[:, None]
        return xs, ys

    # --- polygons -----------------------------------------------------------------------------

    def _poly(self, idx) -> np.ndarray:
        """Polygon in ROI luma pixel-index coordinates, fixed point with 4 fractional bits."""
        if "fixed" not in self._cache:  # all landmarks at once: one conversion per face, not one per polygon
            self._cache["fixed"] = np.round((self.pts - (self.x0 + 0.5, self.y0 + 0.5)) * 16.0).astype(np.int32)
        return self._cache["fixed"][_indices(tuple(idx))]

    def _draw(self, mask: np.ndarray, polys, value: int) -> np.ndarray:
        cv2.fillPoly(mask, [self._poly(p) for p in polys], value, lineType=cv2.LINE_8, shift=4)
        return mask

    def fill(self, *polys) -> np.ndarray:
        """uint8 mask over the ROI: 1 on the pixels the polygons cover, 0 elsewhere."""
        return self._draw(np.zeros(self.shape, np.uint8), polys, 1)

    @property
    def feather_sigma(self) -> float:
        return max(1.0, FEATHER * self.size)

    # --- masks --------------------------------------------------------------------------------

    def geometry(self) -> tuple[np.ndarray, np.ndarray]:
        """(oval, geometry) at luma resolution: the feathered face oval, and the oval minus the features."""
        if "geometry" not in self._cache:
            both = jit.stack_masks(
                self.fill(mesh.FACE_OVAL),
                self.fill(
                    mesh.RIGHT_EYE, mesh.LEFT_EYE, mesh.RIGHT_BROW, mesh.LEFT_BROW, mesh.LIPS_OUTER, mesh.NOSTRILS,
                ),
            )
            self._cache["oval"], self._cache["geometry"] = jit.oval_geometry(
                gaussian_blur(both, self.feather_sigma))
        return self._cache["oval"], self._cache["geometry"]

    def reference_chroma(self, uv_roi: np.ndarray) -> np.ndarray:
        """Mean (Cb, Cr) over two discs of radius CHEEK_DISC * size centred on the cheek landmarks."""
        mean, n = jit.disc_mean(uv_roi, self.x0 // 2, self.y0 // 2, self._cheeks(), (CHEEK_DISC * self.size) ** 2)
        return mean if n else np.array([110.0, 150.0], np.float32)

    def skin_chroma(self, uv_roi: np.ndarray) -> np.ndarray:
        """Chroma skin likelihood at chroma resolution: 1 near the reference chroma, 0 far from it."""
        if "skin_chroma" not in self._cache:
            self._cache["skin_chroma"] = jit.skin_chroma(
                uv_roi, self.reference_chroma(uv_roi), np.float32(SKIN_T0), np.float32(SKIN_T1 - SKIN_T0))
        return self._cache["skin_chroma"]

    def skin(self, uv_roi: np.ndarray) -> np.ndarray:
        """Skin mask at luma resolution (geometry times the chroma test of the co-sited chroma pixel)."""
        if "skin" not in self._cache:
            self._cache["skin"] = jit.skin_luma(self.geometry()[1], self.skin_chroma(uv_roi))
        return self._cache["skin"]

    def skin_c(self, uv_roi: np.ndarray) -> np.ndarray:
        """Skin mask at chroma resolution: the 2x2 mean of the luma-resolution geometry times the chroma test."""
        return down2(self.geometry()[1]) * self.skin_chroma(uv_roi)

    def lips_c(self) -> np.ndarray:
        """Soft lip mask at chroma resolution: outer lip contour minus the mouth opening."""
        if "lips_c" not in self._cache:
            # the outer contour with the opening cleared: clip(outer - inner, 0, 1)
            m = self._draw(self.fill(mesh.LIPS_OUTER), (mesh.LIPS_INNER,), 0).astype(np.float32)
            width = float(np.linalg.norm(self.pts[61] - self.pts[291]))
            m = gaussian_blur(m, max(1.0, 0.03 * width))
            self._cache["lips_c"] = down2(m)
        return self._cache["lips_c"]

    def cheeks_c(self) -> np.ndarray:
        """Blush weight at chroma resolution: (1 - (d/R)^2)^2 inside discs of radius R around the cheeks."""
        radius = BLUSH_RADIUS * self.size
        h, w = self.shape
        return jit.cheek_weights(self.x0 // 2, self.y0 // 2, h // 2, w // 2, self._cheeks(), radius * radius)

    def _cheeks(self) -> np.ndarray:
        """The cheek landmarks (right, left) as a (2, 2) float64 array."""
        return self.pts[[mesh.RIGHT_CHEEK, mesh.LEFT_CHEEK]]


@functools.cache
def _indices(idx: tuple[int, ...]) -> np.ndarray:
    """A mesh index set (a tuple of mesh.py) as an index array, converted once."""
    return np.array(idx, np.intp)
