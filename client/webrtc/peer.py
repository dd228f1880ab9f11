"""One browser (or bot) connected to the gateway: its peer connection, the beautified track sent back
to it, and the control channel that carries settings one way and status the other.

Control messages are JSON objects with a "type":
    page -> gateway   {"type": "effects", "effects": {"smooth": 0.6, ...}}
    gateway -> page   {"type": "effects", "version": N}                  the update was sent as version N
                      {"type": "status", "frames_in": ..., "frames_out": ..., "faces": ...,
                       "effects_version": N, "latency_ms": {"p50": ..., "p99": ...}, "fps": ...}
                      {"type": "error", "message": "..."}                then the gateway hangs up
"""
from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Callable, Mapping

from aiortc import RTCDataChannel, RTCPeerConnection
from aiortc.mediastreams import MediaStreamTrack

from ..api import FaceStreamClient, FaceStreamError
from .track import BeautifiedTrack, TrackStats, add_beautified_track

log = logging.getLogger("facestream.webrtc")

STATUS_SECONDS = 0.5
# Time for the error message to reach the page before the connection closes.
GOODBYE_SECONDS = 0.5


class Peer:
    """A peer connection whose video comes back beautified; `on_closed` runs once when it is over."""

    def __init__(self, pc: RTCPeerConnection, client: FaceStreamClient, *, effects: Mapping[str, float],
                 wire: str, on_closed: Callable[[Peer], None]) -> None:
        self.id = uuid.uuid4().hex[:12]
        self.pc = pc
        self.track: BeautifiedTrack | None = None
        self.channel: RTCDataChannel | None = None
        self.started = time.time()
        self._client, self._effects, self._wire, self._on_closed = client, dict(effects), wire, on_closed
        self._tasks: set[asyncio.Task] = set()
        self._closed = False
        pc.on("track", self._on_track)
        pc.on("datachannel", self._on_datachannel)
        pc.on("connectionstatechange", self._on_state)

    def _spawn(self, coro) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind != "video" or self.track is not None:
            return
        self.track = add_beautified_track(self.pc, track, self._client, effects=self._effects, wire=self._wire)
        self.track.on("ended", self._on_track_ended)

    def _on_track_ended(self) -> None:
        if self.track is not None and self.track.error is not None:
            self._spawn(self.fail(f"the facestream session ended: {self.track.error}"))

    def _on_datachannel(self, channel: RTCDataChannel) -> None:
        self.channel = channel
        channel.on("message", self._on_message)
        self._spawn(self._report())

    def _on_message(self, message: str | bytes) -> None:
        try:
            request = json.loads(message)
            if request["type"] != "effects":
                raise ValueError(request["type"])
            effects = {str(k): float(v) for k, v in request["effects"].items()}
        except (ValueError, KeyError, TypeError, AttributeError):
            self.send({"type": "error", "message": f"not a control message: {str(message)[:200]}"})
            return
        if self.track is not None:
            self._spawn(self._update(effects))

    async def _update(self, effects: dict[str, float]) -> None:
        assert self.track is not None
        try:
            version = await self.track.update_effects(effects)
        except FaceStreamError as exc:
            await self.fail(f"the settings could not be sent: {exc}")
            return
        self.send({"type": "effects", "version": version})

    def send(self, message: dict) -> None:
        if self.channel is not None and self.channel.readyState == "open":
            self.channel.send(json.dumps(message))

    async def _report(self) -> None:
        last_frames, last_time = 0, time.perf_counter()
        while not self._closed:
            await asyncio.sleep(STATUS_SECONDS)
            if self.track is None:
                continue
            stats, now = self.track.stats, time.perf_counter()
            fps = (stats.frames_out - last_frames) / (now - last_time)
            last_frames, last_time = stats.frames_out, now
            self.send({"type": "status", **stats.as_dict(), "faces": len(self.track.faces), "fps": round(fps, 1)})

    def summary(self) -> dict:
        """The /stats entry of this connection."""
        stats = (self.track.stats if self.track else TrackStats()).as_dict()
        return {"id": self.id, "state": self.pc.connectionState, "seconds": round(time.time() - self.started, 1),
                "wire": self._wire, **stats}

    async def fail(self, message: str) -> None:
        """Tells the page what went wrong, then hangs up."""
        log.warning("peer %s: %s", self.id, message)
        self.send({"type": "error", "message": message})
        await asyncio.sleep(GOODBYE_SECONDS)
        await self.close()

    async def _on_state(self) -> None:
        if self.pc.connectionState in ("failed", "closed"):
            await self.close()

    async def close(self) -> None:
        """Hangs up; the track's session ends with it."""
        if self._closed:
            return
        self._closed = True
        await self.pc.close()  # the browser's track ends, and with it the session, cleanly
        if self.track is not None:
            await self.track.close()
        for task in list(self._tasks):
            if task is not asyncio.current_task():
                task.cancel()
        self._on_closed(self)
        log.info("peer %s closed", self.id)
