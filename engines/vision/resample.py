"""Model inputs cut straight from NV12 planes in one resample step per plane.

Only the small model-sized crop is converted from YUV to RGB; the full frame never is. The crop
for the detector is made in NV12 (luma at the model's size, chroma at half of it, like the
frame), converted to 8-bit RGB by OpenCV's BT.601 limited-range NV12 conversion and scaled into
the model's float NCHW input buffer; the rotated mesh crop samples luma and chroma at every
crop pixel and converts in float (the INT8 mesh is sensitive to its input's rounding).
Coordinates are continuous pixel coordinates (pixel i covers [i, i+1)).
"""
from __future__ import annotations

import cv2
import numpy as np

_FLAGS = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
# BT.601 limited range YUV -> RGB in [0, 1] (what H.264 SD/HD streams and OpenCV's NV12 use).
_YUV2RGB = np.array([[1.164383, 0.0, 1.596027],
                     [1.164383, -0.391762, -0.812968],
                     [1.164383, 2.017232, 0.0]], np.float64) / 255.0
_YUV_OFF = np.array([16.0, 128.0, 128.0])


def _rgb_transform(scale: float, offset: float) -> np.ndarray:
    """3x4 matrix for cv2.transform: YUV -> normalised RGB (x * scale + offset)."""
    m = _YUV2RGB * scale
    t = -m @ _YUV_OFF + offset
    return np.hstack([m, t[:, None]]).astype(np.float32)


def _centre_sampling(m: np.ndarray) -> np.ndarray:
    """warpAffine samples at integer coordinates; shift a continuous-coordinate map by half a
    pixel on both sides."""
    m = m.copy()
    m[:, 2] += (m[:, 0] + m[:, 1]) * 0.5 - 0.5
    return m


class InputMaker:
    """Turns NV12 crops into a model's NCHW float input (`rgb01 * scale + offset`).

    The returned array is a buffer owned by the InputMaker: it is overwritten by the next call
    (copy it to keep it). One InputMaker per thread.
    """

    def __init__(self, size: int, scale: float = 1.0, offset: float = 0.0):
        if size % 2:
            raise ValueError("model input size must be even")
        self.size = size
        self.scale, self.offset = scale, offset
        self._k = np.float32(scale / 255.0)
        self._off = np.float32(offset)
        self._nv12 = np.empty((size * 3 // 2, size), np.uint8)
        self._y = self._nv12[:size]
        self._uv = self._nv12[size:].reshape(size // 2, size // 2, 2)
        self._rgb = np.empty((size, size, 3), np.uint8)
        self._out = np.empty((1, 3, size, size), np.float32)
        self._letterbox_key: tuple | None = None
        self._m = _rgb_transform(scale, offset)

    def _finish(self) -> np.ndarray:
        cv2.cvtColor(self._nv12, cv2.COLOR_YUV2RGB_NV12, dst=self._rgb)
        out = self._out
        np.multiply(self._rgb.transpose(2, 0, 1), self._k, out=out[0], casting="unsafe")
        if self._off:
            out += self._off
        return out

    def letterbox(self, y: np.ndarray, uv: np.ndarray) -> tuple[np.ndarray, tuple[float, float, float]]:
        """Whole frame scaled to fit, centred, padded with black.

        Returns the input and (scale, pad_x, pad_y): frame_x = (model_x - pad_x) / scale.
        """
        h, w = y.shape
        s = self.size
        key = (h, w)
        if key != self._letterbox_key:
            scale = min(s / w, s / h)
            nw, nh = max(2, round(w * scale)), max(2, round(h * scale))
            px, py = (s - nw) // 2 & ~1, (s - nh) // 2 & ~1      # even: chroma rows/columns align
            self._lb = (scale, nw, nh, px, py, nw / w)
            self._y[...] = 16
            self._uv[...] = 128
            self._letterbox_key = key
        scale, nw, nh, px, py, sx = self._lb
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        cv2.resize(y, (nw, nh), dst=self._y[py:py + nh, px:px + nw], interpolation=interp)
        cw, ch = (nw + 1) // 2, (nh + 1) // 2
        cv2.resize(uv, (cw, ch), dst=self._uv[py // 2:py // 2 + ch, px // 2:px // 2 + cw], interpolation=interp)
        return self._finish(), (sx, float(px), float(py))

    def affine(self, y: np.ndarray, uv: np.ndarray, m: np.ndarray) -> np.ndarray:
        """Crop through a 2x3 affine `m` mapping model pixel coordinates to frame coordinates
        (continuous); pixels outside the frame are black."""
        m = np.asarray(m, np.float64)
        s = self.size
        ys = cv2.warpAffine(y, _centre_sampling(m), (s, s), flags=_FLAGS,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=16)
        # chroma sampled at every crop pixel (continuous frame coordinates halve); the crop is
        # converted in float, so the mesh sees no 8-bit rounding or chroma blocks. Cb and Cr are
        # warped as two single-channel planes: OpenCV has no vector path for two-channel images
        # (one two-channel warp takes about 2.5 times as long as the split and two warps).
        mc = _centre_sampling(m * 0.5)
        us, vs = (cv2.warpAffine(c, mc, (s, s), flags=_FLAGS, borderMode=cv2.BORDER_CONSTANT, borderValue=128)
                  for c in cv2.split(uv))
        yuv = cv2.merge((ys, us, vs)).astype(np.float32)
        rgb = cv2.transform(yuv, self._m)
        self._out[0] = rgb.transpose(2, 0, 1)
        return self._out


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
