"""Pixel filters of the CPU reference, written so each has one exact definition.

Every function works on float32 arrays and documents its arithmetic (window, border rule,
rounding), so that a per-pixel GPU kernel can reproduce it to within one code value. Window filters
are OpenCV's; the per-pixel steps between them are compiled loops (jit.py) with NumPy's float32 arithmetic.
"""
from __future__ import annotations

import math

import cv2
import numpy as np

from . import jit

# Border rule of every window operation here: reflect-101 (gfedcb|abcdefgh|gfedcba), OpenCV's default.
BORDER = cv2.BORDER_REFLECT_101


def to_u8(x: np.ndarray) -> np.ndarray:
    """Rounds half up and clamps: floor(x + 0.5) clipped to 0..255."""
    t = np.add(x, np.float32(0.5) if x.dtype == np.float32 else 0.5)
    np.floor(t, out=t)
    np.maximum(t, 0, out=t)
    np.minimum(t, 255, out=t)
    return t.astype(np.uint8)


def box_mean(img: np.ndarray, r: int) -> np.ndarray:
    """Mean over the (2r+1) x (2r+1) window centred on each pixel (reflect-101 borders)."""
    k = 2 * r + 1
    return cv2.blur(img, (k, k), borderType=BORDER)


def gaussian_kernel(sigma: float) -> np.ndarray:
    """Normalised 1-D Gaussian, taps at -R..R with R = ceil(3 sigma)."""
    radius = max(1, int(math.ceil(3.0 * sigma)))
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    k = np.exp(-(x * x) / (2.0 * sigma * sigma))
    return (k / k.sum()).astype(np.float32)


def gaussian_blur(img: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian (horizontal pass, then vertical) with `gaussian_kernel(sigma)`, reflect-101."""
    k = gaussian_kernel(sigma)
    return cv2.sepFilter2D(img, cv2.CV_32F, k, k, borderType=BORDER)


def guided_filter(i: np.ndarray, r: int, eps: float) -> np.ndarray:
    """Self-guided filter (He et al. 2010) of float32 image `i` with box radius `r`, regulariser `eps`.

        m  = box(i),  v = max(box(i*i) - m*m, 0)
        a  = v / (v + eps),  b = m - a*m
        q  = box(a) * i + box(b)

    Flat areas (v << eps) become their local mean, edges (v >> eps) are kept. Each pair of box filters runs
    as one two-channel pass (the same sums as two one-channel passes); the steps between them are compiled loops.
    """
    mv = box_mean(jit.stack_square(i), r)
    jit.guided_ab(mv, np.float32(eps))
    return jit.guided_q(box_mean(mv, r), i)


def tone_curve(y: np.ndarray, beta: float) -> np.ndarray:
    """Log lift of limited-range luma: x = clip((y-16)/219, 0, 1); y' = 16 + 219 log(1+(beta-1)x)/log(beta).

    beta = 1 is the identity; larger beta lifts the mid tones and leaves black and white fixed. In float32,
    with NumPy's vectorised log1p between the compiled steps: a compiled loop's log1p is the C library's,
    whose last bit differs from NumPy's on about a third of the arguments.
    """
    if beta <= 1.0:
        return y.astype(np.float32, copy=True)
    lifted = jit.tone_arg(y, np.float32(beta - 1.0))
    np.log1p(lifted, out=lifted)
    jit.tone_value(lifted, np.float32(math.log(beta)))
    return lifted


def rgb_to_ycbcr(r: float, g: float, b: float) -> tuple[float, float, float]:
    """BT.601 limited range (the matrix of H.264 defaults and of OpenCV's YUV 4:2:0 conversions)."""
    y = 16.0 + (65.481 * r + 128.553 * g + 24.966 * b) / 255.0
    cb = 128.0 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255.0
    cr = 128.0 + (112.0 * r - 93.786 * g - 18.214 * b) / 255.0
    return y, cb, cr
