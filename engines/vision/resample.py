"""Model inputs cut straight from NV12 planes in one resample step per plane.

Only the small model-sized crop is converted from YUV to RGB; the full frame never is.
Coordinates are continuous pixel coordinates (pixel i covers [i, i+1)).
"""
from __future__ import annotations

import cv2
import numpy as np

# BT.601 limited range YUV -> RGB in [0, 1] (what H.264 SD/HD streams and OpenCV's I420 use).
_YUV2RGB = np.array([[1.164383, 0.0, 1.596027],
                     [1.164383, -0.391762, -0.812968],
                     [1.164383, 2.017232, 0.0]], np.float64) / 255.0
_YUV_OFF = np.array([16.0, 128.0, 128.0])


def _rgb_transform(scale: float, offset: float) -> np.ndarray:
    """3x4 matrix for cv2.transform: YUV uint8 -> normalised RGB (x * scale + offset)."""
    m = _YUV2RGB * scale
    t = -m @ _YUV_OFF + offset
    return np.hstack([m, t[:, None]]).astype(np.float32)


class InputMaker:
    """Turns NV12 crops into a model's NCHW float input (`rgb01 * scale + offset`)."""

    def __init__(self, size: int, scale: float = 1.0, offset: float = 0.0):
        self.size = size
        self._m = _rgb_transform(scale, offset)
        # value of a black (Y=16, U=V=128) pixel for letterbox padding; MediaPipe pads with 0 RGB
        self._yuv = np.empty((size, size, 3), np.uint8)

    def _finish(self) -> np.ndarray:
        rgb = cv2.transform(self._yuv.astype(np.float32), self._m)   # (size, size, 3)
        return np.ascontiguousarray(rgb.transpose(2, 0, 1))[None]

    def letterbox(self, y: np.ndarray, uv: np.ndarray) -> tuple[np.ndarray, tuple[float, float, float]]:
        """Whole frame scaled to fit, centred, padded with black.

        Returns the input and (scale, pad_x, pad_y): frame_x = (model_x - pad_x) / scale.
        """
        h, w = y.shape
        s = self.size
        scale = min(s / w, s / h)
        nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
        px, py = (s - nw) // 2, (s - nh) // 2
        buf = self._yuv
        buf[...] = (16, 128, 128)
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        buf[py:py + nh, px:px + nw, 0] = cv2.resize(y, (nw, nh), interpolation=interp)
        buf[py:py + nh, px:px + nw, 1:] = cv2.resize(uv, (nw, nh), interpolation=interp)
        return self._finish(), (nw / w, float(px), float(py))

    def affine(self, y: np.ndarray, uv: np.ndarray, m: np.ndarray) -> np.ndarray:
        """Crop through a 2x3 affine `m` mapping model pixel coordinates to frame coordinates
        (continuous); pixels outside the frame are black."""
        # warpAffine samples at integer (centre) coordinates: shift by half a pixel each side.
        mc = m.astype(np.float64).copy()
        mc[:, 2] += (mc[:, 0] + mc[:, 1]) * 0.5 - 0.5
        s = self.size
        flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
        ys = cv2.warpAffine(y, mc, (s, s), flags=flags, borderMode=cv2.BORDER_CONSTANT, borderValue=16)
        # chroma plane: continuous coordinates halve
        mu = m.astype(np.float64) * 0.5
        mu[:, 2] += (mu[:, 0] + mu[:, 1]) * 0.5 - 0.5
        uvs = cv2.warpAffine(uv, mu, (s, s), flags=flags, borderMode=cv2.BORDER_CONSTANT,
                             borderValue=(128, 128))
        self._yuv[:, :, 0] = ys
        self._yuv[:, :, 1:] = uvs
        return self._finish()


def bgr_to_nv12(img: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """BGR image -> (y, uv) NV12 planes (cropped to even size). For tests and calibration."""
    h, w = img.shape[:2]
    img = img[: h - h % 2, : w - w % 2]
    h, w = img.shape[:2]
    i420 = cv2.cvtColor(img, cv2.COLOR_BGR2YUV_I420)
    y = np.ascontiguousarray(i420[:h])
    flat = i420.ravel()
    q = (h // 2) * (w // 2)
    u = flat[h * w: h * w + q].reshape(h // 2, w // 2)
    v = flat[h * w + q: h * w + 2 * q].reshape(h // 2, w // 2)
    return y, np.ascontiguousarray(np.stack([u, v], axis=-1))


def nv12_to_bgr(y: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """Full-frame conversion, for tests and debugging only (the pipeline never does this)."""
    h, w = y.shape
    return cv2.cvtColor(np.vstack([y, uv.reshape(h // 2, w)]), cv2.COLOR_YUV2BGR_NV12)
