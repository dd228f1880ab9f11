"""The bot kit: a MediaStreamTrack that yields the beautified frames of any video track.

    add_beautified_track(pc, track, client, effects={"smooth": 0.6})

One facestream session per track (a new one when the picture size changes). Frames are read from
the source as they come; at most `max_in_flight` are at the server at once and newer ones are
dropped meanwhile, so a server that falls behind lowers the frame rate, never raises the latency,
and never lets an unbeautified frame through (the session runs the lossless policy). The source
ending ends the session cleanly; a session that fails ends the track, with the reason in `error`.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable

import av
import grpc
from aiortc import RTCPeerConnection
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from facestream.proto import pb

from ..api import EffectsArg, FaceStreamClient, FaceStreamError, effect_settings
from ..live import LiveSession
from .wire import TIME_BASE, Nv12Wire, make_wire

log = logging.getLogger("facestream.webrtc")

# How long an ending session may take to hand back its last frames and stats before it is cancelled.
ENDING_SECONDS = 2.0


@dataclass
class TrackResult:
    """A processed frame as it was handed on: the server's packet (faces, status) and the added latency."""

    packet: pb.OutputPacket
    effects_version: int  # the track's version of the settings this frame used
    latency_ms: float     # frame received from the source -> processed frame handed on


class TrackStats:
    """Counts and the added latency of the recent frames (the last `window`)."""

    def __init__(self, window: int = 1000) -> None:
        self.frames_in = 0
        self.frames_out = 0
        self.frames_with_faces = 0
        self.frames_dropped = 0       # not sent (server busy), lost, or not handed on (consumer busy)
        self.effects_version = 0      # the settings version of the last frame handed on
        self.latencies_ms: deque[float] = deque(maxlen=window)

    def latency_ms(self) -> dict[str, float | None]:
        ordered = sorted(self.latencies_ms)

        def pick(q: float) -> float | None:
            return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2) if ordered else None

        return {"p50": pick(0.5), "p99": pick(0.99)}

    def as_dict(self) -> dict:
        return {"frames_in": self.frames_in, "frames_out": self.frames_out,
                "frames_with_faces": self.frames_with_faces, "frames_dropped": self.frames_dropped,
                "effects_version": self.effects_version, "latency_ms": self.latency_ms()}


@dataclass
class _Pending:
    pts: int | None   # the source frame's, given back to the processed frame
    time_base: Any
    received: float


@dataclass
class _Processed:
    frame: av.VideoFrame
    result: TrackResult
    received: float


class _Session:
    """One facestream session of the track: its wire and the track version its settings started at."""

    def __init__(self, live: LiveSession, wire: Nv12Wire, base_version: int) -> None:
        self.live, self.wire, self.base_version = live, wire, base_version
        self.reader: asyncio.Task[None] | None = None
        self.ending: asyncio.Task[None] | None = None


class BeautifiedTrack(MediaStreamTrack):
    """The frames of `source`, beautified by the server `client` talks to.

    `effects` are the starting settings, changed with `update_effects`; `on_result` is called with
    each frame's TrackResult (faces, settings version, latency); `faces` holds the last frame's.
    `wire` is "nv12" or "h264" (see wire.py); `fps` is the rate declared to the server.
    """

    kind = "video"

    def __init__(self, source: MediaStreamTrack, client: FaceStreamClient, *, effects: EffectsArg = None,
                 wire: str = "nv12", fps: float = 30.0, max_in_flight: int = 2, stall_seconds: float = 10.0,
                 on_result: Callable[[TrackResult], None] | None = None) -> None:
        super().__init__()
        make_wire(wire, 2, 2)  # an unknown wire fails here, not at the first frame
        self.source = source
        self.stats = TrackStats()
        self.faces: list[pb.Face] = []
        self.error: FaceStreamError | None = None
        self.session_stats: pb.SessionStats | None = None  # of the last session that ended cleanly
        self._client, self._wire, self._fps = client, wire, fps
        self._max_in_flight, self._stall_seconds, self._on_result = max_in_flight, stall_seconds, on_result
        self._effects = effect_settings(effects)
        self._version = 0
        self._session: _Session | None = None
        self._stream_lock = asyncio.Lock()   # session switches and settings updates
        self._pending: dict[int, _Pending] = {}
        self._out: asyncio.Queue[_Processed | None] = asyncio.Queue()
        self._last_pts = -1
        self._clock0 = time.perf_counter()
        self._pump: asyncio.Task[None] | None = None
        self._closing: asyncio.Task[None] | None = None

    @property
    def effects_version(self) -> int:
        """The version the last `update_effects` asked for (0: the starting settings)."""
        return self._version

    async def update_effects(self, effects: EffectsArg) -> int:
        """New settings from the next frame on; returns the version frames will acknowledge
        (in TrackResult.effects_version and stats.effects_version)."""
        async with self._stream_lock:
            self._effects = effect_settings(effects)
            self._version += 1
            if self._session is not None:
                await self._session.live.update_effects(self._effects)
            return self._version

    async def recv(self) -> av.VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._pump is None:
            self._pump = asyncio.create_task(self._run())
        item = await self._out.get()
        if item is None:
            self.stop()
            raise MediaStreamError
        result = item.result
        result.latency_ms = (time.perf_counter() - item.received) * 1000.0
        self.stats.latencies_ms.append(result.latency_ms)
        self.stats.frames_out += 1
        self.stats.frames_with_faces += bool(result.packet.faces)
        self.stats.effects_version = result.effects_version
        self.faces = list(result.packet.faces)
        if self._on_result is not None:
            self._on_result(result)
        return item.frame

    def stop(self) -> None:
        """Ends the track; its session ends cleanly if the server answers within ENDING_SECONDS,
        else it is cancelled."""
        if self.readyState == "live":
            super().stop()
            self._closing = asyncio.ensure_future(self._close())

    async def close(self) -> None:
        """Stops the track and waits until its session has ended."""
        self.stop()
        if self._closing is not None:
            await self._closing

    async def _close(self) -> None:
        if self._pump is not None:
            self._pump.cancel()
            await asyncio.gather(self._pump, return_exceptions=True)
        if self._session is not None:
            await self._ending(self._session)

    # the pump: source frames to the server; the session's reader queues the processed frames for recv()

    async def _run(self) -> None:
        try:
            while True:
                try:
                    frame = await self.source.recv()
                except MediaStreamError:
                    break
                if not isinstance(frame, av.VideoFrame):
                    raise TypeError(f"the source track gave {type(frame).__name__}, not video frames")
                await self._feed(frame)
            await self._finish_session()
        except FaceStreamError as exc:
            self._fail(exc)
            return
        except Exception as exc:  # a frame this side cannot convert or encode: end the track, say why
            log.exception("webrtc track failed")
            self._fail(FaceStreamError(grpc.StatusCode.INTERNAL, f"the gateway failed: {exc}"))
            return
        self._out.put_nowait(None)

    async def _feed(self, frame: av.VideoFrame) -> None:
        received = time.perf_counter()
        self.stats.frames_in += 1
        session = await self._session_for(frame.width, frame.height)
        if len(self._pending) >= self._max_in_flight:
            self._check_stall(received)
            self.stats.frames_dropped += 1
            return
        pts = max(self._last_pts + 1, round((received - self._clock0) / TIME_BASE))
        self._last_pts = pts
        self._pending[pts] = _Pending(frame.pts, frame.time_base, received)
        data = session.wire.encode(frame)
        async with self._stream_lock:  # one write at a time on the stream
            await session.live.send(data, pts)

    def _check_stall(self, now: float) -> None:
        oldest = min(p.received for p in self._pending.values())
        if now - oldest > self._stall_seconds:
            raise FaceStreamError(grpc.StatusCode.DEADLINE_EXCEEDED,
                                  f"the server returned no frame for {self._stall_seconds:g} s")

    async def _session_for(self, width: int, height: int) -> _Session:
        session = self._session
        if session is not None and (session.wire.width, session.wire.height) == (width, height):
            return session
        await self._finish_session()
        async with self._stream_lock:  # an update meanwhile goes into the config or after the start
            wire = make_wire(self._wire, width, height)
            live = self._client.live(wire.config(self._effects, self._fps))
            try:
                started = await live.start()
            except FaceStreamError:
                await live.close()
                raise
            self._session = session = _Session(live, wire, self._version)
            session.reader = asyncio.create_task(self._read(session))
        log.info("session %s: %dx%d over %s", started.session_id, width, height, wire.name)
        return session

    async def _finish_session(self) -> None:
        if self._session is not None:
            await asyncio.shield(self._ending(self._session))  # a stop() meanwhile waits for it too

    def _ending(self, session: _Session) -> asyncio.Task[None]:
        if session.ending is None:
            session.ending = asyncio.ensure_future(self._end_session(session))
        return session.ending

    async def _end_session(self, session: _Session) -> None:
        """Ends `session` and waits until its last frames are queued and its stats have come; cancels
        it where that takes longer than ENDING_SECONDS or the session has failed."""
        try:
            async with asyncio.timeout(ENDING_SECONDS):
                async with self._stream_lock:
                    await session.live.end()
                if session.reader is not None:
                    await asyncio.shield(session.reader)
            self.session_stats = session.live.stats
        except Exception as exc:  # a failed session has said why (self.error); a slow one is cancelled
            log.debug("session ended without its stats: %r", exc)
        finally:
            if self._session is session:
                self._session = None
            if session.reader is not None:
                session.reader.cancel()
            await session.live.close()

    async def _read(self, session: _Session) -> None:
        try:
            async for result in session.live.results():
                self._deliver(session, result.packet)
        except FaceStreamError as exc:
            self._fail(exc)

    def _deliver(self, session: _Session, packet: pb.OutputPacket) -> None:
        pending = self._pending.pop(packet.pts, None)
        if pending is None or self.error is not None:
            return
        # frames come back in the order they went; older ones still waiting are lost (a failover)
        for lost in [pts for pts in self._pending if pts < packet.pts]:
            del self._pending[lost]
            self.stats.frames_dropped += 1
        frame = session.wire.decode(packet) if packet.status == pb.FRAME_PROCESSED else None
        if frame is None:  # never an unbeautified frame
            self.stats.frames_dropped += 1
            return
        frame.pts, frame.time_base = pending.pts, pending.time_base
        if self._out.qsize() >= 2:  # the consumer is behind: hand on the newest frames
            self._out.get_nowait()
            self.stats.frames_dropped += 1
        result = TrackResult(packet, session.base_version + packet.effects_version, 0.0)
        self._out.put_nowait(_Processed(frame, result, pending.received))

    def _fail(self, exc: FaceStreamError) -> None:
        if self.error is None and self.readyState == "live":
            log.warning("facestream session failed: %s", exc)
            self.error = exc
            self._out.put_nowait(None)


def add_beautified_track(pc: RTCPeerConnection, source: MediaStreamTrack, client: FaceStreamClient,
                         **options: Any) -> BeautifiedTrack:
    """Sends `source` beautified on `pc` (options as BeautifiedTrack's). Should the session fail,
    the sender stops with an RTCP BYE, so the far end's track ends rather than freezes."""
    track = BeautifiedTrack(source, client, **options)
    sender = pc.addTrack(track)
    tasks: set[asyncio.Task] = set()

    def on_ended() -> None:
        if track.error is not None:
            task = asyncio.ensure_future(sender.stop())
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    track.on("ended", on_ended)
    return track
