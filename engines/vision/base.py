"""The vision stage interface: find and track faces in NV12 frames."""
from __future__ import annotations

from typing import Protocol

from ..frame import Frame
from .face import Face


class Vision(Protocol):
    """Per-session face finder; keeps tracking state between calls, so one per session."""

    def process(self, frame: Frame) -> list[Face]:
        """Faces in `frame`, with stable IDs across consecutive calls."""
        ...

    def close(self) -> None: ...

