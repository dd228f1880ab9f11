"""Face regions for the mesh model: rotated squares from detections or from landmarks
(MediaPipe's face mesh graph: scale 1.5, square on the long side, rotation from the eyes)."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

ROI_SCALE = 1.5
# mesh landmark indices
RIGHT_EYE_OUTER, LEFT_EYE_OUTER = 33, 263
# BlazeFace keypoints rebuilt from the mesh: eye centres, nose tip, mouth centre, ear tragions
_KP_FROM_MESH = ((33, 133), (362, 263), (1,), (13, 14), (234,), (454,))
# each keypoint as the mean of two landmarks (a single one taken twice: (a + a) / 2 == a exactly)
_KP_FIRST = np.array([ix[0] for ix in _KP_FROM_MESH])
_KP_LAST = np.array([ix[-1] for ix in _KP_FROM_MESH])


@dataclass
class Roi:
    cx: float
    cy: float
    size: float      # side of the square, frame pixels
    angle: float     # radians, rotation of the crop (counter-clockwise in image coordinates)

    def matrix(self, out: int) -> np.ndarray:
        """2x3 affine from crop pixel coordinates (0..out) to frame coordinates."""
        c, s = math.cos(self.angle), math.sin(self.angle)
        k = self.size / out
        # frame = centre + R @ ((p - out/2) * k)
        a = np.array([[c * k, -s * k], [s * k, c * k]])
        t = np.array([self.cx, self.cy]) - a @ np.array([out / 2, out / 2])
        return np.hstack([a, t[:, None]])


def _angle(p0: np.ndarray, p1: np.ndarray) -> float:
    # MediaPipe: target_angle - atan2(-(y1 - y0), x1 - x0), with target 0 and y down
    return math.atan2(p1[1] - p0[1], p1[0] - p0[0])


def roi_from_detection(box: np.ndarray, keypoints: np.ndarray) -> Roi:
    """box (x0, y0, x1, y1) and keypoints (6, 2) in frame pixels."""
    w, h = box[2] - box[0], box[3] - box[1]
    return Roi((box[0] + box[2]) / 2, (box[1] + box[3]) / 2, max(w, h) * ROI_SCALE,
               _angle(keypoints[0], keypoints[1]))


def roi_from_landmarks(lm: np.ndarray) -> Roi:
    """lm (468, >=2) in frame pixels."""
    x0, y0 = lm[:, 0].min(), lm[:, 1].min()
    x1, y1 = lm[:, 0].max(), lm[:, 1].max()
    return Roi((x0 + x1) / 2, (y0 + y1) / 2, max(x1 - x0, y1 - y0) * ROI_SCALE,
               _angle(lm[RIGHT_EYE_OUTER], lm[LEFT_EYE_OUTER]))


@dataclass(frozen=True)
class RoiFix:
    """How a face's working region differs from the one its landmarks draw (a turned face whose landmark
    box sits off its centre): a shift in units of the region's size, a size ratio and a rotation."""

    dx: float
    dy: float
    scale: float
    angle: float

    @staticmethod
    def between(drawn: Roi, working: Roi) -> RoiFix:
        """The fix that turns `drawn` (from landmarks) into `working` (a region where the mesh found the face)."""
        return RoiFix((working.cx - drawn.cx) / drawn.size, (working.cy - drawn.cy) / drawn.size,
                      working.size / drawn.size, working.angle - drawn.angle)

    def __call__(self, roi: Roi) -> Roi:
        return Roi(roi.cx + self.dx * roi.size, roi.cy + self.dy * roi.size, roi.size * self.scale,
                   roi.angle + self.angle)


def roi_close(a: Roi, b: Roi, tolerance: float = 0.05) -> bool:
    """Whether two regions differ by under `tolerance` of their side in centre and size, and under
    `tolerance` radians (about 3 degrees) in rotation: a mesh on one finds what a mesh on the other does."""
    return (abs(a.cx - b.cx) < tolerance * a.size and abs(a.cy - b.cy) < tolerance * a.size
            and abs(a.size - b.size) < tolerance * a.size and abs(a.angle - b.angle) < tolerance)


def landmarks_to_frame(lm: np.ndarray, roi: Roi, out: int) -> np.ndarray:
    """Mesh output (468, 3) in crop pixels -> frame pixels (z scaled like x)."""
    m = roi.matrix(out)
    frame = np.empty(lm.shape, np.float32)
    frame[:, :2] = lm[:, :2] @ m[:, :2].T + m[:, 2]
    frame[:, 2] = lm[:, 2] * (roi.size / out)
    return frame


def keypoints_from_landmarks(lm: np.ndarray) -> np.ndarray:
    return ((lm[_KP_FIRST, :2] + lm[_KP_LAST, :2]) / 2).astype(np.float32)


def box_from_landmarks(lm: np.ndarray) -> np.ndarray:
    return np.array([lm[:, 0].min(), lm[:, 1].min(), lm[:, 0].max(), lm[:, 1].max()], np.float32)


def box_iou(a: np.ndarray, b: np.ndarray) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0
