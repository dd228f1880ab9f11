"""Face tracking on any device: detector when needed, the face mesh from frame to frame.

The tracker is given its parts: a detector runner, a mesh runner (or none: detector only, on
every frame), a maker of model inputs and how to map work over the faces of a frame. It cuts the
model inputs, hands them to the runners and turns their host outputs into tracks, so CPU and GPU
stages share every tracking decision and differ only in where inputs are cut and models run.
"""
from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..frame import Frame
from . import geometry as geo
from .base import Detection, InputMakerFactory, ModelInputMaker, ModelRunner
from .face import Face
from .tracking import OneEuro, Track

MESH_MIN_SCORE = 0.5          # face flag under this: the tracked face is lost
DET_ONLY_MIN_SCORE = 0.6      # a detection the mesh does not confirm is reported above this
KEEP_LOST = 30                # frames a lost face's ID is kept for when it comes back
SAME_FACE_IOU = 0.4           # a detection overlapping a track this much is that track's face
SAME_LOST_IOU = 0.3           # a detection overlapping a lost face this much gets its ID back
DUPLICATE_IOU = 0.5           # two tracks overlapping more than this follow one face: one is dropped
IDLE_DETECT_EVERY = 2         # while no face is tracked, the detector runs every N frames (1: every frame)
# A still face keeps its landmarks instead of a mesh when its thumbnail (THUMB x THUMB luma over its box)
# differs from the one taken at its last mesh by under STILL_MAD code values on average; on the shared
# clip such faces' landmarks move 0.25 px at the median, 0.65 px at the 90th percentile. At most
# MAX_KEPT frames in a row: the mesh still runs on every other frame of a face that stays still.
STILL_MAD = 1.0
MAX_KEPT = 1
THUMB = 16

FaceMap = Callable[[Callable[[Any], Any], list[Any]], Iterable[Any]]
# (luma plane, box (x0, y0, x1, y1)) -> a THUMB x THUMB float32 host thumbnail, None for an empty box
Thumbnail = Callable[[Any, np.ndarray], "np.ndarray | None"]


def _call(job: Callable[[], Any]) -> Any:
    return job()


@dataclass(frozen=True)
class TrackerSettings:
    """How often the detector runs, how many faces are kept, and the landmark smoothing.

    max_faces: most faces reported per frame. Frame counts here are frames vision runs on (the
    real-time policy may skip some). detect_every: while faces are tracked and fewer
    than max_faces, look for new ones every N frames (and on the frame after one where a tracked face
    was lost; with max_faces tracked, the mesh alone follows them, as MediaPipe's face mesh does).
    idle_detect_every: while no face is tracked, run the detector every N frames (a new face is
    picked up at most N-1 frames late; the detector is the costliest model). min_score: the
    detector's score threshold. smoothing: One Euro filter (min_cutoff, beta) on landmarks and
    boxes; fps: the frame rate it assumes.
    """

    max_faces: int = 4
    detect_every: int = 10
    idle_detect_every: int = IDLE_DETECT_EVERY
    min_score: float = 0.5
    smoothing: bool = True
    fps: float = 30.0
    min_cutoff: float = 1.0
    beta: float = 20.0

    def __post_init__(self) -> None:
        if self.max_faces < 1 or self.detect_every < 1 or self.idle_detect_every < 1:
            raise ValueError("max_faces, detect_every and idle_detect_every must be >= 1")


class FaceTracker:
    """Implements the Vision protocol (one instance per video session; not thread-safe).

    detector, mesh: the model runners (mesh None: detector only, on every frame). make_input:
    makes the input makers (one for the detector, one per mesh in flight). map_faces: runs the
    detector and the meshes of a frame's tracked faces (`map`: one after the other; a thread pool's
    map: side by side, the same results sooner). thumbnail: cuts a face's thumbnail from the luma
    plane; given, a still face keeps its landmarks for a frame instead of a mesh (see STILL_MAD), and
    is reported carried from the frame its mesh ran on.
    """

    def __init__(self, detector: ModelRunner, mesh: ModelRunner | None, make_input: InputMakerFactory,
                 settings: TrackerSettings | None = None, map_faces: FaceMap = map,
                 thumbnail: Thumbnail | None = None) -> None:
        self.settings = s = settings or TrackerSettings()
        self._detector, self._mesh = detector, mesh
        self._make_input, self._map_faces = make_input, map_faces
        self._thumbnail = thumbnail
        spec = detector.spec
        self._det_in = make_input(spec.size, spec.input_scale, spec.input_offset)
        self._spare_inputs: list[ModelInputMaker] = []   # mesh input makers not in use
        self._dt = 1.0 / s.fps
        self._last_index: int | None = None               # Frame.index of the last frame processed
        self._tracks: list[Track] = []
        self._lost: list[tuple[Track, int]] = []          # (track, frame it was lost in)
        self._next_id = 1
        self._since_detect = 1 << 30
        self._frame_no = 0
        self._count_lock = threading.Lock()
        self.stats = {"detector_runs": 0, "mesh_runs": 0}

    # ------------------------------------------------------------------ model calls
    def detect(self, frame: Frame) -> list[Detection]:
        """Detector alone: faces in frame pixels, best first."""
        x, (s, px, py) = self._det_in.letterbox(frame.y, frame.uv)
        out = self._detector.run(x)
        self.stats["detector_runs"] += 1
        scores, boxes, kps = out["scores"], out["boxes"], out["keypoints"]
        n = self._detector.spec.size
        found = []
        for i in np.nonzero(scores[0] > self.settings.min_score)[0]:
            box = ((boxes[0, i] * n - (px, py, px, py)) / s).astype(np.float32)
            kp = ((kps[0, i] * n - (px, py)) / s).astype(np.float32)
            found.append(Detection(box, kp, float(scores[0, i])))
        found.sort(key=lambda d: -d.score)
        return found

    def mesh(self, frame: Frame, roi: geo.Roi) -> tuple[np.ndarray, float]:
        """Mesh on a rotated crop: (468, 3) landmarks in frame pixels and the face score."""
        if self._mesh is None:
            raise RuntimeError("this tracker runs the detector only")
        spec = self._mesh.spec
        # an input maker per mesh in flight: the spares are the ones no running mesh uses
        try:
            maker = self._spare_inputs.pop()
        except IndexError:      # none spare (the check and the pop are one step: meshes run side by side)
            maker = self._make_input(spec.size, spec.input_scale, spec.input_offset)
        try:
            out = self._mesh.run(maker.affine(frame.y, frame.uv, roi.matrix(spec.size)))
        finally:
            self._spare_inputs.append(maker)
        with self._count_lock:
            self.stats["mesh_runs"] += 1
        return geo.landmarks_to_frame(out["landmarks"][0], roi, spec.size), float(out["face_score"][0, 0])

    # ------------------------------------------------------------------ tracking
    def process(self, frame: Frame) -> list[Face]:
        self._step(frame.index)
        if self._mesh is None:
            return self._process_detect_only(frame)
        self._since_detect += 1
        tracked = [t for t in self._tracks if t.raw is not None and not t.coasting]
        dets, alive = self._detect_and_follow(frame, tracked, self._detection_due(len(tracked)))
        coasting = self._coast(tracked, alive, dets is not None)
        lost = [t for t in self._tracks if t not in alive and t not in coasting] + self._recent_lost()
        if dets is not None:
            self._since_detect = 0
            self._adopt(frame, dets, alive, lost)
        self._remember(t for t in lost if t not in alive)
        self._tracks = self._deduplicated(alive + coasting)
        return [self._face(t) for t in self._tracks]

    def _coast(self, tracked: list[Track], alive: list[Track], detected: bool) -> list[Track]:
        """Marks the faces not measured in a frame the detector did not run on as coasting (and no others): each
        is reported as it was last measured, marked carried, until the detector looks for it again. That is
        the next frame for a face its mesh lost (beside that frame's meshes: looking at once would put a
        detector and another mesh on top of the meshes that failed, all in the frame that already costs the
        most), and the detector's idle pace for a face only the detector sees."""
        missed = [] if detected else [t for t in self._tracks if t.raw is None or t in tracked and t not in alive]
        for t in self._tracks:
            t.coasting = t in missed
        return missed

    def _step(self, index: int) -> None:
        """Sets the smoothing filters' time step to the frames since the last call, so that frames the
        pipeline skipped (real-time policy) count as the time they took: a face that moved over them
        did not move that far in one frame."""
        gap = index - self._last_index if self._last_index is not None else 1
        self._dt = max(1, gap) / self.settings.fps      # an index not after the last one counts as one frame
        self._last_index = index

    def _detection_due(self, tracked: int) -> bool:
        s = self.settings
        if not self._tracks:
            # nothing to track: look for faces every `idle_detect_every` frames
            return self._since_detect >= s.idle_detect_every
        if tracked >= s.max_faces:
            return False     # no room for another face: the mesh alone keeps the tracks
        if any(t.coasting and t.raw is not None for t in self._tracks):
            return True      # a face its mesh lost in the frame before: look for it now
        if any(t.raw is None for t in self._tracks):
            # faces the mesh did not confirm follow the detector, at its idle pace (carried in between)
            return self._since_detect >= s.idle_detect_every
        return self._since_detect >= s.detect_every      # new faces every `detect_every` frames

    def _detect_and_follow(self, frame: Frame, tracked: list[Track], detect: bool
                           ) -> tuple[list[Detection] | None, list[Track]]:
        """The detections in `frame` (None unless `detect`) and the tracked faces the mesh still finds there
        (their tracks updated). The detector and the meshes only read the frame, so with a parallel
        `map_faces` they run side by side: a frame that needs both takes the longer of them, not the sum."""
        update = functools.partial(self._update_mesh, frame)
        jobs: list[Callable[[], Any]] = [functools.partial(update, t) for t in tracked]
        if detect:
            jobs.insert(0, functools.partial(self.detect, frame))
        results = list(self._map_faces(_call, jobs)) if len(jobs) > 1 else [job() for job in jobs]
        dets = results.pop(0) if detect else None
        return dets, [t for t, ok in zip(tracked, results, strict=True) if ok]

    def _still(self, frame: Frame, track: Track) -> bool:
        """Whether the face has barely changed since its last mesh, so it keeps its landmarks this frame
        (at most MAX_KEPT frames in a row); anything it cannot tell counts as moved."""
        box, anchor = track.anchor_box, track.anchor
        if self._thumbnail is None or track.raw is None or anchor is None or box is None or track.kept >= MAX_KEPT:
            return False
        if frame.index - track.measured > MAX_KEPT:    # frames skipped since (real-time policy): look again
            return False
        thumb = self._thumbnail(frame.y, box)
        if thumb is None or float(np.abs(thumb - anchor).mean()) >= STILL_MAD:
            return False
        track.kept += 1
        return True

    def _measured(self, frame: Frame, track: Track, lm: np.ndarray, score: float) -> None:
        """Takes a mesh's result (landmarks, score, the box around them), and the face's thumbnail there for
        the still-face test."""
        track.score, track.raw, track.box = score, lm, geo.box_from_landmarks(lm)
        track.measured, track.kept = frame.index, 0
        if self._thumbnail is not None:
            track.anchor_box = track.box
            track.anchor = self._thumbnail(frame.y, track.box)

    def _update_mesh(self, frame: Frame, track: Track) -> bool:
        if self._still(frame, track):
            return True
        roi = track.roi
        lm, score = self.mesh(frame, roi)
        good, retried = track.good_roi, False
        if score < MESH_MIN_SCORE and good is not None and not geo.roi_close(good, roi):
            # On a turned face the region drawn around the landmarks can drift off the face;
            # the region that last worked usually still does, for one mesh instead of a detection.
            roi, retried = good, True
            lm, score = self.mesh(frame, roi)
        if score < MESH_MIN_SCORE:
            return False
        self._measured(frame, track, lm, score)
        track.good_roi = roi
        drawn = geo.roi_from_landmarks(lm)
        if retried:
            # How the region that found it differs from the one these landmarks draw is learnt, so that the
            # regions drawn for the face from now on are moved the same way instead of missing it every other frame.
            track.roi_fix = geo.RoiFix.between(drawn, roi)
        track.roi = track.roi_fix(drawn) if track.roi_fix is not None else drawn
        return True

    def _adopt(self, frame: Frame, dets: list[Detection], alive: list[Track], lost: list[Track]) -> None:
        """Adds the detected faces no live track follows to `alive`, best first, up to max_faces:
        a face lost recently near a detection gets its ID back (and leaves `lost`)."""
        for det in dets:
            if len(alive) >= self.settings.max_faces:
                break
            if any(geo.box_iou(det.box, t.box) > SAME_FACE_IOU for t in alive):
                continue
            t = self._reclaim(det.box, lost)
            if t is not None:
                lost.remove(t)
            else:
                t = self._new_track(det)
            t.roi, t.good_roi, t.roi_fix = geo.roi_from_detection(det.box, det.keypoints), None, None
            t.anchor = None    # found again by the detector: its mesh runs
            if not self._update_mesh(frame, t):
                if det.score < DET_ONLY_MIN_SCORE:
                    continue
                # the mesh does not confirm it (occluded, turned away): report the detection
                t.raw, t.box, t.keypoints, t.score, t.measured = None, det.box, det.keypoints, det.score, frame.index
                t.filt.reset()
            alive.append(t)

    def _process_detect_only(self, frame: Frame) -> list[Face]:
        tracks: list[Track] = []
        candidates = self._tracks + self._recent_lost()
        for det in self.detect(frame)[: self.settings.max_faces]:
            t = self._reclaim(det.box, [t for t in candidates if t not in tracks])
            if t is None:
                t = self._new_track(det)
            t.box, t.keypoints, t.score = det.box, det.keypoints, det.score
            tracks.append(t)
        self._remember(t for t in self._tracks if t not in tracks)
        self._tracks = tracks
        return [self._detection_face(t) for t in tracks]

    # ------------------------------------------------------------------ track bookkeeping
    def _new_track(self, det: Detection) -> Track:
        s = self.settings
        t = Track(self._next_id, geo.roi_from_detection(det.box, det.keypoints), det.box, det.keypoints,
                  filt=OneEuro(s.min_cutoff, s.beta), box_filt=OneEuro(s.min_cutoff, s.beta))
        self._next_id += 1
        return t

    def _reclaim(self, box: np.ndarray, candidates: list[Track]) -> Track | None:
        """The candidate overlapping `box` most, if enough to be the same face; it is no longer lost."""
        prev = max(candidates, key=lambda t: geo.box_iou(box, t.box), default=None)
        if prev is None or geo.box_iou(box, prev.box) <= SAME_LOST_IOU:
            return None
        self._lost = [(o, n) for o, n in self._lost if o is not prev]
        return prev

    def _recent_lost(self) -> list[Track]:
        """Tracks lost within the last KEEP_LOST frames: a face found again near where one was
        lost gets its ID back."""
        self._frame_no += 1
        self._lost = [(t, n) for t, n in self._lost if self._frame_no - n <= KEEP_LOST]
        return [t for t, _ in self._lost]

    def _remember(self, tracks: Iterable[Track]) -> None:
        ids = {t.id for t, _ in self._lost}
        for t in tracks:
            if t.id not in ids:
                self._lost.append((t, self._frame_no))
            else:
                self._lost = [(o, self._frame_no if o.id == t.id and o is t else n) for o, n in self._lost]

    def _deduplicated(self, tracks: list[Track]) -> list[Track]:
        """Tracks by ID, at most max_faces, none overlapping an older (or mesh-followed, or measured) one much."""
        out: list[Track] = []
        for t in sorted(tracks, key=lambda t: (t.raw is None, t.coasting, t.id)):
            if all(geo.box_iou(t.box, o.box) <= DUPLICATE_IOU for o in out):
                out.append(t)
        return sorted(out, key=lambda t: t.id)[: self.settings.max_faces]

    # ------------------------------------------------------------------ output
    def _face(self, t: Track) -> Face:
        if t.raw is None:
            return self._detection_face(t)
        lm = t.raw
        if self.settings.smoothing:
            lm = t.filt(lm, self._dt, scale=t.roi.size / geo.ROI_SCALE)
        box = geo.box_from_landmarks(lm)
        kps = geo.keypoints_from_landmarks(lm)
        if self.settings.smoothing:   # keeps the box filter warm for frames where only the detector sees it
            t.box_filt(np.concatenate([box, kps.ravel()]), self._dt, scale=float(box[2] - box[0]))
        return Face(id=t.id, box=box, score=t.score, keypoints=kps, landmarks=lm.astype(np.float32),
                    carried_from=t.measured if t.kept or t.coasting else None)

    def _detection_face(self, t: Track) -> Face:
        v = np.concatenate([t.box, t.keypoints.ravel()])
        if self.settings.smoothing:
            v = t.box_filt(v, self._dt, scale=float(t.box[2] - t.box[0]))
        return Face(id=t.id, box=v[:4].astype(np.float32), score=t.score,
                    keypoints=v[4:].reshape(6, 2).astype(np.float32), carried_from=t.measured if t.coasting else None)

    def close(self) -> None:
        """Releases the runners (the one cleanup path); the tracker is not used after it."""
        self._tracks, self._lost = [], []
        self._detector.close()
        if self._mesh is not None:
            self._mesh.close()

