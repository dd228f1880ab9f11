"""The real-time drop policy: a session that falls behind sheds work instead of adding latency.

A frame's age counts from its packet's arrival. Older than --realtime-latency-ms when vision would
start (or with the input queue about to fill, which would stop the reader), it is passed through
without vision and effects; older than twice that when it reaches the encoder (or with the encoder's
queue about to fill and the frame passed through anyway), it is dropped: the decoder has already
consumed its packet, so no reference is lost. A lossless session does none of this.
"""
from __future__ import annotations

import asyncio
import time

from facestream.engines.pipeline import FrameInFlight


def _nearly_full(queue: asyncio.Queue) -> bool:
    return queue.qsize() >= max(1, queue.maxsize - 1)


class RealtimePolicy:
    def __init__(self, enabled: bool, latency_ms: float) -> None:
        self.enabled = enabled
        self._pass_budget = latency_ms / 1000.0
        self._drop_budget = 2 * self._pass_budget

    def _age(self, arrived: float) -> float:
        return time.perf_counter() - arrived

    def pass_through(self, arrived: float, backlog: asyncio.Queue) -> bool:
        """Whether the frames of a packet that arrived at `arrived` skip vision and effects; `backlog`: the
        queue the packet came from."""
        return self.enabled and (self._age(arrived) > self._pass_budget or _nearly_full(backlog))

    def skip_effects(self, item: FrameInFlight) -> bool:
        """Whether the frame is already past the drop budget: it will be dropped, so its effects are not
        worth computing."""
        return self.enabled and self._age(item.arrived) > self._drop_budget

    def drop(self, item: FrameInFlight, backlog: asyncio.Queue) -> bool:
        """Whether the frame is dropped instead of encoded; `backlog`: the queue it came from."""
        if not self.enabled:
            return False
        return self._age(item.arrived) > self._drop_budget or (_nearly_full(backlog) and not item.processed)
