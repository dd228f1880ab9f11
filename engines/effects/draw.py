"""The `debug` overlay: face boxes, IDs, keypoints and landmarks drawn into the NV12 planes."""
from __future__ import annotations

from functools import partial

import cv2
import numpy as np

from ..vision.face import Face
from . import mesh

# Colours as (Y, Cb, Cr), BT.601 limited range.
GREEN = (145, 54, 34)
YELLOW = (210, 16, 146)
RED = (81, 90, 240)


def _chroma_draw(uv: np.ndarray, fn, colour) -> None:
    """Draws with `fn(plane, value)` into each chroma channel (OpenCV needs contiguous planes)."""
    for ch in (0, 1):
        plane = np.ascontiguousarray(uv[..., ch])
        fn(plane, colour[ch + 1])
        uv[..., ch] = plane


def _box(plane: np.ndarray, value: float, corners: tuple[int, int, int, int], thick: int, scale: int = 1) -> None:
    x0, y0, x1, y1 = (v // scale for v in corners)
    cv2.rectangle(plane, (x0, y0), (x1, y1), int(value), max(1, thick // scale))


def _dot(plane: np.ndarray, value: float, centre: tuple[int, int], radius: int) -> None:
    cv2.circle(plane, centre, radius, int(value), -1)


def draw_faces(y: np.ndarray, uv: np.ndarray, faces: list[Face]) -> None:
    for face in faces:
        x0, y0, x1, y1 = (int(round(float(v))) for v in face.box)
        thick = max(1, (x1 - x0) // 120)

        corners = (x0, y0, x1, y1)
        _box(y, GREEN[0], corners, thick)
        _chroma_draw(uv, partial(_box, corners=corners, thick=thick, scale=2), GREEN)
        label = f"{face.id} {face.score:.2f}"
        font_scale = max(0.4, (x1 - x0) / 250)
        org = (x0, max(12, y0 - 4))
        cv2.putText(y, label, org, cv2.FONT_HERSHEY_SIMPLEX, font_scale, 235, max(1, thick), cv2.LINE_AA)
        if face.landmarks is not None:
            pts = np.asarray(face.landmarks)[:, :2]
            ix = np.clip(pts[:, 0].astype(np.int32), 0, y.shape[1] - 1)
            iy = np.clip(pts[:, 1].astype(np.int32), 0, y.shape[0] - 1)
            y[iy, ix] = YELLOW[0]
            uv[iy // 2, ix // 2] = YELLOW[1:]
            for idx in (mesh.FACE_OVAL, mesh.RIGHT_EYE, mesh.LEFT_EYE, mesh.LIPS_OUTER):
                poly = np.round(pts[list(idx)]).astype(np.int32)
                cv2.polylines(y, [poly], True, YELLOW[0], 1)
        for kx, ky in np.asarray(face.keypoints).reshape(-1, 2):
            c = (int(kx), int(ky))
            cv2.circle(y, c, max(2, thick * 2), RED[0], -1)
            _chroma_draw(uv, partial(_dot, centre=(c[0] // 2, c[1] // 2), radius=max(1, thick)), RED)
