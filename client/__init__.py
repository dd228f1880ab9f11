"""Python SDK for facestream: asyncio and blocking clients, sources and sinks.

`VideoSource` (PyAV) is imported on first use, so an application that only streams frames (a
GStreamer element, a WebRTC track) does not load FFmpeg through this package."""
from __future__ import annotations

from typing import Any

from .api import FaceStreamClient, FrameResult, ProcessResult
from .blocking import BlockingClient
from .protocol import FaceStreamError, SourceError, parse_effects

__all__ = [
    "BlockingClient",
    "FaceStreamClient",
    "FaceStreamError",
    "FrameResult",
    "ProcessResult",
    "SourceError",
    "VideoSource",
    "parse_effects",
]


def __getattr__(name: str) -> Any:
    if name == "VideoSource":
        from .source import VideoSource

        return VideoSource
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
