"""The CPU vision stage on real footage: what a user of the server sees in the face metadata."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from facestream.engines.frame import Frame
from facestream.engines.vision import geometry as geo
from facestream.engines.vision.cpu import CpuVision


@pytest.fixture(scope="module")
def clip_faces(clip_frames):
    v = CpuVision()
    out = [v.process(f) for f in clip_frames]
    v.close()
    return out, v.stats


def test_faces_found_in_clip_frames_like_the_reference(clip_faces):
    faces, stats = clip_faces
    found = sum(1 for f in faces if f)
    # MediaPipe's reference pipeline finds a face in 226 of the 275 frames
    assert len(faces) == 275
    assert found >= 226, found
    # tracking: most frames run only the mesh (the detector runs on 64 frames: while no face is
    # tracked, every other frame; on the frame after its mesh lost a face)
    assert stats["detector_runs"] < 275 * 0.3


def _id_continuity(faces) -> float:
    """Share of faces that overlap a face of the previous frame and carry its ID."""
    same = total = 0
    for prev, cur in zip(faces, faces[1:], strict=False):
        for f in cur:
            match = [p for p in prev if geo.box_iou(f.box, p.box) > 0.5]
            if match:
                total += 1
                same += match[0].id == f.id
    return same / max(total, 1)


def test_ids_are_stable_across_the_clip(clip_faces):
    faces, _ = clip_faces
    assert _id_continuity(faces) >= 0.98
    # the singer (frames 100-215, one continuous shot) keeps one ID throughout
    singer = Counter(f.id for fs in faces[100:215] for f in fs)
    assert singer.most_common(1)[0][1] >= 0.95 * sum(1 for fs in faces[100:215] if fs), singer
    for fs in faces:
        assert len({f.id for f in fs}) == len(fs)


def test_face_fields_are_in_frame_coordinates(clip_faces, clip_frames):
    faces, _ = clip_faces
    h, w = clip_frames[0].height, clip_frames[0].width
    f = next(f for fs in faces for f in fs if f.landmarks is not None)
    assert f.landmarks.shape == (468, 3) and f.keypoints.shape == (6, 2)
    x0, y0, x1, y1 = f.box
    assert -w * 0.1 <= x0 < x1 <= w * 1.1 and -h * 0.1 <= y0 < y1 <= h * 1.1
    assert 0.5 <= f.score <= 1.0
    # eyes inside the box, right eye (image left) left of the left eye
    assert f.keypoints[0, 0] < f.keypoints[1, 0]
    assert np.all((f.keypoints[:2] >= f.box[:2]) & (f.keypoints[:2] <= f.box[2:]))


@pytest.mark.parametrize("name", ["two_people.jpg", "kit_with_rose.jpg"])
@pytest.mark.parametrize("detector", ["short", "full"])
def test_both_faces_in_photos(photo, name, detector):
    v = CpuVision(detector=detector)
    faces = v.process(photo(name))
    assert len(faces) == 2, [(f.box, f.score) for f in faces]
    a, b = faces
    # two different faces, not one found twice
    ca, cb = (a.box[:2] + a.box[2:]) / 2, (b.box[:2] + b.box[2:]) / 2
    assert np.linalg.norm(ca - cb) > 0.5 * (a.box[2] - a.box[0])


def test_max_faces_is_respected(photo):
    assert len(CpuVision(max_faces=1).process(photo("two_people.jpg"))) == 1


def test_no_face_in_a_blank_frame():
    y = np.full((360, 640), 90, np.uint8)
    uv = np.full((180, 320, 2), 128, np.uint8)
    assert CpuVision().process(Frame(y=y, uv=uv, pts=0)) == []


def test_detector_only_mode_keeps_ids(clip_frames):
    v = CpuVision(with_landmarks=False)
    faces = [v.process(f) for f in clip_frames[:60]]
    assert all(f.landmarks is None for fs in faces for f in fs)
    assert _id_continuity(faces) >= 0.95


def _noisy_still(frame: Frame, n: int, sigma: float = 4.0) -> list[Frame]:
    rng = np.random.default_rng(1)
    out = []
    for i in range(n):
        y = np.clip(frame.y.astype(np.float32) + rng.normal(0, sigma, frame.y.shape), 0, 255).astype(np.uint8)
        out.append(Frame(y=y, uv=frame.uv, pts=i, index=i))
    return out


def test_smoothing_reduces_jitter_on_a_still_face(photo):
    frames = _noisy_still(photo("obama-720p.jpg"), 40)

    def jitter(smoothing: bool) -> float:
        v = CpuVision(smoothing=smoothing, max_faces=1)
        lms = [v.process(f)[0].landmarks[:, :2] for f in frames]
        d = np.diff(np.stack(lms[5:]), axis=0)
        return float(np.linalg.norm(d, axis=-1).mean())

    raw, smooth = jitter(False), jitter(True)
    assert smooth < 0.5 * raw, (raw, smooth)


def test_smoothed_landmarks_follow_fast_motion(photo):
    base = photo("obama-720p.jpg")
    v = CpuVision(max_faces=1)
    shift = 0
    for i in range(30):
        shift = 0 if i < 10 else 12 * (i - 9)          # 12 px per frame after frame 10
        y = np.roll(base.y, shift, axis=1)
        uv = np.roll(base.uv, shift // 2, axis=1)
        faces = v.process(Frame(y=y, uv=uv, pts=i, index=i))
    ref = CpuVision(max_faces=1, smoothing=False).process(Frame(y=y, uv=uv, pts=0))
    lag = np.abs(faces[0].landmarks[:, 0] - ref[0].landmarks[:, 0]).mean()
    iod = np.linalg.norm(ref[0].landmarks[263, :2] - ref[0].landmarks[33, :2])
    assert lag < 0.15 * iod, (lag, iod)


def test_int8_variant_finds_the_faces(clip_frames):
    v = CpuVision(precision="int8")
    found = sum(1 for f in clip_frames if v.process(f))
    assert found >= 226, found


def test_idle_frames_skip_the_detector():
    y = np.full((360, 640), 90, np.uint8)
    uv = np.full((180, 320, 2), 128, np.uint8)
    v = CpuVision(idle_detect_every=3)
    for i in range(9):
        assert v.process(Frame(y=y, uv=uv, pts=i, index=i)) == []
    assert v.stats["detector_runs"] == 3


def test_faces_of_a_frame_meshed_side_by_side_give_the_same_result(clip_frames):
    """The clip's last frames have three or four faces: their meshes run in parallel threads."""
    part = clip_frames[200:]
    runs = []
    for parallel in (True, False):
        v = CpuVision(parallel=parallel)
        runs.append([v.process(f) for f in part])
        v.close()
    assert max(len(f) for f in runs[0]) >= 3
    for a, b in zip(*runs, strict=True):
        assert [f.id for f in a] == [f.id for f in b]
        for fa, fb in zip(a, b, strict=True):
            assert np.array_equal(fa.box, fb.box)
            assert (fa.landmarks is None and fb.landmarks is None) or np.array_equal(fa.landmarks, fb.landmarks)
