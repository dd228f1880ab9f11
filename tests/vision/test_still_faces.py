"""A still face keeps its landmarks for a frame instead of a mesh, and says so; a moving one never does."""
from __future__ import annotations

import numpy as np

from facestream.engines.frame import Frame
from facestream.engines.vision.cpu import CpuVision, thumbnail
from facestream.engines.vision.tracker import THUMB


def _run(vision: CpuVision, frames) -> list:
    return [vision.process(Frame(y=y, uv=uv, pts=i, index=i)) for i, (y, uv) in enumerate(frames)]


def test_a_still_face_runs_its_mesh_on_every_other_frame_and_reports_the_kept_ones(photo):
    pic = photo("obama-720p.jpg")
    v = CpuVision(max_faces=1)
    out = _run(v, [(pic.y, pic.uv)] * 8)
    assert all(len(faces) == 1 for faces in out)
    carried = [faces[0].carried_from for faces in out]
    # frame 0 is measured (detector and mesh), then every other frame keeps the mesh of the one before
    assert carried == [None, 0, None, 2, None, 4, None, 6]
    assert v.stats["mesh_runs"] == 4
    for i in (1, 3, 5, 7):      # kept landmarks are where the face is: the next measured frame agrees
        drift = np.abs(out[i][0].landmarks[:, :2] - out[i + 1][0].landmarks[:, :2]).max() if i < 7 else 0.0
        assert drift < 1.0, (i, drift)


def test_a_moving_face_is_measured_in_every_frame(photo):
    pic = photo("obama-720p.jpg")
    frames = [(np.roll(pic.y, 4 * i, axis=1), np.roll(pic.uv, 2 * i, axis=1)) for i in range(8)]
    v = CpuVision(max_faces=1)
    out = _run(v, frames)
    assert all(len(faces) == 1 and not faces[0].carried for faces in out)
    assert v.stats["mesh_runs"] == 8


def test_without_keep_still_every_frame_runs_its_mesh(photo):
    pic = photo("obama-720p.jpg")
    v = CpuVision(max_faces=1, keep_still=False)
    out = _run(v, [(pic.y, pic.uv)] * 6)
    assert not any(f.carried for faces in out for f in faces)
    assert v.stats["mesh_runs"] == 6


def test_thumbnail_of_a_box_and_of_one_too_small_or_outside():
    y = np.arange(360 * 640, dtype=np.uint32).reshape(360, 640).astype(np.uint8)
    t = thumbnail(y, np.array([100.5, 50.2, 180.0, 130.0], np.float32))
    assert t is not None and t.shape == (THUMB, THUMB) and t.dtype == np.float32
    assert thumbnail(y, np.array([10, 10, 20, 20], np.float32)) is None          # under THUMB pixels
    assert thumbnail(y, np.array([700, 10, 800, 90], np.float32)) is None        # off the frame
