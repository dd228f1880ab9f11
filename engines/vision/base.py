"""The vision stage interface (find and track faces in NV12 frames) and the parts it is made of.

A vision stage is a FaceTracker (tracker.py) given a detector runner, a mesh runner and a maker
of model inputs; the CPU and GPU stages differ only in those parts. Arrays are NumPy on the host
or CuPy on the device (`Any` below); model outputs always come back to the host as NumPy.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

import numpy as np

from ..frame import Frame
from ..models.specs import ModelSpec
from .face import Face


class Vision(Protocol):
    """Per-session face finder; keeps tracking state between calls, so one per session."""

    def process(self, frame: Frame) -> list[Face]:
        """Faces in `frame`, with stable IDs across consecutive calls."""
        ...

    def close(self) -> None: ...


class ModelRunner(Protocol):
    """One model (`spec`) on a batch of inputs.

    `run` takes an (n, 3, S, S) float32 batch where the runner's engine reads it (host or device)
    and returns the outputs named by `spec.outputs`, each with n rows, as host NumPy arrays: for
    a detector its scores, boxes and keypoints after the in-graph decoding and suppression, for
    the mesh its landmarks and face flag. `close` releases what the runner holds for its caller.
    """

    spec: ModelSpec

    def run(self, batch: Any) -> dict[str, np.ndarray]: ...

    def close(self) -> None: ...


class ModelInputMaker(Protocol):
    """Cuts one model input, (1, 3, size, size) `rgb01 * scale + offset`, from NV12 planes.

    The input may be a buffer the maker reuses: one maker per model call in flight.
    """

    size: int

    def letterbox(self, y: Any, uv: Any) -> tuple[Any, tuple[float, float, float]]:
        """The whole frame scaled to fit and centred; (input, (scale, pad_x, pad_y)) with
        frame_x = (model_x - pad_x) / scale."""
        ...

    def affine(self, y: Any, uv: Any, m: np.ndarray) -> Any:
        """The crop through the 2x3 affine `m` (model pixel coordinates -> frame coordinates)."""
        ...


# (size, scale, offset) -> a new input maker for a model of that input
InputMakerFactory = Callable[[int, float, float], ModelInputMaker]


class Detection(NamedTuple):
    """A face the detector found, in frame pixels."""

    box: np.ndarray          # (x0, y0, x1, y1)
    keypoints: np.ndarray    # (6, 2), in Face.keypoints order
    score: float
