"""CPU vision backend: BlazeFace + face mesh on ONNX Runtime, tracking between detections."""
from __future__ import annotations

import functools
import threading

import numpy as np

from ..frame import Frame
from ..models.specs import SPECS
from ..parallel import face_pool
from ..models.store import ModelStore, default_store
from . import geometry as geo
from .face import Face
from .resample import InputMaker
from .tracking import OneEuro, Track

# The CPU default, from benchmarks/vision_bench.py: FP32 is the fastest variant on ONNX Runtime's
# CPU provider (its Q/DQ INT8 models are slower there; they are meant for TensorRT).
CPU_DEFAULT_PRECISION = "fp32"
MESH_MIN_SCORE = 0.5          # face flag under this: the tracked face is lost
DET_ONLY_MIN_SCORE = 0.6     # a detection the mesh does not confirm is reported above this
KEEP_LOST = 30               # frames a lost face's ID is kept for when it comes back
SAME_FACE_IOU = 0.4           # a detection overlapping a track this much is that track's face
IDLE_DETECT_EVERY = 2         # while no face is tracked, the detector runs every N frames (1: every frame)
DEFAULT_DETECTORS = ("full",)  # the detector models CpuVision uses by default (warmed up on load)


class CpuVision:
    """Implements the Vision protocol (one instance per session; not thread-safe).

    max_faces: most faces reported per frame. detect_every: while faces are tracked and fewer
    than max_faces, look for new ones every N frames (and at once when a tracked face is lost;
    with max_faces tracked, the mesh alone follows them, as MediaPipe's face mesh does).
    idle_detect_every: while no face is tracked, run the detector every N frames (a new face is
    picked up at most N-1 frames late; the detector is the costliest model). with_landmarks: run the
    468-point mesh (and track through it); otherwise detector only, on every frame.
    detector: "short" (faces within ~2 m, 128x128) or "full" (up to ~5 m, 192x192).
    precision: "fp32" or "int8". threads: ONNX Runtime intra-op threads. The ONNX Runtime
    sessions come from the store, shared by all instances: creating one is cheap.
    smoothing: One Euro filter on landmarks/boxes. fps: frame rate assumed by the filter.
    parallel: run the meshes of the tracked faces of a frame side by side (shorter latency for
    frames with several faces, same work).
    """

    def __init__(self, max_faces: int = 4, detect_every: int = 10, with_landmarks: bool = True,
                 detector: str = "full", precision: str = CPU_DEFAULT_PRECISION, threads: int = 1,
                 smoothing: bool = True, fps: float = 30.0, min_score: float = 0.5,
                 store: ModelStore | None = None, min_cutoff: float = 1.0, beta: float = 20.0,
                 idle_detect_every: int = IDLE_DETECT_EVERY, parallel: bool = True):
        if detector not in ("short", "full"):
            raise ValueError(f"detector must be 'short' or 'full', not {detector!r}")
        if precision not in ("fp32", "int8"):
            raise ValueError(f"precision must be 'fp32' or 'int8', not {precision!r}")
        if max_faces < 1 or detect_every < 1 or idle_detect_every < 1:
            raise ValueError("max_faces, detect_every and idle_detect_every must be >= 1")
        store = store or default_store()
        self.max_faces, self.detect_every, self.with_landmarks = max_faces, detect_every, with_landmarks
        self.idle_detect_every, self.parallel = idle_detect_every, parallel
        self._count_lock = threading.Lock()
        self.smoothing, self.dt, self.min_score = smoothing, 1.0 / fps, min_score
        self._filter_args = (min_cutoff, beta)
        self._det_spec, self._mesh_spec = SPECS[detector], SPECS["mesh"]
        self._det = store.session(detector, precision, threads)
        self._mesh = store.session("mesh", precision, threads) if with_landmarks else None
        self._det_in = InputMaker(self._det_spec.size, self._det_spec.input_scale, self._det_spec.input_offset)
        self._spare_inputs: list[InputMaker] = []   # mesh input buffers not in use (one per concurrent mesh)
        self._tracks: list[Track] = []
        self._next_id = 1
        self._since_detect = 1 << 30
        self._lost: list[tuple[Track, int]] = []
        self._frame_no = 0
        self.stats = {"detector_runs": 0, "mesh_runs": 0}

    # ------------------------------------------------------------------ model calls
    def detect(self, frame: Frame) -> list[tuple[np.ndarray, np.ndarray, float]]:
        """Detector alone: [(box, keypoints (6, 2), score)] in frame pixels, best first."""
        x, (s, px, py) = self._det_in.letterbox(frame.y, frame.uv)
        scores, boxes, kps = self._det.run(["scores", "boxes", "keypoints"], {"input": x})
        self.stats["detector_runs"] += 1
        n = self._det_spec.size
        out = []
        for i in np.nonzero(scores[0] > self.min_score)[0]:
            box = ((boxes[0, i] * n - (px, py, px, py)) / s).astype(np.float32)
            kp = ((kps[0, i] * n - (px, py)) / s).astype(np.float32)
            out.append((box, kp, float(scores[0, i])))
        out.sort(key=lambda d: -d[2])
        return out

    def mesh(self, frame: Frame, roi: geo.Roi) -> tuple[np.ndarray, float]:
        """Mesh on a rotated crop: (468, 3) landmarks in frame pixels and the face score."""
        maker = self._spare_inputs.pop() if self._spare_inputs else self._new_mesh_input()
        try:
            x = maker.affine(frame.y, frame.uv, roi.matrix(self._mesh_spec.size))
            lm, score = self._mesh.run(["landmarks", "face_score"], {"input": x})
        finally:
            self._spare_inputs.append(maker)
        with self._count_lock:
            self.stats["mesh_runs"] += 1
        return geo.landmarks_to_frame(lm[0], roi, self._mesh_spec.size), float(score[0, 0])

    def _new_mesh_input(self) -> InputMaker:
        """Input buffers for one more mesh running at the same time (an InputMaker is not shared)."""
        return InputMaker(self._mesh_spec.size)

    # ------------------------------------------------------------------ tracking
    def _new_track(self, roi: geo.Roi) -> Track:
        t = Track(self._next_id, roi, filt=OneEuro(*self._filter_args), box_filt=OneEuro(*self._filter_args))
        self._next_id += 1
        return t

    def _update_mesh(self, frame: Frame, track: Track) -> bool:
        roi = track.roi
        lm, score = self.mesh(frame, roi)
        if score < MESH_MIN_SCORE and track.good_roi is not None and track.good_roi != roi:
            # On a turned face the region drawn around the landmarks can drift off the face;
            # the region that last worked usually still does, for one mesh instead of a detection.
            roi = track.good_roi
            lm, score = self.mesh(frame, roi)
            if score >= MESH_MIN_SCORE:
                track.score, track.raw, track.age = score, lm, track.age + 1
                track.roi, track.box = roi, geo.box_from_landmarks(lm)
                return True
        if score < MESH_MIN_SCORE:
            return False
        track.score, track.raw, track.age = score, lm, track.age + 1
        track.good_roi = roi
        track.roi = geo.roi_from_landmarks(lm)
        track.box = geo.box_from_landmarks(lm)
        return True

    def process(self, frame: Frame) -> list[Face]:
        if not self.with_landmarks:
            return self._process_detect_only(frame)
        self._since_detect += 1
        tracked = [t for t in self._tracks if t.raw is not None]
        if not self._tracks:
            # nothing to track: look for faces every `idle_detect_every` frames
            due = self._since_detect >= self.idle_detect_every
        elif len(tracked) >= self.max_faces:
            due = False      # no room for another face: the mesh alone keeps the tracks
        else:
            # new faces every `detect_every` frames; faces the mesh did not confirm follow the
            # detector, so it runs on every frame while there is one
            due = self._since_detect >= self.detect_every or len(tracked) < len(self._tracks)
        dets = self.detect(frame) if due else None
        if self.parallel and len(tracked) > 1:
            found = list(face_pool().map(functools.partial(self._update_mesh, frame), tracked))
        else:
            found = [self._update_mesh(frame, t) for t in tracked]
        alive = [t for t, ok in zip(tracked, found) if ok]
        just_lost = len(alive) < len(tracked)
        if just_lost and dets is None:
            dets = self.detect(frame)       # a face was lost in this frame: find it again at once
        lost = [t for t in self._tracks if t not in alive] + self._recent_lost()
        if dets is not None:
            self._since_detect = 0
            for box, kp, score in dets:
                if len(alive) >= self.max_faces:
                    break
                if any(geo.box_iou(box, t.box) > SAME_FACE_IOU for t in alive):
                    continue
                # a face seen before keeps its ID
                prev = max(lost, key=lambda t: geo.box_iou(box, t.box), default=None)
                if prev is not None and geo.box_iou(box, prev.box) > 0.3:
                    t = prev
                    lost.remove(prev)
                    self._lost = [(o, n) for o, n in self._lost if o is not prev]
                else:
                    t = self._new_track(geo.roi_from_detection(box, kp))
                t.roi, t.good_roi = geo.roi_from_detection(box, kp), None
                if not self._update_mesh(frame, t):
                    if score < DET_ONLY_MIN_SCORE:
                        continue
                    # the mesh does not confirm it (occluded, turned away): report the detection
                    t.raw, t.box, t.keypoints, t.score = None, box, kp, score
                    t.filt.reset()
                alive.append(t)
        self._remember(t for t in lost if t not in alive)
        self._tracks = alive
        self._dedupe()
        return [self._face(t) for t in self._tracks]

    def _recent_lost(self) -> list[Track]:
        """Tracks lost within the last KEEP_LOST frames: a face found again near where one was
        lost gets its ID back."""
        self._frame_no += 1
        self._lost = [(t, n) for t, n in self._lost if self._frame_no - n <= KEEP_LOST]
        return [t for t, _ in self._lost]

    def _remember(self, tracks) -> None:
        ids = {t.id for t, _ in self._lost}
        for t in tracks:
            if t.id not in ids:
                self._lost.append((t, self._frame_no))
            else:
                self._lost = [(o, self._frame_no if o.id == t.id and o is t else n) for o, n in self._lost]

    def _dedupe(self) -> None:
        out: list[Track] = []
        for t in sorted(self._tracks, key=lambda t: (t.raw is None, t.id)):
            if all(geo.box_iou(t.box, o.box) <= 0.5 for o in out):
                out.append(t)
        self._tracks = sorted(out, key=lambda t: t.id)[: self.max_faces]

    def _face(self, t: Track) -> Face:
        if t.raw is None:
            v = np.concatenate([t.box, t.keypoints.ravel()])
            if self.smoothing:
                v = t.box_filt(v, self.dt, scale=float(t.box[2] - t.box[0]))
            return Face(id=t.id, box=v[:4].astype(np.float32), score=t.score,
                        keypoints=v[4:].reshape(6, 2).astype(np.float32))
        lm = t.raw
        if self.smoothing:
            lm = t.filt(lm, self.dt, scale=t.roi.size / geo.ROI_SCALE)
        box = geo.box_from_landmarks(lm)
        kps = geo.keypoints_from_landmarks(lm)
        if self.smoothing:   # keeps the box filter warm for frames where only the detector sees it
            t.box_filt(np.concatenate([box, kps.ravel()]), self.dt, scale=float(box[2] - box[0]))
        return Face(id=t.id, box=box, score=t.score, keypoints=kps, landmarks=lm.astype(np.float32))

    def _process_detect_only(self, frame: Frame) -> list[Face]:
        dets = self.detect(frame)[: self.max_faces]
        tracks: list[Track] = []
        candidates = self._tracks + self._recent_lost()
        for box, kp, score in dets:
            free = [t for t in candidates if t not in tracks]
            prev = max(free, key=lambda t: geo.box_iou(box, t.box), default=None)
            if prev is not None and geo.box_iou(box, prev.box) > 0.3:
                t = prev
                self._lost = [(o, n) for o, n in self._lost if o is not prev]
            else:
                t = self._new_track(geo.Roi(0, 0, 0, 0))
            t.box, t.keypoints, t.score = box, kp, score
            tracks.append(t)
        self._remember(t for t in self._tracks if t not in tracks)
        self._tracks = tracks
        faces = []
        for t in tracks:
            v = np.concatenate([t.box, t.keypoints.ravel()])
            if self.smoothing:
                v = t.box_filt(v, self.dt, scale=float(t.box[2] - t.box[0]))
            faces.append(Face(id=t.id, box=v[:4].astype(np.float32), score=t.score,
                              keypoints=v[4:].reshape(6, 2).astype(np.float32)))
        return faces

    def reset(self) -> None:
        self._tracks = []
        self._lost = []
        self._since_detect = 1 << 30

    def close(self) -> None:
        self._tracks = []
        self._det = self._mesh = None
