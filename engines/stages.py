"""The names of the pipeline's stages, of a frame's timings and of the queues between a session's tasks.

Clients, dashboards and logs read these strings (stage placements, `StageTimings` fields `<name>_ms`,
the `stage`, `queue` and `status` labels of the metrics), so they are defined here once.
"""
from __future__ import annotations

from enum import StrEnum


class Stage(StrEnum):
    """The pipeline's stages, in the order a frame goes through them."""

    DECODE = "decode"
    VISION = "vision"
    EFFECTS = "effects"
    ENCODE = "encode"


# A frame's time besides the stages' own work: waiting in queues, and from its packet's arrival to its response.
QUEUED = "queue"
TOTAL = "total"
# Every timing a frame reports, in milliseconds.
TIMINGS: tuple[str, ...] = (*Stage, QUEUED, TOTAL)


class Queue(StrEnum):
    """The bounded queues between a session's tasks, named as in the `facestream_queue_depth` metric."""

    TO_DECODE = "in"        # packets, effect updates and the end, from the reader
    TO_EFFECTS = "mid"      # decoded frames with their faces
    TO_ENCODE = "effects"   # frames with their effects applied
    TO_SEND = "out"         # encoded (or dropped) frames, in order, for the responses


class FrameStatus(StrEnum):
    """What became of a frame; the values are the `status` labels of `facestream_frames_out`."""

    PROCESSED = "processed"
    PASSED_THROUGH = "passed_through"  # skipped vision and effects to keep up (real-time policy)
    DROPPED = "dropped"                # not encoded: too late to be worth it (real-time policy)
