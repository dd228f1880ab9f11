"""CPU beauty effects on NV12 frames: the reference implementation the GPU kernels are tested against.

Per frame:
  1. `denoise` (whole frame, session-wide setting) on both planes;
  2. per face with landmarks, inside the face's ROI only (masks.FaceRegion), with that face's settings
     (`settings.for_face(face.id)`):
       luma:   smooth -> whiten -> sharpen, in float32, rounded once (filters.to_u8);
       chroma: blush -> lips, in float32, rounded once;
       warps:  slim and eyes summed into one displacement field, one bilinear resample of both planes;
  3. `debug` overlay (whole frame).
Faces are processed in list order, each reading the frame as the previous face left it; faces whose
ROIs do not overlap only touch their own pixels, so they are processed side by side.
Every blend has the form out = in + weight * (effect - in), so a weight of exactly 0 (outside the
masks and warp supports) keeps the input value bit for bit.
"""
from __future__ import annotations

import numpy as np

from ..frame import Frame
from ..parallel import face_pool
from ..vision.face import Face
from .base import EffectSetting, EffectSettings
from .draw import draw_faces
from .filters import gaussian_blur, guided_filter, rgb_to_ycbcr, to_u8, tone_curve
from .jit import chroma_fx, pull, sharpen, store_u8, warp_plane
from .masks import FaceRegion
from .params import (
    BLUSH_MAX,
    CHROMA_EFFECTS,
    DENOISE_EPS_C,
    DENOISE_EPS_Y,
    FACE_EFFECTS,
    LIPS_MAX,
    LUMA_EFFECTS,
    SHARPEN_AMOUNT,
    SHARPEN_SIGMA,
    SMOOTH_EPS,
    SMOOTH_MAX,
    SMOOTH_RADIUS,
    WHITEN_BETA,
    effect_params,
)
from .warp import field_support, warp_params


class CpuEffects:
    """NumPy/OpenCV implementation of the Effects protocol; modifies frames in place."""

    def apply(self, frame: Frame, faces: list[Face], settings: EffectSettings) -> None:
        session = {e.name: e for e in settings.effects if e.strength > 0}
        if "denoise" in session:
            denoise(frame.y, frame.uv, session["denoise"].strength)
        work = face_work(frame, faces, settings)
        if len(work) > 1 and _disjoint([r for r, _ in work]):
            # Each face only reads and writes its own ROI, so the order does not matter.
            list(face_pool().map(lambda rc: apply_face(frame.y, frame.uv, rc[0], rc[1]), work))
        else:
            for region, chosen in work:
                apply_face(frame.y, frame.uv, region, chosen)
        if "debug" in session:
            draw_faces(frame.y, frame.uv, faces)


def face_work(frame: Frame, faces: list[Face], settings: EffectSettings
              ) -> list[tuple[FaceRegion, dict[str, EffectSetting]]]:
    """(region, effects by name) of each face with landmarks and at least one effect switched on."""
    work = []
    for face in faces:
        if face.landmarks is None:
            continue
        chosen = {e.name: e for e in settings.for_face(face.id) if e.strength > 0 and e.name in FACE_EFFECTS}
        region = FaceRegion(face.landmarks, frame.height, frame.width)
        if chosen and not region.empty:
            work.append((region, chosen))
    return work


def _disjoint(regions: list[FaceRegion]) -> bool:
    return all(
        a.x1 <= b.x0 or b.x1 <= a.x0 or a.y1 <= b.y0 or b.y1 <= a.y0
        for i, a in enumerate(regions) for b in regions[i + 1:]
    )


def apply_face(y: np.ndarray, uv: np.ndarray, region: FaceRegion, effects: dict[str, EffectSetting]) -> None:
    """Applies the per-face effects named in `effects` (name -> setting) inside one face's region, in place."""
    if region.empty:
        return
    ly, lx = region.luma
    cy, cx = region.chroma
    y_roi = y[ly, lx]
    uv_roi = uv[cy, cx]

    if any(n in effects for n in LUMA_EFFECTS):
        _luma(y_roi, uv_roi, region, effects)
    if any(n in effects for n in CHROMA_EFFECTS):
        _chroma(uv_roi, region, effects)
    if "slim" in effects or "eyes" in effects:
        warp_face(y, uv, region, effects)


def _luma(y_roi: np.ndarray, uv_roi: np.ndarray, region: FaceRegion, effects: dict[str, EffectSetting]) -> None:
    """smooth -> whiten -> sharpen on the face's luma in float32, rounded once into `y_roi` (a view of the plane).
    The blends are compiled loops with NumPy's float32 arithmetic (jit.py), so there are no temporaries per step."""
    out = y_roi.astype(np.float32)
    skin = region.skin(uv_roi)
    if "smooth" in effects:
        radius = max(2, int(round(SMOOTH_RADIUS * region.size)))
        q = guided_filter(out, radius, SMOOTH_EPS * SMOOTH_EPS)
        pull(out, q, skin, np.float32(effects["smooth"].strength * SMOOTH_MAX))
    if "whiten" in effects:
        pull(out, tone_curve(out, 1.0 + WHITEN_BETA * effects["whiten"].strength), skin, np.float32(1.0))
    if "sharpen" in effects:
        oval, _ = region.geometry()
        k = np.float32(effects["sharpen"].strength * SHARPEN_AMOUNT)
        sharpen(out, gaussian_blur(out, SHARPEN_SIGMA), oval, skin, k)
    store_u8(y_roi, out)


_NO_MASK = np.zeros((0, 0), np.float32)  # the masks of a chroma effect that is off (never read)
_NO_COLOUR = np.zeros(2, np.float32)


def _chroma(uv_roi: np.ndarray, region: FaceRegion, effects: dict[str, EffectSetting]) -> None:
    """blush -> lips on the face's chroma in float32, rounded once into `uv_roi` (a view of the plane) in one
    compiled pass; every mask reads `uv_roi` before that pass writes to it."""
    cheeks = skin_c = lips = _NO_MASK
    blush_k = lips_k = np.float32(0.0)  # 0: effect off
    blush_t = lips_t = _NO_COLOUR
    if "blush" in effects:
        cheeks, skin_c = region.cheeks_c(), region.skin_c(uv_roi)
        blush_k, blush_t = _pull_towards(effects["blush"], BLUSH_MAX)
    if "lips" in effects:
        lips = region.lips_c()
        lips_k, lips_t = _pull_towards(effects["lips"], LIPS_MAX)
    chroma_fx(uv_roi, cheeks, skin_c, blush_k, blush_t, lips, lips_k, lips_t)


def _pull_towards(setting: EffectSetting, most: float) -> tuple[np.float32, np.ndarray]:
    """A chroma effect's weight factor (strength * most) and target (Cb, Cr) (its colour), in float32."""
    p = effect_params(setting)
    _, cb, cr = rgb_to_ycbcr(p["r"], p["g"], p["b"])
    return np.float32(setting.strength * most), np.array([cb, cr], np.float32)


def warp_box(region: FaceRegion, effects: dict[str, EffectSetting]) -> tuple[int, int, int, int] | None:
    """(row, column, height, width) in the chroma plane of the box holding the warps' supports: found on
    the chroma grid and widened by one chroma pixel, which covers the luma pixel centres half a pixel
    outside it (the luma box is twice it); None where the warps move nothing in the ROI."""
    xs_c, ys_c = region.chroma_grid()
    support = field_support(region, xs_c, ys_c, "slim" in effects, "eyes" in effects)
    if support is None:
        return None
    sr, sc = support
    r0, r1 = max(0, sr.start - 1), min(ys_c.shape[0], sr.stop + 1)
    c0, c1 = max(0, sc.start - 1), min(xs_c.shape[1], sc.stop + 1)
    return region.y0 // 2 + r0, region.x0 // 2 + c0, r1 - r0, c1 - c0


def warp_face(y: np.ndarray, uv: np.ndarray, region: FaceRegion, effects: dict[str, EffectSetting]) -> None:
    """Resamples both planes at p - d(p) (see warp.py) on warp_box (elsewhere d = 0: no change), each
    plane read from its unmodified pixels."""
    box = warp_box(region, effects)
    if box is None:
        return
    cy0, cx0, ch, cw = box
    params = warp_params(region, effects)
    for plane, chroma, (py0, px0, h, w) in ((y[..., None], 0, (2 * cy0, 2 * cx0, 2 * ch, 2 * cw)),
                                           (uv, 1, (cy0, cx0, ch, cw))):
        out = np.empty((h, w, plane.shape[2]), np.uint8)
        if warp_plane(plane, out, chroma, px0, py0, *params):
            plane[py0:py0 + h, px0:px0 + w] = out


def denoise(y: np.ndarray, uv: np.ndarray, strength: float) -> None:
    """Spatial-only (so no ghosting on motion) edge-preserving denoise of the whole frame."""
    k = 0.25 + strength
    yf = y.astype(np.float32)
    y[...] = to_u8(guided_filter(yf, 2, (DENOISE_EPS_Y * k) ** 2))
    uvf = uv.astype(np.float32)
    for ch in (0, 1):
        uv[..., ch] = to_u8(guided_filter(np.ascontiguousarray(uvf[..., ch]), 2, (DENOISE_EPS_C * k) ** 2))
