"""Python SDK for facestream: asyncio and blocking clients, sources and sinks."""
from .api import FaceStreamClient, FaceStreamError, FrameResult, ProcessResult, parse_effects
from .blocking import BlockingClient
from .source import VideoSource

__all__ = [
    "BlockingClient",
    "FaceStreamClient",
    "FaceStreamError",
    "FrameResult",
    "ProcessResult",
    "VideoSource",
    "parse_effects",
]
