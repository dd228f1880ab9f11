"""A session's requests after the config: read, checked, and queued for the decode stage.

The reader stops reading while the decode stage's queue is full (gRPC flow control then slows the
client) instead of buffering without end. After the session fails it reads on and drops what comes
(`discard`), so that a client still writing learns why from the status instead of seeing its writes
fail first.
"""
from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass
from typing import AsyncIterator, Callable

import grpc

from facestream.engines.effects.base import EffectSettings
from facestream.proto import pb

from .budget import ByteBudget
from .config import ServerConfig
from .errors import SessionError, as_session_error
from .metrics import Metrics
from .plan import ConfigError, SessionPlan, effect_settings
from .responses import SessionStats
from .wire import Undecodable

# Packets of pts history used to measure the input frame rate.
_FPS_WINDOW = 30
# Tolerance over max_fps for the measured rate (timestamps jitter).
_FPS_SLACK = 1.1
# INT64_MIN: FFmpeg's AV_NOPTS_VALUE, so no packet may carry it.
NO_PTS = -(2**63)


@dataclass(frozen=True)
class PacketIn:
    data: bytes
    pts: int
    # time.perf_counter() when the packet arrived: real-time budgets and total_ms count from here.
    arrived: float


class EndOfStream:
    """The client's end message: what is still in the pipeline is flushed. Passed on from stage to stage."""


END = EndOfStream()
ToDecode = PacketIn | EffectSettings | EndOfStream


async def next_request(requests: AsyncIterator, timeout: float | None):
    """The next request, TimeoutError after `timeout`; StopAsyncIteration at half-close.

    Through asyncio.wait, so a cancellation always gets through (see StageRunner.call)."""
    task = asyncio.ensure_future(anext(requests))
    try:
        done, _ = await asyncio.wait([task], timeout=timeout)
    except asyncio.CancelledError:
        task.cancel()
        raise
    if not done:
        task.cancel()
        raise asyncio.TimeoutError
    return task.result()


async def discard(requests: AsyncIterator, timeout: float | None, budget: ByteBudget | None = None) -> None:
    """Reads and drops requests until end-of-stream, half-close, a broken call or `timeout` seconds; with a
    `budget`, only while it has room for the largest request the server accepts."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        left = None if deadline is None else deadline - time.monotonic()
        if (left is not None and left <= 0) or (budget is not None and not budget.reserve()):
            return
        req = None
        try:
            req = await next_request(requests, left)
        except Exception:  # the half-close (StopAsyncIteration), or a call that broke
            pass
        finally:
            if budget is not None:
                budget.give_back(budget.largest - _size(req))
        if req is None or req.WhichOneof("msg") == "end":
            return


def _size(req) -> int:
    if req is None:
        return 0
    return req.size if isinstance(req, Undecodable) else req.ByteSize()


class RateCheck:
    """The frame rate measured from the last packets' timestamps must stay under max_fps."""

    def __init__(self, limit: float, time_base: tuple[int, int]) -> None:
        self.limit = limit
        self.time_base = time_base
        self._seconds_per_tick = time_base[0] / time_base[1]
        self._recent: deque[int] = deque(maxlen=_FPS_WINDOW)

    def check(self, pts: int) -> None:
        if not self.limit:
            return
        recent = self._recent
        recent.append(pts)
        if len(recent) < _FPS_WINDOW:
            return
        span = (max(recent) - min(recent)) * self._seconds_per_tick
        # Timestamps that do not advance carry no rate; only a positive span can be measured.
        if span > 0 and (len(recent) - 1) / span > self.limit * _FPS_SLACK:
            fps = (len(recent) - 1) / span
            raise SessionError(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"the input runs at {fps:.1f} frames per second (from the pts of the last {len(recent)} packets "
                f"and time base {self.time_base[0]}/{self.time_base[1]}), over this server's limit of "
                f"{self.limit:g}; lower the frame rate, or set config.input.time_base to the units of Packet.pts",
            )


class Intake:
    """The session's reader: checks each request and queues what the decode stage needs."""

    def __init__(self, plan: SessionPlan, server: ServerConfig, stats: SessionStats, metrics: Metrics | None,
                 queue: asyncio.Queue[ToDecode], fail: Callable[[SessionError], None]) -> None:
        self._server = server
        self._stats = stats
        self._metrics = metrics
        self._queue = queue
        self._fail = fail
        self._rate = RateCheck(server.max_fps, plan.encoder.time_base)

    def unblock(self) -> None:
        """Empties the queue, for a reader waiting on it when the session has failed."""
        while not self._queue.empty():
            self._queue.get_nowait()

    async def read(self, requests: AsyncIterator, failed: asyncio.Future) -> None:
        """Feeds the decode stage until the client half-closes; after a failure (`failed` done), discards
        requests until end-of-stream or half-close."""
        ended = False
        idle = self._server.idle_timeout_seconds or None
        while not failed.done():
            try:
                # After end-of-stream only a stray message or the half-close can come: no idle limit.
                req = await next_request(requests, None if ended else idle)
            except StopAsyncIteration:
                if not ended:
                    self._fail(SessionError(
                        grpc.StatusCode.INVALID_ARGUMENT,
                        f"the stream closed without end-of-stream after {self._stats.packets_in} packets; "
                        "send an end message so the server can flush the last frames",
                    ))
                return
            except asyncio.TimeoutError:
                self._fail(SessionError(
                    grpc.StatusCode.RESOURCE_EXHAUSTED,
                    f"nothing arrived for {idle:g} seconds, this server's idle limit; the session was closed to "
                    "free its slot: keep sending packets, or end the stream and open a new one later",
                ))
                return
            kind = req.WhichOneof("msg")
            if failed.done():
                if kind == "end":
                    return
                break
            try:
                await self._accept(req, kind, ended)
            except (SessionError, ConfigError) as exc:
                self._fail(as_session_error(exc))
            ended = ended or kind == "end"
        await discard(requests, None)

    async def _accept(self, req: pb.ProcessRequest, kind: str | None, ended: bool) -> None:
        if ended:
            raise SessionError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"a {kind or 'empty'} message arrived after end-of-stream; send nothing after end",
            )
        if kind == "packet":
            await self._queue.put(self._packet(req.packet))
        elif kind == "effects_update":
            self._stats.updates += 1
            try:
                settings = effect_settings(req.effects_update.effects, self._stats.updates)
            except ConfigError as exc:
                raise ConfigError(f"effects update {self._stats.updates}: {exc}") from None
            await self._queue.put(settings)
        elif kind == "end":
            await self._queue.put(END)
        else:
            raise _unexpected(req, kind, self._stats)

    def _packet(self, packet: pb.Packet) -> PacketIn:
        size = len(packet.data)
        if size > self._server.max_packet_bytes:
            raise SessionError(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"packet with pts {packet.pts} has {size} bytes, over this server's limit of "
                f"{self._server.max_packet_bytes}; lower the bitrate or resolution",
            )
        if size == 0:
            raise SessionError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"packet with pts {packet.pts} is empty; send one access unit per packet",
            )
        if packet.pts == NO_PTS:
            raise SessionError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"packet {self._stats.packets_in + 1} has pts {NO_PTS}, which codecs read as 'no timestamp'; "
                "give every packet its presentation time",
            )
        self._rate.check(packet.pts)
        self._stats.packets_in += 1
        if self._metrics is not None:
            self._metrics.packets_in.inc()
        return PacketIn(packet.data, packet.pts, time.perf_counter())


def _unexpected(req, kind: str | None, stats: SessionStats) -> SessionError:
    """The error for a request that has no place after the config."""
    if kind == "oversized":
        return SessionError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"message {stats.packets_in + stats.updates + 2} is {req.error}; an effects update is a few KiB",
        )
    if kind == "undecodable":
        return SessionError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"message {stats.packets_in + stats.updates + 2} ({req.size} bytes) is not a valid "
            f"ProcessRequest protobuf ({req.error}); check the client's serialization",
        )
    if kind == "config":
        return SessionError(
            grpc.StatusCode.INVALID_ARGUMENT,
            "a second config arrived; the config is only the first message (use effects_update to change effects)",
        )
    return SessionError(grpc.StatusCode.INVALID_ARGUMENT, "empty request; set one of packet, effects_update or end")
