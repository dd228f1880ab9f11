"""Local geometric warps (eye enlargement, face slimming) applied to luma and chroma together.

A warp is a displacement field d(p) in continuous frame coordinates (see masks.py); the output
pixel at p takes the input value at p - d(p), sampled bilinearly. The field is evaluated at the
luma pixel centres for the Y plane and at the chroma pixel centres (then halved) for the UV plane,
so both planes move together. Every field is exactly zero outside a bounded support and smooth
(C1) at its edge, so there are no seams, and pixels outside the support keep their exact value.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from . import mesh
from .base import EffectSetting
from .masks import FaceRegion

EYE_RADIUS = 0.95  # radius of the eye warp, in eye widths (corner to corner)
EYE_AMOUNT = 0.20  # a at strength 1: magnification at the eye centre is 1 / (1 - a)
SLIM_RADIUS = 0.22  # support radius of each jaw control point, fraction of the face size
SLIM_AMOUNT = 0.05  # inward shift of the jaw contour at strength 1, fraction of the face size
# Relative shift of each jaw control point (mesh.RIGHT_JAW / LEFT_JAW order, ear to chin).
SLIM_PROFILE = (0.45, 0.75, 1.0, 1.0, 0.9, 0.65, 0.4)
_JAW = np.array(mesh.RIGHT_JAW + mesh.LEFT_JAW)
_JAW_PROFILE = np.array(SLIM_PROFILE * 2)


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


def disc_windows(xs: np.ndarray, ys: np.ndarray, centres: np.ndarray, radii) -> list[tuple[slice, slice]]:
    """Rows and columns of the grid (xs (1, W), ys (H, 1), ascending) within the square around each disc
    (centres (K, 2), radii scalar or (K,)), with one search per bound."""
    x = xs[0]
    y = ys[:, 0]
    lo = centres - np.asarray(radii, np.float64).reshape(-1, 1)
    hi = centres + np.asarray(radii, np.float64).reshape(-1, 1)
    c0, c1 = x.searchsorted(lo[:, 0]).tolist(), x.searchsorted(hi[:, 0], side="right").tolist()
    r0, r1 = y.searchsorted(lo[:, 1]).tolist(), y.searchsorted(hi[:, 1], side="right").tolist()
    return [(slice(a, b), slice(c, d)) for a, b, c, d in zip(r0, r1, c0, c1, strict=True)]


def slim_vectors(pts: np.ndarray, strength: float, size: float) -> tuple[np.ndarray, np.ndarray, float]:
    """Jaw control points, their inward shift vectors (towards the face midline), the support radius."""
    top, chin = pts[mesh.FOREHEAD_TOP], pts[mesh.CHIN]
    axis = chin - top
    axis = axis / max(math.sqrt(axis.dot(axis)), 1e-6)
    centres = pts[_JAW]
    rel = centres - top
    # row by row dot products (stacked matmuls: the same arithmetic as one point's `@`, bit for bit)
    perp = rel - axis * (rel[:, None, :] @ axis[:, None])[:, 0]      # from the midline out to the contour
    n = perp / np.maximum(np.sqrt(perp[:, None, :] @ perp[:, :, None])[:, 0], 1e-6)
    shifts = -n * (SLIM_AMOUNT * strength * _JAW_PROFILE * size).astype(n.dtype)[:, None]
    return centres, shifts, SLIM_RADIUS * size


def field_support(region: FaceRegion, xs: np.ndarray, ys: np.ndarray, slim: bool, eyes: bool):
    """Rows and columns of the grid holding every disc window of the chosen warps (outside it d = 0)."""
    centres, radii = [], []
    if slim:
        jaw = list(mesh.RIGHT_JAW + mesh.LEFT_JAW)
        centres.append(region.pts[jaw])
        radii += [SLIM_RADIUS * region.size] * len(jaw)
    if eyes:
        for c, radius in eye_geometry(region.pts):
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


def warp_params(region: FaceRegion, effects: dict[str, EffectSetting]) -> tuple[Any, ...]:
    """The warp's parameters in float32, as jit.warp_plane and warp.cu take them: slim centres, shifts and
    1/R^2, eye centres, radii and amount (empty arrays for a warp that is off)."""
    slim_c = slim_v = np.zeros((0, 2), np.float32)
    inv_r2 = np.float32(0.0)
    if "slim" in effects:
        centres, shifts, radius = slim_vectors(region.pts, effects["slim"].strength, region.size)
        slim_c, slim_v = centres.astype(np.float32), shifts.astype(np.float32)
        inv_r2 = np.float32(1.0 / (radius * radius))
    eye_c = np.zeros((0, 2), np.float32)
    eye_r = np.zeros(0, np.float32)
    a = np.float32(0.0)
    if "eyes" in effects:
        discs = eye_geometry(region.pts)
        eye_c = np.array([c for c, _ in discs], np.float32)
        eye_r = np.array([r for _, r in discs], np.float32)
        a = np.float32(EYE_AMOUNT * effects["eyes"].strength)
    return slim_c, slim_v, inv_r2, eye_c, eye_r, a
