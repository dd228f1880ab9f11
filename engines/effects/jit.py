"""Per-pixel loops of the CPU effects, compiled by Numba: one pass per face instead of chains of
NumPy temporaries, with no C compiler needed on the host.

Each loop does the arithmetic of its CUDA kernel (kernels/*.cu) in float32, in the same order, so
the CPU reference and the GPU kernels stay one definition. Compiled once per host (Numba's cache)
and released from the GIL, so the faces and frames of several sessions run side by side.
"""
from __future__ import annotations

import numba
import numpy as np

_F0 = np.float32(0.0)
_F1 = np.float32(1.0)
_HALF = np.float32(0.5)
_TWO = np.float32(2.0)
_U8_MAX = np.float32(255.0)

# strict IEEE float32 (no fast-math): the loops over a row vectorise without reordering any sum
_jit = numba.njit(cache=True, nogil=True, fastmath=False, error_model="numpy")


@_jit
def _row_field(py, x0, step, off, slim_c, slim_v, slim_inv_r2, eye_c, eye_r, eye_a, dx, dy, acc):  # pragma: no cover
    """d(p) of warp.py (slim field plus eye fields) along one row of pixel centres p = ((x0 + x) * step + off, py),
    into dx, dy; acc: (4, w) scratch. Discs are visited in order, each over the whole row, so every pixel's
    sums have warp.cu's order; a disc that does not reach the row adds exactly nothing to it."""
    w = dx.shape[0]
    dx[:] = _F0
    dy[:] = _F0
    if slim_c.shape[0] > 0:
        sw, svx, svy, keep = acc[0], acc[1], acc[2], acc[3]
        sw[:] = _F0
        svx[:] = _F0
        svy[:] = _F0
        keep[:] = _F1
        for k in range(slim_c.shape[0]):
            oy = py - slim_c[k, 1]
            if oy * oy * slim_inv_r2 >= _F1:
                continue
            cx, vx, vy = slim_c[k, 0], slim_v[k, 0], slim_v[k, 1]
            for x in range(w):
                ox = (np.float32(x0 + x) * step + off) - cx
                u = (ox * ox + oy * oy) * slim_inv_r2
                phi = (_F1 - u) * (_F1 - u) if u < _F1 else _F0
                sw[x] += phi
                svx[x] += phi * vx
                svy[x] += phi * vy
                keep[x] *= _F1 - phi
        for x in range(w):
            scale = (_F1 - keep[x]) / sw[x] if sw[x] > _F0 else _F0
            dx[x] = svx[x] * scale
            dy[x] = svy[x] * scale
    for e in range(eye_c.shape[0]):
        oy = py - eye_c[e, 1]
        r = eye_r[e]
        if np.float32(np.sqrt(oy * oy)) / r >= _F1:
            continue
        cx = eye_c[e, 0]
        for x in range(w):
            ox = (np.float32(x0 + x) * step + off) - cx
            u = np.float32(np.sqrt(ox * ox + oy * oy)) / r
            u2 = min(u * u, _F1)
            k = _F1 - (_F1 - eye_a * (_F1 - u2) * (_F1 - u2))
            dx[x] += ox * k
            dy[x] += oy * k


@_jit
def field(chroma, x0, y0, w, h, slim_c, slim_v, slim_inv_r2, eye_c, eye_r, eye_a):  # pragma: no cover - compiled
    """(dx, dy), each (h, w), of the warp over the plane's pixels from (x0, y0): luma, or chroma when `chroma`."""
    step, off = (_TWO, _F1) if chroma else (_F1, _HALF)
    dx = np.empty((h, w), np.float32)
    dy = np.empty((h, w), np.float32)
    acc = np.empty((4, w), np.float32)
    for y in range(h):
        _row_field(np.float32(y0 + y) * step + off, x0, step, off, slim_c, slim_v, slim_inv_r2, eye_c, eye_r,
                   eye_a, dx[y], dy[y], acc)
    return dx, dy


@_jit
def warp_plane(src, dst, chroma, x0, y0, slim_c, slim_v, slim_inv_r2, eye_c, eye_r, eye_a):  # pragma: no cover
    """warp.cu's warp_plane: dst (h, w, C) gets the window of `src` (H, W, C) at (x0, y0) resampled at
    p - d(p); where d is exactly zero the pixel is copied unchanged. Returns whether any pixel moved."""
    ph, pw, chans = src.shape
    h, w = dst.shape[0], dst.shape[1]
    # pixel centre p = i * step + off; sampling index (p - d) * scale - 1/2 (scale 1 for luma: exact)
    step, off, scale = (_TWO, _F1, _HALF) if chroma else (_F1, _HALF, _F1)
    dxr = np.empty(w, np.float32)
    dyr = np.empty(w, np.float32)
    acc = np.empty((4, w), np.float32)
    moved = False
    for y in range(h):
        iy = y0 + y
        py = np.float32(iy) * step + off
        _row_field(py, x0, step, off, slim_c, slim_v, slim_inv_r2, eye_c, eye_r, eye_a, dxr, dyr, acc)
        for x in range(w):
            ix = x0 + x
            dx, dy = dxr[x], dyr[x]
            if dx == _F0 and dy == _F0:
                for c in range(chans):
                    dst[y, x, c] = src[iy, ix, c]
                continue
            moved = True
            px = np.float32(ix) * step + off
            sx = (px - dx) * scale - _HALF
            sy = (py - dy) * scale - _HALF
            fx0 = np.float32(np.floor(sx))
            fy0 = np.float32(np.floor(sy))
            fx = sx - fx0
            fy = sy - fy0
            xa = min(max(int(fx0), 0), pw - 1)
            xb = min(max(int(fx0) + 1, 0), pw - 1)
            ya = min(max(int(fy0), 0), ph - 1)
            yb = min(max(int(fy0) + 1, 0), ph - 1)
            for c in range(chans):
                top = (_F1 - fx) * np.float32(src[ya, xa, c]) + fx * np.float32(src[ya, xb, c])
                bot = (_F1 - fx) * np.float32(src[yb, xa, c]) + fx * np.float32(src[yb, xb, c])
                v = (_F1 - fy) * top + fy * bot
                dst[y, x, c] = np.uint8(min(max(np.floor(v + _HALF), _F0), _U8_MAX))
    return moved


def warm_up() -> None:
    """Compiles (or loads from Numba's cache) every loop here with the types the effects pass, so the
    first face of the first session does not wait for the compiler."""
    pts = np.array([[8.0, 8.0]], np.float32)
    params = (pts, pts, np.float32(0.01), pts, np.ones(1, np.float32), np.float32(0.1))
    for chans, chroma in ((1, 0), (2, 1)):
        plane = np.zeros((16, 16, chans), np.uint8)
        for src in (plane, plane[:, :12]):   # a whole plane, and a view into a padded one
            warp_plane(src, np.empty((4, 4, chans), np.uint8), chroma, 2, 2, *params)
    field(0, 0, 0, 4, 4, *params)
