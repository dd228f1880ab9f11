"""A Process stream that outlives its server: when the server fails, the session is opened again on
another one and the stream resumes there at the next frame a fresh session can start with.

What the failed server had not answered is lost, and so is every frame sent after it until a
keyframe (raw pictures always are); each move is reported as a `Failover` naming those frames.
Frame indices and settings versions keep counting across the move, as if one server had run the
whole stream: the new session starts with the settings in force, its frame 0 is the stream's
frame at the keyframe it resumed at.
"""
from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from typing import AsyncIterator, Awaitable, Callable, Sequence

import grpc

from facestream.proto import pb

from .keyframes import is_keyframe
from .protocol import FaceStreamError, stream_error
from .targets import Endpoints, Opened

# Codes that say the server (not the stream) failed: it vanished, or it cannot go on with the session.
RESUMABLE = (grpc.StatusCode.UNAVAILABLE,)
# What grpc.aio reports instead of UNAVAILABLE when a write meets a connection the server's death just
# reset (grpc/grpc#36066): the status is replaced with this INTERNAL.
_CORE_WRITE_FAILURE = "Internal error from Core"


def _as_lost(error: FaceStreamError) -> FaceStreamError:
    """The error as the move reports it: grpc.aio's write-failure INTERNAL is the server's loss."""
    if error.code == grpc.StatusCode.INTERNAL and error.message == _CORE_WRITE_FAILURE:
        return FaceStreamError(grpc.StatusCode.UNAVAILABLE, f"the connection to the server broke ({error.message})")
    return error
_END = pb.ProcessRequest(end=pb.EndOfStream())


@dataclass
class Failover:
    """A stream moved to another server because its server failed.

    `lost`: the pts of the frames that will not come back, in the order they were sent (those the
    failed server had not answered, then those sent before a frame the new session could start
    with). `resumed_at`: the pts of that frame; None while the stream waits for it, and when the
    stream ended first."""

    error: FaceStreamError
    failed: str
    target: str
    session_id: str
    lost: list[int] = field(default_factory=list)
    resumed_at: int | None = None


@dataclass
class _Route:
    """The session a stream runs on now; its frame 0 and settings version 0 in the stream's numbering."""

    opened: Opened
    version_offset: int
    index_offset: int = 0
    ended: bool = False      # END was sent on it
    finished: bool = False   # its stats came back

    @property
    def call(self):
        return self.opened.call


OnFailover = Callable[[Failover], Awaitable[None] | None]


class ResumableStream:
    """One stream over as many sessions as its servers' failures take (none, usually).

    `within`: how long a stream whose server failed looks for another server; 0 never moves it (the
    error is raised). `on_failover` is called with each move once the stream has resumed (or ended)."""

    def __init__(self, endpoints: Endpoints, metadata: Sequence[tuple[str, str]], config: pb.SessionConfig,
                 within: float, on_failover: OnFailover | None = None) -> None:
        self._endpoints = endpoints
        self._metadata = metadata
        self._config = pb.SessionConfig()
        self._config.CopyFrom(config)
        self._within = within
        self._on_failover = on_failover
        self._route: _Route | None = None
        self._lock = asyncio.Lock()
        self._gap: Failover | None = None       # a move waiting for a keyframe
        self._broken: FaceStreamError | None = None
        self._packets = 0                        # packets given to send(), sent or lost
        self._ended = False
        self._closed = False
        # pts -> when it was sent, of the frames the current session has not answered yet
        self.in_flight: dict[int, float] = {}
        self.failovers: list[Failover] = []
        self.effects_version = 0
        self.stats: pb.SessionStats | None = None

    @property
    def route(self) -> _Route:
        if self._route is None:
            raise RuntimeError("the session has not started: call start() first")
        return self._route

    @property
    def started(self) -> pb.SessionStarted | None:
        return self._route.opened.started if self._route else None

    @property
    def target(self) -> str:
        """The target of the server the stream runs on now."""
        return self.route.opened.endpoint.target

    async def start(self) -> pb.SessionStarted:
        """Opens the session on the first server that takes it; raises FaceStreamError if none does."""
        self._route = _Route(await self._endpoints.open(self._config, self._metadata), version_offset=0)
        return self._route.opened.started

    async def send(self, data: bytes, pts: int, keyframe: bool | None = None) -> None:
        """One packet. After a move, packets are dropped (and listed as lost) until one a fresh session
        can start with: `keyframe` says whether this is one (default: found from the data)."""
        index = self._packets
        self._packets += 1
        request = pb.ProcessRequest(packet=pb.Packet(data=data, pts=pts))
        while True:
            await self._settled()
            gap = self._gap
            if gap is not None:
                if not self._starts_session(gap, data, keyframe):
                    if pts not in gap.lost:
                        gap.lost.append(pts)
                    return
                await self._resume(gap, pts, index)
            self.in_flight[pts] = time.perf_counter()
            if await self._write(request):
                return

    async def update_effects(self, settings: pb.EffectSettings) -> int:
        """New settings from the next frame on; a session opened after this starts with them."""
        await self._settled()
        self._config.effects.CopyFrom(settings)
        self.effects_version += 1
        await self._write(pb.ProcessRequest(effects_update=pb.EffectsUpdate(effects=settings)))
        return self.effects_version

    async def end(self) -> None:
        """No more packets: END on the current session (and on any session a move opens later)."""
        self._ended = True
        await self._end_route()

    async def packets(self) -> AsyncIterator[tuple[pb.OutputPacket, float | None]]:
        """Every output packet with the time it was sent (None if unknown), from whichever session
        runs the stream, until it ends; raises FaceStreamError when it ends with an error no move mends."""
        while True:
            route = self.route
            try:
                response = await route.call.read()
            except grpc.aio.AioRpcError as exc:
                if route is not self._route:
                    continue
                if route.finished:
                    return  # the server went away after the stats: the stream is complete
                await self._recover(route, FaceStreamError(exc.code(), exc.details() or ""))
                continue
            except asyncio.CancelledError:
                if route is self._route or _cancelling():
                    raise
                continue  # the failed session's call was cancelled by the move
            if route is not self._route:
                continue  # a late answer of a failed server: already counted lost
            if response is grpc.aio.EOF:
                return
            packet = await self._take(route, response)
            if packet is not None:
                yield packet, self.in_flight.pop(packet.pts, None)

    async def _take(self, route: _Route, response: pb.ProcessResponse) -> pb.OutputPacket | None:
        """The packet of a response, numbered as the stream's; stats are kept, an error mended or raised."""
        kind = response.WhichOneof("msg")
        if kind == "error":
            await self._recover(route, stream_error(response.error))
        elif kind == "stats":
            self.stats = response.stats
            route.finished = True
        elif kind == "packet":
            packet = response.packet
            packet.frame_index += route.index_offset
            packet.effects_version += route.version_offset
            return packet
        return None

    def close(self) -> None:
        """Ends the stream at once (frames still in flight are not delivered)."""
        self._closed = True
        if self._route is not None:
            self._route.call.cancel()

    def _starts_session(self, gap: Failover, data: bytes, keyframe: bool | None) -> bool:
        found = keyframe if keyframe is not None else is_keyframe(self._config.input.codec, data)
        if found is None:
            codec = pb.Codec.Name(self._config.input.codec).removeprefix("CODEC_")
            self._broken = FaceStreamError(gap.error.code, f"{gap.error.message}; the stream cannot resume on "
                                           f"{gap.target}: pass keyframe= to send() for {codec} input")
            raise self._broken
        return found

    async def _settled(self) -> None:
        """Waits for a move in progress."""
        if self._lock.locked():
            async with self._lock:
                pass

    async def _write(self, request: pb.ProcessRequest) -> bool:
        """Sends on the current session; False when the stream moved meanwhile (the request went to
        the failed server, or nowhere)."""
        route = self.route
        try:
            await route.call.write(request)
        except (grpc.aio.AioRpcError, asyncio.InvalidStateError, asyncio.CancelledError) as exc:
            if isinstance(exc, asyncio.CancelledError) and (route is self._route or _cancelling()):
                raise
            if route is self._route:
                code, details = await route.call.code(), await route.call.details()
                await self._fail_over(route, FaceStreamError(code, details or "the session has ended"))
        return route is self._route

    async def _end_route(self) -> None:
        while True:
            await self._settled()
            if self._gap is not None:
                await self._report(self._gap)  # the stream ended before a keyframe came
            route = self.route
            if route.ended:
                return
            route.ended = True
            if await self._write(_END):
                with contextlib.suppress(grpc.aio.AioRpcError, asyncio.InvalidStateError):
                    await route.call.done_writing()
                return

    async def _recover(self, route: _Route, error: FaceStreamError) -> None:
        await self._fail_over(route, error)
        if self._ended:
            await self._end_route()

    async def _fail_over(self, route: _Route, error: FaceStreamError) -> None:
        """Moves the stream off `route`, whose server failed with `error`; raises `error` when the
        stream cannot move (another error, moves off, closed) and a FaceStreamError saying so when no
        server takes it in time."""
        async with self._lock:
            if route is not self._route:
                return  # moved already
            if self._broken is not None:
                raise self._broken
            error = _as_lost(error)
            if error.code not in RESUMABLE or self._within <= 0 or self._closed:
                raise error
            try:
                opened = await self._endpoints.reopen(self._config, self._metadata, route.opened.endpoint,
                                                      self._within)
            except FaceStreamError as exc:
                self._broken = FaceStreamError(error.code, f"{error.message}; no other server took the stream "
                                               f"within {self._within:g} s: {exc.message}")
                raise self._broken from None
            route.call.cancel()
            if self._closed:  # closed while the new session was being opened
                opened.call.cancel()
                raise error
            gap = Failover(error, route.opened.endpoint.target, opened.endpoint.target,
                           opened.started.session_id, lost=list(self.in_flight))
            self.in_flight.clear()
            self._route = _Route(opened, version_offset=self.effects_version)
            self.failovers.append(gap)
            self._gap = gap

    async def _resume(self, gap: Failover, pts: int, index: int) -> None:
        if pts in gap.lost:
            gap.lost.remove(pts)  # sent to the failed server, sent again now
        gap.resumed_at = pts
        self.route.index_offset = index
        await self._report(gap)

    async def _report(self, gap: Failover) -> None:
        self._gap = None
        if self._on_failover is not None:
            ret = self._on_failover(gap)
            if asyncio.iscoroutine(ret):
                await ret


def _cancelling() -> bool:
    """Whether the running task itself is being cancelled (not just a call it waited on)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0
