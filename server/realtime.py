"""The real-time drop policy: a session that falls behind sheds work instead of adding latency, without
letting the effects switch off and on.

A frame's age counts from its packet's arrival; the budget is --realtime-latency-ms.
- Vision late: a frame older than the budget when vision would start, or any frame while the input
  queue is about to fill (which would stop the reader), skips vision; so does one expected to be older
  than the budget when its vision ends (its age plus the session's recent vision time: a frame with
  four faces costs four meshes) unless the frame before it skipped vision too, so that under a
  steady load vision runs on every other frame. It still gets its effects, on the faces carried
  from the last frames vision ran on, moved with their motion and marked as carried (at most
  MAX_CARRY_FRAMES past a face's last fresh frame; engines/vision/face.py). Only a frame with no face
  to carry is passed through unprocessed: there is nothing on it to beautify, so nothing flickers.
- Effects late: a frame older than twice the budget when its effects would start is dropped there,
  its effects not computed. Showing it without them would flicker, and one that late is not worth
  the work; a frame within that gets its effects even when they make it later. A session whose
  effects cannot keep up thus loses frames (a lower frame rate), never its look.
- Encoder late: a frame older than twice the budget when it reaches the encoder, or one passed
  through while the encoder's queue is about to fill, is dropped: the decoder has already consumed
  its packet, so no reference is lost.
Every frame is marked in OutputPacket.status, carried faces in Face.carried, and all are counted in
the stats. A lossless session skips, carries and drops nothing for lateness (its only carried faces
are still ones keeping their last mesh: engines/vision/tracker.py).
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
        self._vision_budget = latency_ms / 1000.0
        self._drop_budget = 2 * self._vision_budget

    def _age(self, arrived: float) -> float:
        return time.perf_counter() - arrived

    def skip_vision(self, arrived: float, backlog: asyncio.Queue, vision_s: float = 0.0,
                    just_skipped: bool = False) -> bool:
        """Whether the frames of a packet that arrived at `arrived` skip vision (and take carried faces);
        `backlog`: the queue the packet came from; `vision_s`: what vision is expected to take;
        `just_skipped`: whether the frame before skipped it."""
        if not self.enabled:
            return False
        age = self._age(arrived)
        if age > self._vision_budget or _nearly_full(backlog):
            return True
        # expected to end late: skipped, but never two frames in a row for a forecast alone, so vision
        # still runs on every other frame and the faces carried stay fresh
        return not just_skipped and age + vision_s > self._vision_budget

    def too_late_for_effects(self, item: FrameInFlight) -> bool:
        """Whether the frame is already past the drop budget when its effects would start: it is dropped."""
        return self.enabled and self._age(item.arrived) > self._drop_budget

    def drop(self, item: FrameInFlight, backlog: asyncio.Queue) -> bool:
        """Whether the frame is dropped instead of encoded; `backlog`: the queue it came from."""
        if not self.enabled:
            return False
        return self._age(item.arrived) > self._drop_budget or (_nearly_full(backlog) and not item.processed)
