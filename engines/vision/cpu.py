"""CPU vision: the face tracker on ONNX Runtime's CPU provider, inputs cut by OpenCV on the host."""
from __future__ import annotations

import cv2
import numpy as np

from ..frame import Frame
from ..models.specs import CPU_DEFAULT_PRECISION, DEFAULT_DETECTOR, SPECS, detector_spec
from ..models.store import ModelStore, default_store
from ..parallel import face_pool
from . import geometry as geo
from .base import Detection
from .face import Face
from .ort_runner import OrtRunner
from .resample import InputMaker
from .tracker import IDLE_DETECT_EVERY, THUMB, FaceTracker, TrackerSettings


def thumbnail(y: np.ndarray, box: np.ndarray) -> np.ndarray | None:
    """The luma inside `box`, area-averaged to THUMB x THUMB (the tracker's still-face test)."""
    h, w = y.shape
    x0, y0 = max(0, int(box[0])), max(0, int(box[1]))
    x1, y1 = min(w, int(np.ceil(box[2]))), min(h, int(np.ceil(box[3])))
    if x1 - x0 < THUMB or y1 - y0 < THUMB:
        return None
    return cv2.resize(y[y0:y1, x0:x1], (THUMB, THUMB), interpolation=cv2.INTER_AREA).astype(np.float32)


class CpuVision:
    """Implements the Vision protocol (one instance per video session; not thread-safe).

    Tracking settings (max_faces, detect_every, idle_detect_every, min_score, smoothing, fps,
    min_cutoff, beta): see TrackerSettings. with_landmarks: run the 468-point mesh (and track
    through it); otherwise detector only, on every frame. detector: "short" (faces within ~2 m,
    128x128) or "full" (up to ~5 m, 192x192). precision: "fp32" or "int8". threads: ONNX Runtime
    intra-op threads. The ONNX Runtime inferences come from the store, shared by all instances:
    creating one is cheap. parallel: run the detector and the meshes of the tracked faces of a frame
    side by side (shorter latency for frames with several faces, same work). keep_still: a face that
    has barely changed since its last mesh keeps its landmarks for a frame (reported carried) instead
    of a mesh (tracker.STILL_MAD).
    """

    def __init__(self, max_faces: int = 4, detect_every: int = 10, with_landmarks: bool = True,
                 detector: str = DEFAULT_DETECTOR, precision: str = CPU_DEFAULT_PRECISION, threads: int = 1,
                 smoothing: bool = True, fps: float = 30.0, min_score: float = 0.5,
                 store: ModelStore | None = None, min_cutoff: float = 1.0, beta: float = 20.0,
                 idle_detect_every: int = IDLE_DETECT_EVERY, parallel: bool = True, keep_still: bool = True):
        detector_spec(detector)
        if precision not in ("fp32", "int8"):
            raise ValueError(f"precision must be 'fp32' or 'int8', not {precision!r}")
        settings = TrackerSettings(max_faces=max_faces, detect_every=detect_every,
                                   idle_detect_every=idle_detect_every, min_score=min_score, smoothing=smoothing,
                                   fps=fps, min_cutoff=min_cutoff, beta=beta)
        store = store or default_store()

        def runner(model: str) -> OrtRunner:
            return OrtRunner(store.inference(model, precision, threads), SPECS[model])

        self.tracker = FaceTracker(runner(detector), runner("mesh") if with_landmarks else None, InputMaker,
                                   settings, map_faces=face_pool().map if parallel else map,
                                   thumbnail=thumbnail if keep_still else None)
        self.stats = self.tracker.stats

    def process(self, frame: Frame) -> list[Face]:
        return self.tracker.process(frame)

    def detect(self, frame: Frame) -> list[Detection]:
        """Detector alone: faces in frame pixels, best first."""
        return self.tracker.detect(frame)

    def mesh(self, frame: Frame, roi: geo.Roi) -> tuple[np.ndarray, float]:
        """Mesh on a rotated crop: (468, 3) landmarks in frame pixels and the face score."""
        return self.tracker.mesh(frame, roi)

    def close(self) -> None:
        self.tracker.close()
