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
"""
from __future__ import annotations

import math

import cv2
import numpy as np

from . import mesh
from .filters import gaussian_blur, smoothstep

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
        p = self.pts[list(idx)] - (self.x0 + 0.5, self.y0 + 0.5)
        return np.round(p * 16.0).astype(np.int32)

    def fill(self, *polys) -> np.ndarray:
        out = np.zeros(self.shape, np.uint8)
        cv2.fillPoly(out, [self._poly(p) for p in polys], 1, lineType=cv2.LINE_8, shift=4)
        return out.astype(np.float32)

    @property
    def feather_sigma(self) -> float:
        return max(1.0, FEATHER * self.size)

    # --- masks --------------------------------------------------------------------------------

    def geometry(self) -> tuple[np.ndarray, np.ndarray]:
        """(oval, geometry) at luma resolution: the feathered face oval, and the oval minus the features."""
        if "geometry" not in self._cache:
            both = np.dstack(
                [
                    self.fill(mesh.FACE_OVAL),
                    self.fill(
                        mesh.RIGHT_EYE, mesh.LEFT_EYE, mesh.RIGHT_BROW, mesh.LEFT_BROW,
                        mesh.LIPS_OUTER, mesh.NOSTRILS,
                    ),
                ]
            )
            both = gaussian_blur(both, self.feather_sigma)
            oval = both[..., 0]
            features = np.minimum(1.0, 2.0 * both[..., 1])
            self._cache["oval"] = oval
            self._cache["geometry"] = oval * (1.0 - features)
        return self._cache["oval"], self._cache["geometry"]

    def reference_chroma(self, uv_roi: np.ndarray) -> np.ndarray:
        """Mean (Cb, Cr) over two discs of radius CHEEK_DISC * size centred on the cheek landmarks."""
        xs, ys = self.chroma_grid()
        r2 = (CHEEK_DISC * self.size) ** 2
        sel = np.zeros(uv_roi.shape[:2], bool)
        for i in (mesh.RIGHT_CHEEK, mesh.LEFT_CHEEK):
            c = self.pts[i]
            sel |= (xs - c[0]) ** 2 + (ys - c[1]) ** 2 <= r2
        if not sel.any():
            return np.array([110.0, 150.0], np.float32)
        return uv_roi[sel].astype(np.float32).mean(axis=0)

    def skin_chroma(self, uv_roi: np.ndarray) -> np.ndarray:
        """Chroma skin likelihood at chroma resolution: 1 near the reference chroma, 0 far from it."""
        if "skin_chroma" not in self._cache:
            ref = self.reference_chroma(uv_roi)
            d = uv_roi.astype(np.float32) - ref
            dist = np.sqrt(d[..., 0] * d[..., 0] + d[..., 1] * d[..., 1])
            self._cache["skin_chroma"] = 1.0 - smoothstep(SKIN_T0, SKIN_T1, dist)
        return self._cache["skin_chroma"]

    def skin(self, uv_roi: np.ndarray) -> np.ndarray:
        """Skin mask at luma resolution (geometry times the chroma test of the co-sited chroma pixel)."""
        if "skin" not in self._cache:
            _, geometry = self.geometry()
            c = self.skin_chroma(uv_roi)
            hc, wc = c.shape
            # each chroma value repeated over its 2x2 luma block (same values as np.repeat on both axes)
            self._cache["skin"] = (geometry.reshape(hc, 2, wc, 2) * c[:, None, :, None]).reshape(geometry.shape)
        return self._cache["skin"]

    def skin_c(self, uv_roi: np.ndarray) -> np.ndarray:
        """Skin mask at chroma resolution: the 2x2 mean of the luma-resolution geometry times the chroma test."""
        return down2(self.geometry()[1]) * self.skin_chroma(uv_roi)

    def lips_c(self) -> np.ndarray:
        """Soft lip mask at chroma resolution: outer lip contour minus the mouth opening."""
        if "lips_c" not in self._cache:
            m = np.clip(self.fill(mesh.LIPS_OUTER) - self.fill(mesh.LIPS_INNER), 0.0, 1.0)
            width = float(np.linalg.norm(self.pts[61] - self.pts[291]))
            m = gaussian_blur(m, max(1.0, 0.03 * width))
            self._cache["lips_c"] = down2(m)
        return self._cache["lips_c"]

    def cheeks_c(self) -> np.ndarray:
        """Blush weight at chroma resolution: (1 - (d/R)^2)^2 inside discs of radius R around the cheeks."""
        xs, ys = self.chroma_grid()
        radius = BLUSH_RADIUS * self.size
        w = np.zeros((ys.shape[0], xs.shape[1]), np.float32)
        for i in (mesh.RIGHT_CHEEK, mesh.LEFT_CHEEK):
            c = self.pts[i]
            u = ((xs - c[0]) ** 2 + (ys - c[1]) ** 2) / (radius * radius)
            w = np.maximum(w, np.where(u < 1.0, (1.0 - u) ** 2, 0.0).astype(np.float32))
        return w


def down2(m: np.ndarray) -> np.ndarray:
    """Mean of each 2x2 block (luma-resolution mask to chroma resolution)."""
    h, w = m.shape[0] // 2 * 2, m.shape[1] // 2 * 2
    m = m[:h, :w]
    return 0.25 * (m[0::2, 0::2] + m[1::2, 0::2] + m[0::2, 1::2] + m[1::2, 1::2])
