"""GPU beauty effects: CUDA kernels working in place on the NV12 planes of a frame.

The CPU implementation (cpu.py, masks.py, filters.py, warp.py) is the reference: every kernel in
kernels/*.cu ports one of its formulas per pixel. tests/kernels runs this module with the kernel
files built for the host against the reference on real frames, and tests/gpu/test_gpu_kernels.py
does the same on a GPU (max abs difference <= 2 code values). The per-frame order is the same as
on the CPU:

  1. denoise (whole frame): self-guided filter of Y and of each chroma channel;
  2. per face with landmarks, in its ROI (masks.FaceRegion gives the same ROI and polygons):
       luma   smooth -> whiten -> sharpen on a float32 copy of the ROI, rounded once;
       chroma blush -> lips, in one kernel, rounded once;
       warps  slim + eyes, one bilinear resample of each plane from an unmodified copy;
  3. debug overlay: drawn by the CPU reference into a host copy of the frame (text rendering has
     no kernel; it is a diagnostic view, and the plan reports it).

Everything runs on the stream given to GpuEffects (the session's stream). Only the landmarks
(host NumPy, from the vision stage) and small per-face parameter arrays cross to the device.
Arrays and kernels come from a KernelRuntime: CuPy and NVRTC unless another is given.
"""
from __future__ import annotations

import numpy as np

from ..frame import Frame
from ..kernel_runtime import KernelRuntime, cupy_runtime
from ..vision.face import Face
from . import mesh, params
from .base import EffectSetting, EffectSettings
from .filters import gaussian_kernel, rgb_to_ycbcr
from .masks import BLUSH_RADIUS, CHEEK_DISC, SKIN_T0, SKIN_T1, FaceRegion
from .warp import warp_params

KERNEL_FILES = ("filters.cu", "planes.cu", "masks.cu", "luma.cu", "chroma.cu", "warp.cu")
BLOCK2 = (32, 8, 1)
BLOCK1 = (256, 1, 1)


def grid2(w: int, h: int) -> tuple[int, int, int]:
    return ((w + BLOCK2[0] - 1) // BLOCK2[0], (h + BLOCK2[1] - 1) // BLOCK2[1], 1)


def grid1(n: int) -> tuple[int, int, int]:
    return ((n + BLOCK1[0] - 1) // BLOCK1[0], 1, 1)


def _pitch(plane) -> int:
    return int(plane.strides[0])


class GpuFilters:
    """The window filters of filters.py on dense float32 device arrays, on one stream."""

    def __init__(self, stream, runtime: KernelRuntime | None = None) -> None:
        self.stream = stream
        self.rt = runtime if runtime is not None else cupy_runtime()
        self.xp = self.rt.xp

    def launch(self, file: str, kernel: str, grid, block, args) -> None:
        self.rt.function(__package__, file, kernel)(grid, block, args, stream=self.stream)

    def box(self, src, r: int, square: bool = False, out=None):
        h, w = src.shape
        with self.stream:
            tmp = self.xp.empty_like(src)
            out = self.xp.empty_like(src) if out is None else out
        dims = (np.int32(w), np.int32(h), np.int32(r))
        self.launch("filters.cu", "box_h", grid2(w, h), BLOCK2, (src, tmp) + dims + (np.int32(square),))
        self.launch("filters.cu", "box_v", grid2(w, h), BLOCK2, (tmp, out) + dims)
        return out

    def gaussian(self, src, sigma: float):
        taps = gaussian_kernel(sigma)
        r = (len(taps) - 1) // 2
        h, w = src.shape
        with self.stream:
            taps_d = self.xp.asarray(taps)
            tmp = self.xp.empty_like(src)
            out = self.xp.empty_like(src)
        dims = (np.int32(w), np.int32(h), np.int32(r))
        self.launch("filters.cu", "gauss_h", grid2(w, h), BLOCK2, (src, tmp, taps_d) + dims)
        self.launch("filters.cu", "gauss_v", grid2(w, h), BLOCK2, (tmp, out, taps_d) + dims)
        return out

    def guided(self, i, r: int, eps: float):
        n = i.size
        m = self.box(i, r)
        mm = self.box(i, r, square=True)
        with self.stream:
            a = self.xp.empty_like(i)
            b = self.xp.empty_like(i)
            q = self.xp.empty_like(i)
        self.launch("filters.cu", "guided_ab", grid1(n), BLOCK1, (m, mm, a, b, np.int32(n), np.float32(eps)))
        ma = self.box(a, r, out=m)
        mb = self.box(b, r, out=mm)
        self.launch("filters.cu", "guided_q", grid1(n), BLOCK1, (ma, mb, i, q, np.int32(n)))
        return q

    def load(self, plane, step: int, ch: int, x0: int, y0: int, w: int, h: int):
        with self.stream:
            out = self.xp.empty((h, w), np.float32)
        self.launch("planes.cu", "load_u8", grid2(w, h), BLOCK2,
                    (plane, np.int64(_pitch(plane)), np.int32(step), np.int32(ch), np.int32(x0), np.int32(y0),
                     np.int32(w), np.int32(h), out))
        return out

    def store(self, plane, step: int, ch: int, x0: int, y0: int, src) -> None:
        h, w = src.shape
        self.launch("planes.cu", "store_u8", grid2(w, h), BLOCK2,
                    (plane, np.int64(_pitch(plane)), np.int32(step), np.int32(ch), np.int32(x0), np.int32(y0),
                     np.int32(w), np.int32(h), src))


class GpuRegion:
    """Device-side masks of one face (the GPU counterpart of masks.FaceRegion's mask methods)."""

    def __init__(self, region: FaceRegion, y, uv, filters: GpuFilters) -> None:
        self.r = region
        self.y, self.uv = y, uv
        self.f = filters
        self.xp = filters.xp
        self._cache: dict[str, object] = {}

    def fill(self, *polys):
        verts = [self.r._poly(p) for p in polys]
        starts = np.cumsum([0] + [len(v) for v in verts]).astype(np.int32)
        flat = np.ascontiguousarray(np.concatenate(verts).astype(np.int32))
        h, w = self.r.shape
        with self.f.stream:
            out = self.xp.empty((h, w), np.float32)
            d_flat, d_starts = self.xp.asarray(flat), self.xp.asarray(starts)
        self.f.launch("masks.cu", "fill_polys", grid2(w, h), BLOCK2,
                      (d_flat, d_starts, np.int32(len(verts)), np.int32(w), np.int32(h), out))
        return out

    def geometry(self):
        """(oval, geometry) at luma resolution, as FaceRegion.geometry."""
        if "geometry" not in self._cache:
            sigma = self.r.feather_sigma
            oval = self.f.gaussian(self.fill(mesh.FACE_OVAL), sigma)
            features = (mesh.RIGHT_EYE, mesh.LEFT_EYE, mesh.RIGHT_BROW, mesh.LEFT_BROW, mesh.LIPS_OUTER, mesh.NOSTRILS)
            feats = self.f.gaussian(self.fill(*features), sigma)
            with self.f.stream:
                geom = self.xp.empty_like(oval)
            self.f.launch("masks.cu", "geometry", grid1(oval.size), BLOCK1, (oval, feats, geom, np.int32(oval.size)))
            self._cache["oval"], self._cache["geometry"] = oval, geom
        return self._cache["oval"], self._cache["geometry"]

    def reference_chroma(self):
        """Mean (Cb, Cr) over the two cheek discs, (110, 150) when no chroma pixel falls inside; stays on the device."""
        xp = self.xp
        r = self.r
        cy0, cx0 = r.y0 // 2, r.x0 // 2
        ch, cw = r.shape[0] // 2, r.shape[1] // 2
        with self.f.stream:
            xs = (xp.arange(cx0, cx0 + cw, dtype=np.float32) * 2 + 1)[None, :].astype(np.float64)
            ys = (xp.arange(cy0, cy0 + ch, dtype=np.float32) * 2 + 1)[:, None].astype(np.float64)
            r2 = (CHEEK_DISC * r.size) ** 2
            sel = xp.zeros((ch, cw), bool)
            for i in (mesh.RIGHT_CHEEK, mesh.LEFT_CHEEK):
                c = r.pts[i]
                sel |= (xs - float(c[0])) ** 2 + (ys - float(c[1])) ** 2 <= r2
            roi = self.uv[cy0:cy0 + ch, cx0:cx0 + cw].astype(np.float32)
            n = sel.sum().astype(np.float32)
            s = (roi * sel[..., None]).sum(axis=(0, 1))
            default = xp.asarray([110.0, 150.0], np.float32)
            return xp.where(n > 0, s / xp.maximum(n, 1), default).astype(np.float32)

    def skin_chroma(self):
        if "skin_chroma" not in self._cache:
            r = self.r
            ch, cw = r.shape[0] // 2, r.shape[1] // 2
            with self.f.stream:
                out = self.xp.empty((ch, cw), np.float32)
            self.f.launch("masks.cu", "skin_chroma", grid2(cw, ch), BLOCK2,
                          (self.uv, np.int64(_pitch(self.uv)), np.int32(r.x0 // 2), np.int32(r.y0 // 2),
                           np.int32(cw), np.int32(ch), self.reference_chroma(),
                           np.float32(SKIN_T0), np.float32(SKIN_T1), out))
            self._cache["skin_chroma"] = out
        return self._cache["skin_chroma"]

    def lips(self):
        """Blurred lip mask at luma resolution (the chroma kernel takes its 2x2 means)."""
        if "lips" not in self._cache:
            outer = self.fill(mesh.LIPS_OUTER)
            inner = self.fill(mesh.LIPS_INNER)
            with self.f.stream:
                m = self.xp.empty_like(outer)
            self.f.launch("masks.cu", "lips_mask", grid1(m.size), BLOCK1, (outer, inner, m, np.int32(m.size)))
            width = float(np.linalg.norm(self.r.pts[61] - self.r.pts[291]))
            self._cache["lips"] = self.f.gaussian(m, max(1.0, 0.03 * width))
        return self._cache["lips"]


class GpuEffects:
    """Implements the Effects protocol on device NV12 planes, in place, on `stream`."""

    def __init__(self, stream=None, runtime: KernelRuntime | None = None) -> None:
        self.rt = runtime if runtime is not None else cupy_runtime()
        self.xp = self.rt.xp
        self.stream = stream if stream is not None else self.rt.stream()
        self.filters = GpuFilters(self.stream, self.rt)
        for name in KERNEL_FILES:
            self.rt.module(__package__, name)

    def _launch(self, file: str, kernel: str, grid, block, args) -> None:
        self.filters.launch(file, kernel, grid, block, args)

    def apply(self, frame: Frame, faces: list[Face], settings: EffectSettings) -> None:
        with self.stream:
            session = {e.name: e for e in settings.effects if e.strength > 0}
            if "denoise" in session:
                self.denoise(frame.y, frame.uv, session["denoise"].strength)
            for face in faces:
                if face.landmarks is None:
                    continue
                chosen = {
                    e.name: e for e in settings.for_face(face.id) if e.strength > 0 and e.name in params.FACE_EFFECTS
                }
                if chosen:
                    self.apply_face(frame.y, frame.uv, face.landmarks, chosen)
            if "debug" in session:
                self.debug(frame, faces)

    # ------------------------------------------------------------------ whole frame
    def denoise(self, y, uv, strength: float) -> None:
        k = 0.25 + strength
        h, w = y.shape
        f = self.filters
        f.store(y, 1, 0, 0, 0, f.guided(f.load(y, 1, 0, 0, 0, w, h), 2, (params.DENOISE_EPS_Y * k) ** 2))
        ch, cw = uv.shape[:2]
        for c in (0, 1):
            f.store(uv, 2, c, 0, 0, f.guided(f.load(uv, 2, c, 0, 0, cw, ch), 2, (params.DENOISE_EPS_C * k) ** 2))

    def debug(self, frame: Frame, faces: list[Face]) -> None:
        from .draw import draw_faces

        y = self.rt.to_host(frame.y, self.stream)
        uv = self.rt.to_host(frame.uv, self.stream)
        draw_faces(y, uv, faces)
        with self.stream:
            frame.y[...] = self.xp.asarray(y)
            frame.uv[...] = self.xp.asarray(uv)

    # ------------------------------------------------------------------ per face
    def apply_face(self, y, uv, landmarks: np.ndarray, effects: dict[str, EffectSetting]) -> None:
        with self.stream:
            self._apply_face(y, uv, landmarks, effects)

    def _apply_face(self, y, uv, landmarks: np.ndarray, effects: dict[str, EffectSetting]) -> None:
        region = FaceRegion(landmarks, y.shape[0], y.shape[1])
        if region.empty:
            return
        g = GpuRegion(region, y, uv, self.filters)
        h, w = region.shape
        cw = w // 2
        luma_fx = [n for n in ("smooth", "whiten", "sharpen") if n in effects]
        if luma_fx:
            f = self.filters
            out = f.load(y, 1, 0, region.x0, region.y0, w, h)
            oval, geom = g.geometry()
            skin_c = g.skin_chroma()
            args_tail = (np.int32(w), np.int32(h), np.int32(cw))
            for name in luma_fx:
                s = effects[name].strength
                if name == "smooth":
                    radius = max(2, int(round(params.SMOOTH_RADIUS * region.size)))
                    q = f.guided(out, radius, params.SMOOTH_EPS * params.SMOOTH_EPS)
                    self._launch("luma.cu", "smooth_blend", grid2(w, h), BLOCK2,
                                 (out, q, geom, skin_c) + args_tail + (np.float32(s * params.SMOOTH_MAX),))
                elif name == "whiten":
                    self._launch("luma.cu", "whiten_blend", grid2(w, h), BLOCK2,
                                 (out, geom, skin_c) + args_tail + (np.float32(1.0 + params.WHITEN_BETA * s),))
                else:
                    blur = f.gaussian(out, params.SHARPEN_SIGMA)
                    self._launch("luma.cu", "sharpen_blend", grid2(w, h), BLOCK2,
                                 (out, blur, oval, geom, skin_c) + args_tail + (np.float32(s * params.SHARPEN_AMOUNT),))
            f.store(y, 1, 0, region.x0, region.y0, out)
        if "blush" in effects or "lips" in effects:
            self._chroma(g, uv, effects)
        if "slim" in effects or "eyes" in effects:
            self._warp(region, y, uv, effects)

    def _chroma(self, g: GpuRegion, uv, effects: dict[str, EffectSetting]) -> None:
        r = g.r
        h, w = r.shape
        ch, cw = h // 2, w // 2
        blush_k = lips_k = 0.0
        blush_t = lips_t = (np.float32(0.0), np.float32(0.0))
        c0 = c1 = np.zeros(2)
        radius = 1.0
        with self.stream:
            unused = self.xp.zeros((max(h, 2), max(w, 2)), np.float32)
        geom = skin_c = lips_b = unused
        if "blush" in effects:
            e = effects["blush"]
            p = params.effect_params(e)
            _, cb, cr = rgb_to_ycbcr(p["r"], p["g"], p["b"])
            blush_k, blush_t = e.strength * params.BLUSH_MAX, (np.float32(cb), np.float32(cr))
            _, geom = g.geometry()
            skin_c = g.skin_chroma()
            c0, c1 = r.pts[mesh.RIGHT_CHEEK], r.pts[mesh.LEFT_CHEEK]
            radius = BLUSH_RADIUS * r.size
        if "lips" in effects:
            e = effects["lips"]
            p = params.effect_params(e)
            _, cb, cr = rgb_to_ycbcr(p["r"], p["g"], p["b"])
            lips_k, lips_t = e.strength * params.LIPS_MAX, (np.float32(cb), np.float32(cr))
            lips_b = g.lips()
        self._launch(
            "chroma.cu", "chroma_fx", grid2(cw, ch), BLOCK2,
            (uv, np.int64(_pitch(uv)), np.int32(r.x0 // 2), np.int32(r.y0 // 2), np.int32(cw), np.int32(ch),
             geom, skin_c, lips_b, np.int32(w),
             np.float32(blush_k), np.float32(blush_t[0]), np.float32(blush_t[1]),
             np.float64(c0[0]), np.float64(c0[1]), np.float64(c1[0]), np.float64(c1[1]), np.float64(radius),
             np.float32(lips_k), np.float32(lips_t[0]), np.float32(lips_t[1])),
        )

    def _warp(self, region: FaceRegion, y, uv, effects: dict[str, EffectSetting]) -> None:
        slim_c, slim_v, inv_r2, eye_c, eye_r, a = warp_params(region, effects)
        nslim, neyes = len(slim_c), len(eye_c)
        # a kernel argument needs an allocation even where the loop over it is empty
        slim_c, slim_v, eye_c = (v if len(v) else np.zeros((1, 2), np.float32) for v in (slim_c, slim_v, eye_c))
        eye_r = eye_r if len(eye_r) else np.ones(1, np.float32)
        with self.stream:
            d_slim_c, d_slim_v, d_eye_c, d_eye_r = (
                self.xp.asarray(np.ascontiguousarray(v)) for v in (slim_c, slim_v, eye_c, eye_r)
            )
        field = (d_slim_c, d_slim_v, np.int32(nslim), np.float32(inv_r2),
                 d_eye_c, d_eye_r, np.int32(neyes), np.float32(a))
        h, w = region.shape
        for plane, chroma in ((y, 0), (uv, 1)):
            with self.stream:
                src = plane.copy(order="C")
            ph, pw = plane.shape[:2]
            chans = 2 if chroma else 1
            x0, y0 = (region.x0 // 2, region.y0 // 2) if chroma else (region.x0, region.y0)
            rw, rh = (w // 2, h // 2) if chroma else (w, h)
            self._launch(
                "warp.cu", "warp_plane", grid2(rw, rh), BLOCK2,
                (src, np.int64(_pitch(src)), plane, np.int64(_pitch(plane)), np.int32(pw), np.int32(ph),
                 np.int32(chans), np.int32(chroma), np.int32(x0), np.int32(y0), np.int32(rw), np.int32(rh)) + field,
            )
