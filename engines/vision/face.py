"""What the vision stage reports about one face, in frame pixel coordinates, and how a face is carried
into a frame vision did not run on."""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

# Frames a face is carried past the last frame vision measured it in (1/3 s at 30 fps): long enough to
# bridge the frames a late session skips, short enough that a guess never stands in for a face for long.
# Past it the face counts as not tracked.
MAX_CARRY_FRAMES = 10


@dataclass
class Face:
    """A face found in (or tracked into) a frame.

    `box` is (x0, y0, x1, y1); `keypoints` is (6, 2), in BlazeFace's order: right eye, left eye,
    nose tip, mouth, right ear, left ear; `landmarks` is the (468, 3) face mesh
    (x, y in pixels, z in the same scale as x) or None when only detection ran. `carried_from` is
    None for a face measured in its own frame, else the index of the frame it was measured in and
    carried from (see FaceCarry).
    """

    id: int
    box: np.ndarray
    score: float
    keypoints: np.ndarray
    landmarks: np.ndarray | None = None
    carried_from: int | None = None

    @property
    def carried(self) -> bool:
        return self.carried_from is not None


def _moved(last: np.ndarray, prev: np.ndarray | None, steps: float) -> np.ndarray:
    """`last` moved on by `steps` times its change since `prev` (not moved without a comparable `prev`)."""
    if prev is None or prev.shape != last.shape:
        return last
    return (last + (last - prev) * steps).astype(np.float32)


class FaceCarry:
    """The faces of the frames vision last ran on, per track, to stand in for them in frames it skips.

    A face is carried by constant velocity: its position (box, keypoints, landmarks) moves on by its
    change between the last two fresh frames of its track, per frame, times the frames since the last
    one. A track seen in only one fresh frame, or whose two fresh frames are more than `max_age`
    frames apart, stays where it was last seen. A face is carried at most `max_age` frames past its
    last fresh frame; a track missing from the latest fresh frame is not carried at all (its face
    was lost). Cheap: a few array operations per face, nothing per pixel.
    """

    def __init__(self, max_age: int = MAX_CARRY_FRAMES) -> None:
        if max_age < 1:
            raise ValueError(f"max_age must be >= 1 frame, not {max_age}")
        self.max_age = max_age
        self._last: dict[int, tuple[int, Face]] = {}   # track ID -> (frame index, face) of the latest fresh frame
        self._prev: dict[int, tuple[int, Face]] = {}   # the same for the fresh frame before it

    def remember(self, index: int, faces: list[Face]) -> None:
        """Takes the faces vision reported for frame `index`, each as of the frame it was measured in (a
        still face keeps an earlier frame's landmarks, from its own carried_from)."""
        last = {f.id: (index if f.carried_from is None else f.carried_from, f) for f in faces}
        prev = {}
        for track, (seen, _) in last.items():
            before = self._last.get(track)
            if before is not None and before[0] < seen:
                prev[track] = before
            elif track in self._prev:          # measured in the same frame as before: same motion
                prev[track] = self._prev[track]
        self._prev, self._last = prev, last

    def carry(self, index: int) -> list[Face]:
        """The remembered faces moved into frame `index`; none last measured more than max_age frames before it."""
        out = []
        for track, (seen, face) in self._last.items():
            gap = index - seen
            if not 0 < gap <= self.max_age:
                continue
            before = self._prev.get(track)
            span = seen - before[0] if before else 0
            if before is None or not 0 < span <= self.max_age:
                out.append(replace(face, carried_from=seen))
                continue
            steps, prev = gap / span, before[1]
            out.append(replace(
                face, carried_from=seen,
                box=_moved(face.box, prev.box, steps),
                keypoints=_moved(face.keypoints, prev.keypoints, steps),
                landmarks=None if face.landmarks is None else _moved(face.landmarks, prev.landmarks, steps),
            ))
        return out
