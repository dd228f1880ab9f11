"""A face the mesh loses between detector runs coasts for one frame, carried and marked; the detector
looks for it in the next frame, which either gives it back its ID or lets it go."""
from __future__ import annotations

import numpy as np

from facestream.engines.frame import Frame
from facestream.engines.vision.cpu import CpuVision


def _frame(y: np.ndarray, uv: np.ndarray, index: int) -> Frame:
    return Frame(y=y, uv=uv, pts=index, index=index)


def _blank(like: Frame) -> tuple[np.ndarray, np.ndarray]:
    return np.full_like(like.y, 90), np.full_like(like.uv, 128)


def test_a_face_lost_by_its_mesh_is_carried_one_frame_then_dropped_when_the_detector_finds_nothing(photo):
    pic = photo("obama-720p.jpg")
    v = CpuVision(max_faces=1, keep_still=False)
    first = v.process(_frame(pic.y, pic.uv, 0))
    assert len(first) == 1 and not first[0].carried
    assert v.stats["detector_runs"] == 1

    gone = v.process(_frame(*_blank(pic), 1))        # the mesh finds no face where it was
    assert v.stats["detector_runs"] == 1              # no detector in the frame that lost it
    assert len(gone) == 1
    face = gone[0]
    assert face.id == first[0].id and face.carried_from == 0
    assert np.abs(face.landmarks[:, :2] - first[0].landmarks[:, :2]).max() < 1.0   # where it was last seen

    after = v.process(_frame(*_blank(pic), 2))
    assert v.stats["detector_runs"] == 2              # the next frame looks for it, finds nothing
    assert after == []


def test_a_coasting_face_found_again_by_the_detector_keeps_its_id_and_is_measured(photo):
    pic = photo("obama-720p.jpg")
    v = CpuVision(max_faces=1, keep_still=False)
    first = v.process(_frame(pic.y, pic.uv, 0))
    coasting = v.process(_frame(*_blank(pic), 1))
    assert [f.carried_from for f in coasting] == [0]

    back = v.process(_frame(pic.y, pic.uv, 2))
    assert v.stats["detector_runs"] == 2
    assert len(back) == 1
    assert back[0].id == first[0].id and not back[0].carried
    assert np.abs(back[0].landmarks[:, :2] - first[0].landmarks[:, :2]).max() < 3.0

    # tracked again by its mesh alone: no detector on the frame after
    v.process(_frame(pic.y, pic.uv, 3))
    assert v.stats["detector_runs"] == 2
