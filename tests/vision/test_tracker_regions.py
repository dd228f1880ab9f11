"""Where and how often the tracker looks for a face, with scripted models.

The mesh finds the face only in a crop centred within a few pixels of where the face is, and reports
landmarks whose box sits to one side of it (as on a face turned away), so the region drawn around those
landmarks misses. The tracker learns the difference from the region that worked and draws the next ones
moved the same way: one mesh per frame, not two. A face the mesh never confirms follows the detector at its
idle pace and is carried in between.
"""
from __future__ import annotations

import math

import numpy as np

from facestream.engines.frame import Frame
from facestream.engines.models.specs import SPECS
from facestream.engines.vision import geometry as geo
from facestream.engines.vision.tracker import FaceTracker, TrackerSettings

FACE = np.array([100.0, 100.0])   # where the face starts; the mesh finds it only in crops centred near it
OFFSET = 10.0                     # how far right of it its landmark box sits
HALF = 20.0                       # half the side of its landmark box


class _Input:
    """Cuts nothing: hands the runners the crop's matrix (or the letterbox's), which is all they need."""

    def __init__(self, size: int, scale: float, offset: float) -> None:
        self.size = size

    def letterbox(self, y, uv):
        return None, (1.0, 0.0, 0.0)

    def affine(self, y, uv, m):
        return np.asarray(m, np.float64)


class _Scene:
    def __init__(self) -> None:
        self.face = FACE.copy()


class _Detector:
    spec = SPECS["full"]

    def __init__(self, scene: _Scene) -> None:
        self.scene = scene

    def run(self, _):
        n = self.spec.size
        x, y = self.scene.face
        box = np.array([x - HALF, y - HALF, x + HALF, y + HALF]) / n
        kps = np.array([[x - 8, y - 5], [x + 8, y - 5], [x, y], [x, y + 8], [x - 18, y], [x + 18, y]]) / n
        return {"scores": np.array([[0.9]]), "boxes": box[None, None], "keypoints": kps[None, None]}

    def close(self) -> None:
        pass


class _Mesh:
    spec = SPECS["mesh"]

    def __init__(self, scene: _Scene, finds_within: float = 6.0) -> None:
        self.scene = scene
        self.finds_within = finds_within    # px from the face a crop's centre may be for the mesh to find it
        self.centres: list[np.ndarray] = []

    def run(self, m):
        s, face = self.spec.size, self.scene.face
        centre = m @ np.array([s / 2, s / 2, 1.0])
        self.centres.append(centre)
        found = float(np.abs(centre - face).max()) < self.finds_within
        # landmarks spread over a box right of the face, eyes level: in frame pixels, then into the crop
        rng = np.random.default_rng(0)
        pts = face + [OFFSET, 0.0] + rng.uniform(-HALF, HALF, (468, 2))
        pts[[0, 1]] = face + [OFFSET - HALF, -HALF], face + [OFFSET + HALF, HALF]
        pts[geo.RIGHT_EYE_OUTER], pts[geo.LEFT_EYE_OUTER] = face + [OFFSET - 10, -5], face + [OFFSET + 10, -5]
        crop = (pts - m[:, 2]) @ np.linalg.inv(m[:, :2]).T
        lm = np.concatenate([crop, np.zeros((468, 1))], axis=1)
        return {"landmarks": lm[None].astype(np.float32), "face_score": np.array([[0.9 if found else 0.05]])}

    def close(self) -> None:
        pass


def _frame(i: int) -> Frame:
    return Frame(y=np.zeros((200, 200), np.uint8), uv=np.full((100, 100, 2), 128, np.uint8), pts=i, index=i)


def _tracker(scene: _Scene, finds_within: float = 6.0) -> tuple[FaceTracker, _Mesh]:
    mesh = _Mesh(scene, finds_within)
    return FaceTracker(_Detector(scene), mesh, _Input, TrackerSettings(max_faces=1, smoothing=False)), mesh


def test_the_region_that_found_a_turned_face_is_learnt_and_the_next_ones_are_drawn_like_it():
    scene = _Scene()
    tracker, mesh = _tracker(scene)
    meshes_per_frame = []
    for i in range(5):
        scene.face = FACE + [2.0 * i, 0.0]    # moving slowly right
        before = len(mesh.centres)
        faces = tracker.process(_frame(i))
        meshes_per_frame.append(len(mesh.centres) - before)
        assert len(faces) == 1 and faces[0].id == 1 and not faces[0].carried
    # frame 0: the detection's region finds it; frame 1: the region around its landmarks misses, the
    # one that worked finds it; from frame 2 on the regions are drawn moved like that one: one mesh each
    assert meshes_per_frame == [1, 2, 1, 1, 1]
    assert tracker.stats["detector_runs"] == 1
    # the learnt regions move with the face, 2 px a frame
    steps = np.diff([c[0] for c in mesh.centres[3:]])
    assert np.allclose(steps, 2.0, atol=0.01), steps


def test_a_retry_in_the_region_just_tried_is_not_made():
    scene = _Scene()
    tracker, mesh = _tracker(scene)
    for i in range(3):                        # learns the region, then draws it
        tracker.process(_frame(i))
    mesh.centres.clear()
    scene.face = FACE + 30.0                  # gone from there: no mesh near the last regions finds it
    faces = tracker.process(_frame(3))
    assert len(mesh.centres) == 1             # the last good region is within a pixel of the one that failed
    assert [f.carried_from for f in faces] == [2]


def test_a_face_the_mesh_never_confirms_follows_the_detector_every_other_frame_and_is_carried_between():
    scene = _Scene()
    tracker, mesh = _tracker(scene, finds_within=0.0)     # the mesh turns every crop down
    detector_ran, reported = [], []
    for i in range(6):
        before = tracker.stats["detector_runs"]
        faces = tracker.process(_frame(i))
        detector_ran.append(tracker.stats["detector_runs"] - before)
        reported.append([(f.id, f.landmarks is None, f.carried_from) for f in faces])
    assert detector_ran == [1, 0, 1, 0, 1, 0]
    # reported on every frame as the detector's box, the frames between carried from its last detection
    assert reported == [[(1, True, None)], [(1, True, 0)], [(1, True, None)], [(1, True, 2)],
                        [(1, True, None)], [(1, True, 4)]]
    assert len(mesh.centres) == 3                         # one try per detection


def test_a_fix_maps_the_drawn_region_onto_the_working_one_and_moves_with_the_face():
    drawn = geo.Roi(110.0, 100.0, 60.0, 0.1)
    working = geo.Roi(100.0, 103.0, 54.0, 0.05)
    fix = geo.RoiFix.between(drawn, working)
    assert geo.roi_close(fix(drawn), working, tolerance=1e-9)
    moved = fix(geo.Roi(130.0, 90.0, 60.0, 0.1))    # the same face 20 px right, 10 px up
    assert math.isclose(moved.cx, 120.0) and math.isclose(moved.cy, 93.0)
    assert math.isclose(moved.size, 54.0) and math.isclose(moved.angle, 0.05)


def test_regions_are_close_within_a_twentieth_of_their_side():
    a = geo.Roi(100.0, 100.0, 100.0, 0.0)
    assert geo.roi_close(a, geo.Roi(104.0, 96.0, 104.0, 0.04))
    assert not geo.roi_close(a, geo.Roi(106.0, 100.0, 100.0, 0.0))
    assert not geo.roi_close(a, geo.Roi(100.0, 100.0, 94.0, 0.0))
    assert not geo.roi_close(a, geo.Roi(100.0, 100.0, 100.0, 0.06))
