"""Local geometric warps (eye enlargement, face slimming) applied to luma and chroma together.

A warp is a displacement field d(p) in continuous frame coordinates (see masks.py); the output
pixel at p takes the input value at p - d(p), sampled bilinearly. The field is evaluated at the
luma pixel centres for the Y plane and at the chroma pixel centres (then halved) for the UV plane,
so both planes move together. Every field is exactly zero outside a bounded support and smooth
(C1) at its edge, so there are no seams, and pixels outside the support keep their exact value.
"""
from __future__ import annotations

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
        if mid * float(eye_scale(np.float64(mid), a)) < u_src:
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


def disc_window(xs: np.ndarray, ys: np.ndarray, c, radius: float) -> tuple[slice, slice]:
    """Rows and columns of the grid (xs (1, W), ys (H, 1), ascending) within the square around a disc."""
    x = xs[0]
    y = ys[:, 0]
    cols = slice(int(np.searchsorted(x, c[0] - radius)), int(np.searchsorted(x, c[0] + radius, side="right")))
    rows = slice(int(np.searchsorted(y, c[1] - radius)), int(np.searchsorted(y, c[1] + radius, side="right")))
    return rows, cols


def eyes_field(region: FaceRegion, xs: np.ndarray, ys: np.ndarray, strength: float):
    """Displacement (dx, dy) of the eye warp: d = (p - c) (1 - eye_scale(|p - c| / R)), zero beyond R."""
    a = EYE_AMOUNT * strength
    dx = np.zeros((ys.shape[0], xs.shape[1]), np.float32)
    dy = np.zeros_like(dx)
    for c, radius in eye_geometry(region.pts):
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
    axis = axis / max(float(np.linalg.norm(axis)), 1e-6)
    centres, shifts = [], []
    for side in (mesh.RIGHT_JAW, mesh.LEFT_JAW):
        for idx, w in zip(side, SLIM_PROFILE):
            c = pts[idx]
            rel = c - top
            perp = rel - axis * float(rel @ axis)  # from the midline out to the contour
            n = perp / max(float(np.linalg.norm(perp)), 1e-6)
            centres.append(c)
            shifts.append(-n * (SLIM_AMOUNT * strength * w * size))
    return np.array(centres), np.array(shifts), SLIM_RADIUS * size


def slim_field(region: FaceRegion, xs: np.ndarray, ys: np.ndarray, strength: float):
    """Displacement of the slimming warp.

    Each jaw point k has weight phi_k = (1 - |p - c_k|^2 / R^2)^2 inside radius R (0 outside) and
    shift v_k towards the face midline. The field is the phi-weighted mean shift, faded by the
    coverage 1 - prod_k (1 - phi_k):  d = (1 - prod(1 - phi_k)) * sum(phi_k v_k) / sum(phi_k).
    """
    centres, shifts, radius = slim_vectors(region.pts, strength, region.size)
    shape = (ys.shape[0], xs.shape[1])
    sw = np.zeros(shape, np.float32)
    svx = np.zeros(shape, np.float32)
    svy = np.zeros(shape, np.float32)
    keep = np.ones(shape, np.float32)
    inv_r2 = np.float32(1.0 / (radius * radius))
    for c, v in zip(centres, shifts):
        rows, cols = disc_window(xs, ys, c, radius)
        ox = xs[:, cols] - np.float32(c[0])
        oy = ys[rows] - np.float32(c[1])
        u = (ox * ox + oy * oy) * inv_r2
        phi = np.where(u < 1.0, (1.0 - u) ** 2, 0.0).astype(np.float32)
        sw[rows, cols] += phi
        svx[rows, cols] += phi * np.float32(v[0])
        svy[rows, cols] += phi * np.float32(v[1])
        keep[rows, cols] *= 1.0 - phi
    cover = 1.0 - keep
    with np.errstate(invalid="ignore", divide="ignore"):
        scale = np.where(sw > 0, cover / sw, 0.0).astype(np.float32)
    return svx * scale, svy * scale


def bilinear(plane: np.ndarray, sx: np.ndarray, sy: np.ndarray) -> np.ndarray:
    """Bilinear sample of `plane` (H, W) or (H, W, C) at pixel-index coordinates (sx, sy), edges clamped.

    x0 = floor(sx), fx = sx - x0 (likewise y); neighbours clamped into the plane;
    value = (1-fy)((1-fx) p[y0,x0] + fx p[y0,x0+1]) + fy((1-fx) p[y0+1,x0] + fx p[y0+1,x0+1]).
    """
    h, w = plane.shape[:2]
    x0 = np.floor(sx)
    y0 = np.floor(sy)
    fx = (sx - x0).astype(np.float32)
    fy = (sy - y0).astype(np.float32)
    x0 = x0.astype(np.int32)
    y0 = y0.astype(np.int32)
    xa = np.clip(x0, 0, w - 1)
    xb = np.clip(x0 + 1, 0, w - 1)
    ya = np.clip(y0, 0, h - 1)
    yb = np.clip(y0 + 1, 0, h - 1)
    if plane.ndim == 3:
        fx = fx[..., None]
        fy = fy[..., None]
    p = plane.astype(np.float32, copy=False) if plane.dtype != np.uint8 else plane
    top = (1 - fx) * p[ya, xa] + fx * p[ya, xb]
    bot = (1 - fx) * p[yb, xa] + fx * p[yb, xb]
    return (1 - fy) * top + fy * bot
