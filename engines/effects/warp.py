"""Local geometric warps (eye enlargement, face slimming) applied to luma and chroma together.

A warp is a displacement field d(p) in continuous frame coordinates (see masks.py); the output
pixel at p takes the input value at p - d(p), sampled bilinearly. The field is evaluated at the
luma pixel centres for the Y plane and at the chroma pixel centres (then halved) for the UV plane,
so both planes move together. Every field is exactly zero outside a bounded support and smooth
(C1) at its edge, so there are no seams, and pixels outside the support keep their exact value.
"""
from __future__ import annotations

import math

import numpy as np

from . import mesh
from .masks import FaceRegion

EYE_RADIUS = 0.95  # radius of the eye warp, in eye widths (corner to corner)
EYE_AMOUNT = 0.20  # a at strength 1: magnification at the eye centre is 1 / (1 - a)
SLIM_RADIUS = 0.22  # support radius of each jaw control point, fraction of the face size
SLIM_AMOUNT = 0.05  # inward shift of the jaw contour at strength 1, fraction of the face size
# Relative shift of each jaw control point (mesh.RIGHT_JAW / LEFT_JAW order, ear to chin).
SLIM_PROFILE = (0.45, 0.75, 1.0, 1.0, 0.9, 0.65, 0.4)


def eye_scale(u: np.ndarray, a: float) -> np.ndarray:
    """Radial sampling scale of the eye warp at u = r / R: 1 - a (1 - u^2)^2 inside, 1 outside."""
    u2 = np.minimum(u * u, 1.0)
    return 1.0 - a * (1.0 - u2) ** 2


def eye_gain(u_src: float, a: float) -> float:
    """How much a point at source radius u_src (in units of R) moves outward: r_out / r_src.

    Solves r_out * eye_scale(r_out) = u_src by bisection (the map is monotonic for a < 0.5).
    """
    if u_src <= 0 or a <= 0:
        return 1.0 / (1.0 - a) if u_src <= 0 else 1.0
    lo, hi = u_src, 1.0
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if mid * float(eye_scale(np.asarray(mid), a)) < u_src:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi) / u_src


def eye_geometry(pts: np.ndarray) -> list[tuple[np.ndarray, float]]:
    """(centre, radius R) of each eye: centre = mean of the corners and lid mid points."""
    out = []
    for corners, lids in ((mesh.RIGHT_EYE_CORNERS, mesh.RIGHT_EYE_LIDS), (mesh.LEFT_EYE_CORNERS, mesh.LEFT_EYE_LIDS)):
        c = pts[list(corners) + list(lids)].mean(axis=0)
        w = float(np.linalg.norm(pts[corners[0]] - pts[corners[1]]))
        out.append((c, EYE_RADIUS * w))
    return out


def _eyes(region: FaceRegion) -> list[tuple[np.ndarray, float]]:
    if region.eye_discs is None:
        region.eye_discs = eye_geometry(region.pts)
    return region.eye_discs


def disc_window(xs: np.ndarray, ys: np.ndarray, c, radius: float) -> tuple[slice, slice]:
    """Rows and columns of the grid (xs (1, W), ys (H, 1), ascending) within the square around a disc."""
    x = xs[0]
    y = ys[:, 0]
    cols = slice(int(x.searchsorted(c[0] - radius)), int(x.searchsorted(c[0] + radius, side="right")))
    rows = slice(int(y.searchsorted(c[1] - radius)), int(y.searchsorted(c[1] + radius, side="right")))
    return rows, cols


def disc_windows(xs: np.ndarray, ys: np.ndarray, centres: np.ndarray, radii) -> list[tuple[slice, slice]]:
    """disc_window for several discs (centres (K, 2), radii scalar or (K,)) with one search per bound."""
    x = xs[0]
    y = ys[:, 0]
    lo = centres - np.asarray(radii, np.float64).reshape(-1, 1)
    hi = centres + np.asarray(radii, np.float64).reshape(-1, 1)
    c0, c1 = x.searchsorted(lo[:, 0]).tolist(), x.searchsorted(hi[:, 0], side="right").tolist()
    r0, r1 = y.searchsorted(lo[:, 1]).tolist(), y.searchsorted(hi[:, 1], side="right").tolist()
    return [(slice(a, b), slice(c, d)) for a, b, c, d in zip(r0, r1, c0, c1, strict=True)]


def eyes_field(region: FaceRegion, xs: np.ndarray, ys: np.ndarray, strength: float):
    """Displacement (dx, dy) of the eye warp: d = (p - c) (1 - eye_scale(|p - c| / R)), zero beyond R."""
    a = EYE_AMOUNT * strength
    dx = np.zeros((ys.shape[0], xs.shape[1]), np.float32)
    dy = np.zeros_like(dx)
    for c, radius in _eyes(region):
        rows, cols = disc_window(xs, ys, c, radius)
        ox = xs[:, cols] - np.float32(c[0])
        oy = ys[rows] - np.float32(c[1])
        u = np.sqrt(ox * ox + oy * oy) / np.float32(radius)
        k = 1.0 - eye_scale(u, a)
        dx[rows, cols] += ox * k
        dy[rows, cols] += oy * k
    return dx, dy


def slim_vectors(pts: np.ndarray, strength: float, size: float) -> tuple[np.ndarray, np.ndarray, float]:
    """Jaw control points, their inward shift vectors (towards the face midline), the support radius."""
    top, chin = pts[mesh.FOREHEAD_TOP], pts[mesh.CHIN]
    axis = chin - top
    axis = axis / max(math.sqrt(axis.dot(axis)), 1e-6)
    centres, shifts = [], []
    for side in (mesh.RIGHT_JAW, mesh.LEFT_JAW):
        for idx, w in zip(side, SLIM_PROFILE, strict=True):
            c = pts[idx]
            rel = c - top
            perp = rel - axis * float(rel @ axis)  # from the midline out to the contour
            n = perp / max(math.sqrt(perp.dot(perp)), 1e-6)  # = np.linalg.norm(perp)
            centres.append(c)
            shifts.append(-n * (SLIM_AMOUNT * strength * w * size))
    return np.array(centres), np.array(shifts), SLIM_RADIUS * size


def slim_field(region: FaceRegion, xs: np.ndarray, ys: np.ndarray, strength: float):
    """Displacement of the slimming warp.

    Each jaw point k has weight phi_k = (1 - |p - c_k|^2 / R^2)^2 inside radius R (0 outside) and
    shift v_k towards the face midline. The field is the phi-weighted mean shift, faded by the
    coverage 1 - prod_k (1 - phi_k):  d = (1 - prod(1 - phi_k)) * sum(phi_k v_k) / sum(phi_k).
    """
    geometry = region.slim_geometry.get(strength)
    if geometry is None:
        geometry = region.slim_geometry[strength] = slim_vectors(region.pts, strength, region.size)
    centres, shifts, radius = geometry
    shape = (ys.shape[0], xs.shape[1])
    # acc[0] = sum_k phi_k, acc[1:] = sum_k phi_k v_k, each accumulated in k order
    acc = np.zeros((3,) + shape, np.float32)
    keep = np.ones(shape, np.float32)
    inv_r2 = np.float32(1.0 / (radius * radius))
    one = np.float32(1.0)
    for c, v, (rows, cols) in zip(centres, shifts, disc_windows(xs, ys, centres, radius), strict=True):
        if rows.start >= rows.stop or cols.start >= cols.stop:
            continue
        ox = xs[:, cols] - np.float32(c[0])
        oy = ys[rows] - np.float32(c[1])
        # phi = (1 - u)^2 for u < 1, else 0; max(1 - u, 0)^2 is the same number.
        t = ox * ox + oy * oy
        t *= inv_r2
        np.subtract(one, t, out=t)
        np.maximum(t, np.float32(0.0), out=t)
        phi = np.multiply(t, t, out=t)
        sub = acc[:, rows, cols]
        sub[0] += phi
        tmp = np.multiply(phi, np.float32(v[0]))
        sub[1] += tmp
        sub[2] += np.multiply(phi, np.float32(v[1]), out=tmp)
        keep[rows, cols] *= np.subtract(one, phi, out=tmp)
    sw, svx, svy = acc
    cover = np.subtract(one, keep, out=keep)
    with np.errstate(invalid="ignore", divide="ignore"):
        scale = np.divide(cover, sw, out=cover)
    scale[sw <= 0] = 0.0
    svx *= scale
    svy *= scale
    return svx, svy


def field_support(region: FaceRegion, xs: np.ndarray, ys: np.ndarray, slim: bool, eyes: bool):
    """Rows and columns of the grid holding every disc window of the chosen warps (outside it d = 0)."""
    centres, radii = [], []
    if slim:
        jaw = list(mesh.RIGHT_JAW + mesh.LEFT_JAW)
        centres.append(region.pts[jaw])
        radii += [SLIM_RADIUS * region.size] * len(jaw)
    if eyes:
        for c, radius in _eyes(region):
            centres.append(c[None])
            radii.append(radius)
    r0 = c0 = 1 << 30
    r1 = c1 = 0
    for rows, cols in disc_windows(xs, ys, np.concatenate(centres), radii):
        if rows.start >= rows.stop or cols.start >= cols.stop:
            continue
        r0, r1 = min(r0, rows.start), max(r1, rows.stop)
        c0, c1 = min(c0, cols.start), max(c1, cols.stop)
    if r0 >= r1 or c0 >= c1:
        return None
    return slice(r0, r1), slice(c0, c1)


def bilinear(plane: np.ndarray, sx: np.ndarray, sy: np.ndarray) -> np.ndarray:
    """Bilinear sample of `plane` (H, W) or (H, W, C) at pixel-index coordinates (sx, sy), edges clamped.

    x0 = floor(sx), fx = sx - x0 (likewise y); neighbours clamped into the plane;
    value = (1-fy)((1-fx) p[y0,x0] + fx p[y0,x0+1]) + fy((1-fx) p[y0+1,x0] + fx p[y0+1,x0+1]).
    """
    h, w = plane.shape[:2]
    x0 = np.floor(sx)
    y0 = np.floor(sy)
    fx = np.subtract(sx, x0, dtype=np.float32)
    fy = np.subtract(sy, y0, dtype=np.float32)
    x0 = x0.astype(np.int32)
    y0 = y0.astype(np.int32)
    xa = np.minimum(np.maximum(x0, 0), w - 1)
    xb = np.minimum(np.maximum(x0 + 1, 0), w - 1)
    ya = np.minimum(np.maximum(y0, 0), h - 1)
    yb = np.minimum(np.maximum(y0 + 1, 0), h - 1)
    gx = 1 - fx
    gy = 1 - fy
    if plane.dtype == np.uint8 and _gather_ok(plane):
        # Same values as p[ya, xa] etc., gathered by flat index (2-channel planes as uint16 pairs).
        flat = plane.reshape(h * w, -1).view(np.uint16 if plane.ndim == 3 else np.uint8).reshape(-1)
        ya *= w
        yb *= w
        corners = [flat.take(r + c) for r, c in ((ya, xa), (ya, xb), (yb, xa), (yb, xb))]
        if plane.ndim == 3:
            corners = [q.view(np.uint8).reshape(q.shape + (2,)) for q in corners]
        paa, pab, pba, pbb = corners
    else:
        p = plane.astype(np.float32, copy=False) if plane.dtype != np.uint8 else plane
        paa, pab, pba, pbb = p[ya, xa], p[ya, xb], p[yb, xa], p[yb, xb]
    if plane.ndim == 3:
        fx, fy, gx, gy = fx[..., None], fy[..., None], gx[..., None], gy[..., None]
    top = gx * paa
    top += fx * pab
    bot = gx * pba
    bot += fx * pbb
    top *= gy
    bot *= fy
    top += bot
    return top


def _gather_ok(plane: np.ndarray) -> bool:
    return plane.flags.c_contiguous and (plane.ndim == 2 or (plane.ndim == 3 and plane.shape[2] == 2))
