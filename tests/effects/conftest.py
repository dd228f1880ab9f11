"""Shared fixtures of the effects tests: the shared photos as NV12 and their faces from the vision stage."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from facestream.engines.frame import Frame
from facestream.engines.vision.face import Face
from facestream.engines.vision.resample import bgr_to_nv12

from support import MEDIA, Picture

PHOTOS = ("obama-720p.jpg", "two_people.jpg", "kit_with_rose.jpg", "johnsnow_test1.jpg")


class Finder:
    """Faces of single pictures, from the project's vision stage (a fresh tracker per picture)."""

    def __init__(self):
        self._make = _vision_factory()

    def __call__(self, y: np.ndarray, uv: np.ndarray) -> list[Face]:
        faces = self._make(y, uv)
        faces = [f for f in faces if f.landmarks is not None]
        faces.sort(key=lambda f: float(np.asarray(f.landmarks)[:, 0].mean()))
        for i, f in enumerate(faces):
            f.id = i  # left to right, so tests can name faces
        return faces


def _vision_factory():
    try:
        from facestream.engines.vision.cpu import CpuVision
    except ImportError as e:
        pytest.skip(f"the vision stage is not available: {e}")

    def run(y, uv):
        # a fresh instance per picture: photos are unrelated, nothing to track between them
        v = CpuVision(detector="full", smoothing=False)
        try:
            return list(v.process(Frame(y, uv, pts=0)))
        finally:
            v.close()

    return run


@pytest.fixture(scope="session")
def find_faces() -> Finder:
    return Finder()


@pytest.fixture(scope="session")
def pictures(find_faces) -> dict[str, Picture]:
    out = {}
    for name in PHOTOS:
        bgr = cv2.imread(str(MEDIA / name))
        assert bgr is not None, f"missing test photo {name}"
        y, uv = bgr_to_nv12(bgr)
        out[name] = Picture(name, y, uv, find_faces(y, uv))
    return out


@pytest.fixture(scope="session")
def clip_frames(find_faces) -> list[Picture]:
    """Every 10th of the first 120 frames of the shared clip (640x360 H.264), with their faces."""
    import av

    out = []
    with av.open(str(MEDIA / "short_hamilton_clip.mp4")) as src:
        for i, f in enumerate(src.decode(video=0)):
            if i % 10 == 0:
                planes = f.to_ndarray(format="nv12")
                h = f.height
                y = planes[:h].copy()
                uv = planes[h:].reshape(h // 2, f.width // 2, 2).copy()
                out.append(Picture(f"clip frame {i}", y, uv, find_faces(y, uv)))
            if i >= 120:
                break
    return out
