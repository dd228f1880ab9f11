"""Python SDK for facestream: asyncio and blocking clients, sources and sinks."""
from .api import FaceStreamClient, FaceStreamError, FrameResult, ProcessResult, parse_effects
from .blocking import BlockingClient
from .source import SourceError, VideoSource

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
