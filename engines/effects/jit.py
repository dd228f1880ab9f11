"""Per-pixel loops of the CPU effects, compiled by Numba: one pass per face instead of chains of
NumPy temporaries, with no C compiler needed on the host.

Each loop writes the arithmetic of its CUDA kernel (kernels/*.cu) in float32, in the same order, so
the CPU reference and the GPU kernels stay one definition (the GPU may fuse a multiply and an add, as
NVRTC does by default: the kernel tests allow the code value that can cost): the warps, the masks' per-pixel steps
(masks.py), the guided filter's and tone curve's steps between OpenCV's window filters and NumPy's
log1p (filters.py), and the per-face blends (cpu.py). Constants are float32 (a bare Python float
would be float64 here), so each loop gives the same bits as the NumPy expression it stands for.
Compiled once per host (Numba's cache) and released from the GIL, so the faces and frames of several
sessions run side by side.
"""
from __future__ import annotations

import numba
import numpy as np

_F0 = np.float32(0.0)
_F1 = np.float32(1.0)
_HALF = np.float32(0.5)
_TWO = np.float32(2.0)
_U8_MAX = np.float32(255.0)
_QUARTER = np.float32(0.25)
_THREE = np.float32(3.0)
_Y_BLACK = np.float32(16.0)
_Y_RANGE = np.float32(219.0)

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


@_jit
def _u8(v):  # pragma: no cover - compiled
    """filters.to_u8 of one value: floor(v + 1/2) clamped to 0..255."""
    return np.uint8(min(max(np.floor(v + _HALF), _F0), _U8_MAX))


# --- masks (masks.py) --------------------------------------------------------------------------------


@_jit
def stack_masks(a, b):  # pragma: no cover - compiled
    """Two 0/1 uint8 masks (h, w) as the float32 channels of one (h, w, 2) image: one Gaussian pass feathers both."""
    h, w = a.shape
    out = np.empty((h, w, 2), np.float32)
    for y in range(h):
        for x in range(w):
            out[y, x, 0] = np.float32(a[y, x])
            out[y, x, 1] = np.float32(b[y, x])
    return out


@_jit
def oval_geometry(both):  # pragma: no cover - compiled
    """(oval, oval * (1 - min(1, 2 * features))) from the feathered (oval, features) channels (masks.cu's geometry)."""
    h, w = both.shape[0], both.shape[1]
    oval = np.empty((h, w), np.float32)
    geom = np.empty((h, w), np.float32)
    for y in range(h):
        for x in range(w):
            o = both[y, x, 0]
            oval[y, x] = o
            geom[y, x] = o * (_F1 - min(_F1, _TWO * both[y, x, 1]))
    return oval, geom


@_jit
def disc_mean(uv, cx0, cy0, centres, r2):  # pragma: no cover - compiled
    """(mean (Cb, Cr), count) of the chroma pixels of `uv` (the ROI from chroma pixel (cx0, cy0)) whose centres
    lie within sqrt(r2) of any of `centres` (K, 2), compared in float64 as NumPy compares the float32 grid with
    float64 landmarks. Sums of 8-bit values are exact, so the order of summation does not matter; the mean is
    the float64 quotient rounded to float32, as NumPy's float32 mean."""
    s0 = s1 = 0.0
    n = 0
    for y in range(uv.shape[0]):
        py = np.float64(2 * (cy0 + y) + 1)
        near = False  # whether a disc reaches this row at all
        for k in range(centres.shape[0]):
            near = near or (py - centres[k, 1]) * (py - centres[k, 1]) <= r2
        if not near:
            continue
        for x in range(uv.shape[1]):
            px = np.float64(2 * (cx0 + x) + 1)
            for k in range(centres.shape[0]):
                ox, oy = px - centres[k, 0], py - centres[k, 1]
                if ox * ox + oy * oy <= r2:
                    s0 += np.float64(uv[y, x, 0])
                    s1 += np.float64(uv[y, x, 1])
                    n += 1
                    break
    mean = np.zeros(2, np.float32)
    if n > 0:
        mean[0] = np.float32(s0 / n)
        mean[1] = np.float32(s1 / n)
    return mean, n


@_jit
def skin_chroma(uv, ref, t0, span):  # pragma: no cover - compiled
    """1 - smoothstep(t0, t0 + span, |(Cb, Cr) - ref|) of each chroma pixel of `uv` (masks.cu's skin_chroma)."""
    h, w = uv.shape[0], uv.shape[1]
    out = np.empty((h, w), np.float32)
    for y in range(h):
        for x in range(w):
            d0 = np.float32(uv[y, x, 0]) - ref[0]
            d1 = np.float32(uv[y, x, 1]) - ref[1]
            t = min(max((np.float32(np.sqrt(d0 * d0 + d1 * d1)) - t0) / span, _F0), _F1)
            out[y, x] = _F1 - t * t * (_THREE - _TWO * t)
    return out


@_jit
def skin_luma(geom, chroma):  # pragma: no cover - compiled
    """geom (h, w) times the chroma test of the co-sited chroma pixel (each chroma value over its 2x2 block)."""
    h, w = geom.shape
    out = np.empty((h, w), np.float32)
    for y in range(h):
        for x in range(w):
            out[y, x] = geom[y, x] * chroma[y >> 1, x >> 1]
    return out


@_jit
def down2(m):  # pragma: no cover - compiled
    """Mean of each 2x2 block, summed down the block's first column then the second (chroma.cu's down2)."""
    h, w = m.shape[0] // 2, m.shape[1] // 2
    out = np.empty((h, w), np.float32)
    for y in range(h):
        for x in range(w):
            a, b = m[2 * y, 2 * x], m[2 * y + 1, 2 * x]
            c, d = m[2 * y, 2 * x + 1], m[2 * y + 1, 2 * x + 1]
            out[y, x] = _QUARTER * (a + b + c + d)
    return out


@_jit
def cheek_weights(cx0, cy0, h, w, centres, r2):  # pragma: no cover - compiled
    """max over `centres` of (1 - u)^2 where u = |p - c|^2 / r2 < 1 (else 0), u in float64 as chroma.cu's chroma_fx,
    over the chroma pixel centres p of the (h, w) ROI from chroma pixel (cx0, cy0). A row a disc does not reach
    (oy^2 / r2 >= 1, so u >= 1 at every pixel) is skipped for that disc: the same values, fewer of them computed."""
    out = np.zeros((h, w), np.float32)
    for y in range(h):
        py = np.float64(2 * (cy0 + y) + 1)
        row = out[y]
        for k in range(centres.shape[0]):
            oy = py - centres[k, 1]
            if oy * oy / r2 >= 1.0:
                continue
            for x in range(w):
                ox = np.float64(2 * (cx0 + x) + 1) - centres[k, 0]
                u = (ox * ox + oy * oy) / r2
                row[x] = max(row[x], np.float32((1.0 - u) * (1.0 - u)) if u < 1.0 else _F0)
    return out


# --- filters (filters.py) ------------------------------------------------------------------------------


@_jit
def stack_square(i):  # pragma: no cover - compiled
    """(i, i * i) as the channels of one (h, w, 2) image: one box pass gives both window means."""
    h, w = i.shape
    out = np.empty((h, w, 2), np.float32)
    for y in range(h):
        for x in range(w):
            v = i[y, x]
            out[y, x, 0] = v
            out[y, x, 1] = v * v
    return out


@_jit
def guided_ab(mv, eps):  # pragma: no cover - compiled
    """In place, (box(i), box(i*i)) -> the guided filter's (a, b) (filters.cu's guided_ab)."""
    for y in range(mv.shape[0]):
        for x in range(mv.shape[1]):
            m = mv[y, x, 0]
            v = max(mv[y, x, 1] - m * m, _F0)
            a = v / (v + eps)
            mv[y, x, 0] = a
            mv[y, x, 1] = m - a * m


@_jit
def guided_q(ab, i):  # pragma: no cover - compiled
    """box(a) * i + box(b) from the box-filtered (a, b) channels (filters.cu's guided_q)."""
    h, w = i.shape
    q = np.empty((h, w), np.float32)
    for y in range(h):
        for x in range(w):
            q[y, x] = ab[y, x, 0] * i[y, x] + ab[y, x, 1]
    return q


@_jit
def tone_arg(luma, gain):  # pragma: no cover - compiled
    """gain * clip((luma - 16) / 219, 0, 1): the argument of the tone curve's log1p."""
    h, w = luma.shape
    out = np.empty((h, w), np.float32)
    for y in range(h):
        for x in range(w):
            out[y, x] = gain * min(max((luma[y, x] - _Y_BLACK) / _Y_RANGE, _F0), _F1)
    return out


@_jit
def tone_value(lifted, log_beta):  # pragma: no cover - compiled
    """In place, log1p(...) -> 16 + 219 * log1p(...) / log(beta): the tone curve's value."""
    for y in range(lifted.shape[0]):
        for x in range(lifted.shape[1]):
            lifted[y, x] = _Y_BLACK + _Y_RANGE * lifted[y, x] / log_beta


# --- per-face blends (cpu.py) ------------------------------------------------------------------------


@_jit
def pull(out, target, weight, k):  # pragma: no cover - compiled
    """In place, out += k * weight * (target - out) (luma.cu's smooth_blend; whiten_blend with k = 1)."""
    for y in range(out.shape[0]):
        for x in range(out.shape[1]):
            o = out[y, x]
            out[y, x] = o + k * weight[y, x] * (target[y, x] - o)


@_jit
def sharpen(out, blur, oval, skin, k):  # pragma: no cover - compiled
    """In place, out += k * oval * (1 - skin) * (out - blur) (luma.cu's sharpen_blend)."""
    for y in range(out.shape[0]):
        for x in range(out.shape[1]):
            o = out[y, x]
            out[y, x] = o + k * (oval[y, x] * (_F1 - skin[y, x])) * (o - blur[y, x])


@_jit
def store_u8(dst, src):  # pragma: no cover - compiled
    """dst (a uint8 window of a plane) = src rounded half up and clamped (filters.to_u8)."""
    for y in range(dst.shape[0]):
        for x in range(dst.shape[1]):
            dst[y, x] = _u8(src[y, x])


@_jit
def chroma_fx(uv, cheeks, skin_c, blush_k, blush_t, lips, lips_k, lips_t):  # pragma: no cover - compiled
    """chroma.cu's chroma_fx on the ROI `uv` (h, w, 2), in place: blush (weight blush_k * cheeks * skin_c towards
    blush_t) then lips (weight lips_k * lips towards lips_t), rounded once. A k of 0 switches the effect off
    (its masks are then not read)."""
    for y in range(uv.shape[0]):
        for x in range(uv.shape[1]):
            u = np.float32(uv[y, x, 0])
            v = np.float32(uv[y, x, 1])
            if blush_k > _F0:
                wt = blush_k * cheeks[y, x] * skin_c[y, x]
                u += wt * (blush_t[0] - u)
                v += wt * (blush_t[1] - v)
            if lips_k > _F0:
                wt = lips_k * lips[y, x]
                u += wt * (lips_t[0] - u)
                v += wt * (lips_t[1] - v)
            uv[y, x, 0] = _u8(u)
            uv[y, x, 1] = _u8(v)



def warm_up() -> None:
    """Compiles (or loads from Numba's cache) every loop here with the types the effects pass, so the
    first face of the first session does not wait for the compiler. Frame planes come as whole planes or
    as views into padded ones (two array layouts, two compilations of each loop that takes them)."""
    pts = np.array([[8.0, 8.0]], np.float32)
    params = (pts, pts, np.float32(0.01), pts, np.ones(1, np.float32), np.float32(0.1))
    for chans, chroma in ((1, 0), (2, 1)):
        plane = np.zeros((16, 16, chans), np.uint8)
        for src in (plane, plane[:, :12]):   # a whole plane, and a view into a padded one
            warp_plane(src, np.empty((4, 4, chans), np.uint8), chroma, 2, 2, *params)
    _warm_up_masks_and_blends()


def _warm_up_masks_and_blends() -> None:
    f32, k = np.zeros((4, 4), np.float32), np.float32(0.5)
    colour, centres = np.zeros(2, np.float32), np.zeros((2, 2), np.float64)
    box = stack_square(f32)
    guided_ab(box, k)
    guided_q(box, f32)
    lifted = tone_arg(f32, k)
    tone_value(lifted, k)
    pull(f32, lifted, f32, k)
    sharpen(f32, f32, f32, f32, k)
    mask = np.zeros((4, 4), np.uint8)
    oval_geometry(stack_masks(mask, mask))
    skin_luma(f32, down2(f32))
    cheek_weights(0, 0, 2, 2, centres, 1.0)
    # ROIs of the planes: the whole width (contiguous) or a window of it (a strided view)
    for luma, chroma in ((mask, np.zeros((4, 4, 2), np.uint8)),
                         (np.zeros((4, 8), np.uint8)[:, :4], np.zeros((4, 8, 2), np.uint8)[:, :4])):
        store_u8(luma, f32)
        disc_mean(chroma, 0, 0, centres, 1.0)
        skin_chroma(chroma, colour, k, k)
        chroma_fx(chroma, f32, f32, k, colour, f32, k, colour)
