"""One Process stream: a session that moves packets through the pipeline with bounded queues.

Four tasks per session: the reader takes requests off the stream, the front end decodes and
finds faces, the effects stage applies the beauty effects, the back end encodes. Each hands
on through a bounded queue, so a session that falls behind stops reading (gRPC flow control then slows the
client) instead of buffering without end. The blocking stage calls run in worker threads,
never on the event loop, so one session's work does not stall another's I/O.
"""
from __future__ import annotations

import asyncio
import contextvars
import logging
import time
import uuid
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from typing import AsyncIterator

import grpc

from facestream.engines.backend import CpuBackend, GpuBackend
from facestream.engines.codec.base import CodecError
from facestream.engines.pipeline import BackEnd, EffectsStage, FrameTooLarge, FrontEnd, ProcessedFrame
from facestream.proto import pb

from .config import ServerConfig
from .metrics import Metrics
from .convert import ConfigError, SessionPlan, effect_settings, output_packet, stage_messages, timings_message

log = logging.getLogger("facestream.session")

_END = object()

# Frames of pts history used to measure the input frame rate.
_FPS_WINDOW = 30
# Tolerance over max_fps for the measured rate (timestamps jitter).
_FPS_SLACK = 1.1


class SessionError(Exception):
    """Ends the stream with `code` and a message for the client."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class _Packet:
    data: bytes
    pts: int
    arrived: float


@dataclass
class _Stats:
    packets_in: int = 0
    frames_decoded: int = 0
    frames_out: int = 0
    passed_through: int = 0
    dropped: int = 0
    faces: int = 0
    updates: int = 0
    timing_sums: dict[str, float] = field(default_factory=dict)


class Session:
    def __init__(
        self, plan: SessionPlan, backend: CpuBackend | GpuBackend, server: ServerConfig, executor: Executor,
        session_id: str | None = None, metrics: Metrics | None = None, stuck: set[Future] | None = None,
    ) -> None:
        self.id = session_id or uuid.uuid4().hex[:12]
        self.metrics = metrics
        self.plan = plan
        tb = plan.encoder.time_base
        self._seconds_per_tick = tb[0] / tb[1]
        self._recent_pts: list[int] = []
        # Real-time policy budgets, in seconds of frame age (since the packet arrived).
        self._pass_budget = server.realtime_latency_ms / 1000.0
        self._drop_budget = 2 * self._pass_budget
        self.backend = backend
        self.server = server
        self.executor = executor
        self._inflight: set[Future] = set()
        # The server's stage calls past --stage-timeout-seconds (see FaceStreamService.stuck).
        self._stuck = stuck if stuck is not None else set()
        self._abandoned = False
        self._closed = False
        self._reader: asyncio.Task | None = None
        self.stats = _Stats()
        self.started = time.monotonic()
        self._front = FrontEnd(
            backend.decoder(plan.input_codec, plan.width, plan.height),
            backend.vision(server.max_faces, plan.encoder.frame_rate[0] / plan.encoder.frame_rate[1]),
            plan.effects,
            plan.return_faces,
            server.max_width,
            server.max_height,
            (plan.width, plan.height),
        )
        self._effects = EffectsStage(backend.effects())
        self._back = BackEnd(backend.encoder, plan.encoder)
        depth = max(1, server.queue_depth)
        self._in: asyncio.Queue = asyncio.Queue(depth)
        self._mid: asyncio.Queue = asyncio.Queue(depth)
        self._fx: asyncio.Queue = asyncio.Queue(depth)
        self._out: asyncio.Queue = asyncio.Queue(depth)

    def started_message(self, config: pb.SessionConfig) -> pb.ProcessResponse:
        return pb.ProcessResponse(
            started=pb.SessionStarted(
                session_id=self.id,
                config=config,
                backend=pb.BACKEND_CPU if self.backend.name == "cpu" else pb.BACKEND_GPU,
                stages=stage_messages(self.backend.placements()),
            )
        )

    async def _call(self, what: str, fn, *args):
        """Runs a blocking stage call in a worker thread, in a copy of this task's context (so log
        records carry the session ID). Cancelling the caller does not stop the thread, so calls
        are tracked until they finish: `close` waits for them before releasing the codecs.

        A call not done after --stage-timeout-seconds ends the session instead of holding it, and
        the client, until their deadline: UNAVAILABLE when it never got a worker (the server is
        overloaded), INTERNAL when it is running (a codec stuck on a crafted stream)."""
        ctx = contextvars.copy_context()
        future = self.executor.submit(ctx.run, fn, *args)
        self._inflight.add(future)
        future.add_done_callback(self._inflight.discard)
        result = asyncio.wrap_future(future)
        limit = self.server.stage_timeout_seconds
        # asyncio.wait, not wait_for: wait_for (3.11) can swallow a cancellation that arrives as
        # the call finishes, and a stage task that misses its cancellation keeps the session open.
        try:
            done, _ = await asyncio.wait([result], timeout=limit if limit > 0 else None)
        except asyncio.CancelledError:
            future.cancel()  # a call still queued never runs for a session that is gone
            raise
        if done:
            return result.result()
        if future.cancel():
            raise SessionError(
                grpc.StatusCode.UNAVAILABLE,
                f"{what} waited {limit:g} seconds for a free worker: this server is overloaded; "
                "retry later or use another server",
            )
        self._abandon([future])
        raise SessionError(
            grpc.StatusCode.INTERNAL,
            f"{what} took longer than {limit:g} seconds (this server's --stage-timeout-seconds) and the "
            "session was ended; if the stream plays elsewhere, report it together with its packets",
        )

    def _abandon(self, futures) -> None:
        """Leaves stage calls that do not return to themselves, with the session's codecs."""
        self._abandoned = True
        for f in futures:
            if f not in self._stuck and not f.done():
                self._stuck.add(f)
                f.add_done_callback(self._stuck.discard)
                if self.metrics is not None:
                    self.metrics.stuck_calls.inc()

    async def close(self) -> None:
        """Releases decoder, vision, encoder; safe to call more than once, and from any path.

        Stage calls past --stage-timeout-seconds are abandoned with the codecs (closing them
        under a running call could crash the process); the log says so."""
        if self._closed:
            return
        self._closed = True
        if self._inflight and not self._abandoned:
            limit = self.server.stage_timeout_seconds
            _, running = await asyncio.wait([asyncio.wrap_future(f) for f in list(self._inflight)],
                                            timeout=limit if limit > 0 else None)
            if running:
                self._abandon([f for f in list(self._inflight) if not f.done()])
        if self._abandoned:
            log.error("session %s: stage calls still running past --stage-timeout-seconds; the session's "
                      "codecs are left to them and a worker thread stays busy until they return", self.id)
            return
        # Not on the stage workers: when they are all busy or stuck, the slot must still be freed.
        await asyncio.to_thread(self._close)

    def queue_depths(self) -> dict[str, int]:
        return {"in": self._in.qsize(), "mid": self._mid.qsize(), "effects": self._fx.qsize(), "out": self._out.qsize()}

    def _fail(self, exc: SessionError) -> None:
        """Marks the session failed (first failure wins) and unblocks a reader waiting on a full queue."""
        if not self._failure.done():
            self._failure.set_result(exc)
        while not self._in.empty():
            self._in.get_nowait()

    async def _read(self, requests: AsyncIterator[pb.ProcessRequest]) -> None:
        """Feeds the front end; after a failure, discards requests until end-of-stream or half-close."""
        ended = False
        idle = self.server.idle_timeout_seconds or None
        while True:
            try:
                # After end-of-stream only a stray message or the half-close can come: no idle limit.
                req = await _next(requests, None if ended else idle)
            except StopAsyncIteration:
                break
            except asyncio.TimeoutError:
                self._fail(SessionError(
                    grpc.StatusCode.RESOURCE_EXHAUSTED,
                    f"nothing arrived for {idle:g} seconds, this server's idle limit; the session was closed to "
                    "free its slot: keep sending packets, or end the stream and open a new one later",
                ))
                return
            kind = req.WhichOneof("msg")
            if self._failure.done():
                if kind == "end":
                    return
                continue
            try:
                await self._accept(req, kind, ended)
            except SessionError as exc:
                self._fail(exc)
            ended = ended or kind == "end"
        if not ended:
            self._fail(SessionError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"the stream closed without end-of-stream after {self.stats.packets_in} packets; "
                "send an end message so the server can flush the last frames",
            ))

    async def _accept(self, req: pb.ProcessRequest, kind: str | None, ended: bool) -> None:
        if ended:
            raise SessionError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"a {kind or 'empty'} message arrived after end-of-stream; send nothing after end",
            )
        if kind == "packet":
            size = len(req.packet.data)
            if size > self.server.max_packet_bytes:
                raise SessionError(
                    grpc.StatusCode.RESOURCE_EXHAUSTED,
                    f"packet with pts {req.packet.pts} has {size} bytes, over this server's limit of "
                    f"{self.server.max_packet_bytes}; lower the bitrate or resolution",
                )
            if size == 0:
                raise SessionError(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"packet with pts {req.packet.pts} is empty; send one access unit per packet",
                )
            self._check_rate(req.packet.pts)
            self.stats.packets_in += 1
            if self.metrics is not None:
                self.metrics.packets_in.inc()
            await self._in.put(_Packet(req.packet.data, req.packet.pts, time.perf_counter()))
        elif kind == "effects_update":
            self.stats.updates += 1
            try:
                settings = effect_settings(req.effects_update.effects, self.stats.updates)
            except ConfigError as exc:
                raise SessionError(grpc.StatusCode.INVALID_ARGUMENT, f"effects update {self.stats.updates}: {exc}")
            await self._in.put(settings)
        elif kind == "end":
            await self._in.put(_END)
        elif kind == "undecodable":
            raise SessionError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"message {self.stats.packets_in + self.stats.updates + 2} ({req.size} bytes) is not a valid "
                f"ProcessRequest protobuf ({req.error}); check the client's serialization",
            )
        elif kind == "config":
            raise SessionError(
                grpc.StatusCode.INVALID_ARGUMENT,
                "a second config arrived; the config is only the first message (use effects_update to change effects)",
            )
        else:
            raise SessionError(grpc.StatusCode.INVALID_ARGUMENT, "empty request; set one of packet, effects_update or end")

    def _check_rate(self, pts: int) -> None:
        """The frame rate measured from the last packets' timestamps must stay under max_fps."""
        limit = self.server.max_fps
        if not limit:
            return
        recent = self._recent_pts
        recent.append(pts)
        if len(recent) > _FPS_WINDOW:
            del recent[0]
        if len(recent) < _FPS_WINDOW:
            return
        span = (max(recent) - min(recent)) * self._seconds_per_tick
        # Timestamps that do not advance carry no rate; only a positive span can be measured.
        if span > 0 and (len(recent) - 1) / span > limit * _FPS_SLACK:
            fps = (len(recent) - 1) / span
            raise SessionError(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"the input runs at {fps:.1f} frames per second (from the pts of the last {len(recent)} packets "
                f"and time base {self.plan.encoder.time_base[0]}/{self.plan.encoder.time_base[1]}), over this "
                f"server's limit of {limit:g}; lower the frame rate, or set config.input.time_base to the units of "
                "Packet.pts",
            )

    def _behind(self, arrived: float) -> bool:
        """Real-time policy: skip vision and effects for a frame that is already late, or when
        the input queue is about to fill (which would stop the reader)."""
        if not self.plan.realtime:
            return False
        late = time.perf_counter() - arrived > self._pass_budget
        return late or self._in.qsize() >= max(1, self._in.maxsize - 1)

    def _too_late(self, pf: ProcessedFrame, arrived: float) -> bool:
        """Real-time policy: a frame too old to be worth encoding is dropped before the encoder
        (the decoder has already consumed its packet, so no reference is lost)."""
        if not self.plan.realtime:
            return False
        late = time.perf_counter() - arrived > self._drop_budget
        return late or (self._fx.qsize() >= max(1, self._fx.maxsize - 1) and not pf.processed)

    async def _run_front(self) -> None:
        while True:
            item = await self._in.get()
            if item is _END:
                frames = await self._call("flushing the decoder", self._front.flush)
                self.stats.frames_decoded += len(frames)
                if self.metrics is not None and frames:
                    self.metrics.frames_in.inc(len(frames))
                if self.stats.packets_in and not self.stats.frames_decoded:
                    raise SessionError(
                        grpc.StatusCode.INVALID_ARGUMENT,
                        f"none of the {self.stats.packets_in} packets decoded to a picture; check that "
                        f"config.input.codec ({self.plan.input_codec.name}) is the codec of the stream and that "
                        "it starts with a keyframe",
                    )
                for pf in frames:
                    await self._mid.put((pf, time.perf_counter()))
                await self._mid.put(_END)
                return
            if isinstance(item, _Packet):
                frames = await self._call(
                    f"decoding the packet with pts {item.pts} and finding its faces", self._front.push, item.data, item.pts,
                    self._behind(item.arrived))
                self.stats.frames_decoded += len(frames)
                if self.metrics is not None and frames:
                    self.metrics.frames_in.inc(len(frames))
                for pf in frames:
                    await self._mid.put((pf, item.arrived))
            else:
                self._front.update_effects(item)

    async def _run_effects(self) -> None:
        while True:
            item = await self._mid.get()
            if item is _END:
                await self._fx.put(_END)
                return
            pf, arrived = item
            # Real-time policy: a frame already past the drop budget will be dropped before the
            # encoder, so its effects are not worth computing.
            if not (self.plan.realtime and time.perf_counter() - arrived > self._drop_budget):
                pf = await self._call(f"the effects on the frame with pts {pf.frame.pts}", self._effects.apply, pf)
            await self._fx.put((pf, arrived))

    async def _run_back(self) -> None:
        while True:
            item = await self._fx.get()
            if item is _END:
                pairs = await self._call("flushing the encoder", self._back.flush)
                for pair in pairs:
                    await self._out.put(pair)
                await self._out.put(_END)
                return
            pf, arrived = item
            pf.frame.timings["arrived"] = arrived
            drop = self._too_late(pf, arrived)
            for pair in await self._call(f"encoding the frame with pts {pf.frame.pts}", self._back.encode, pf, drop):
                await self._out.put(pair)

    def _response(self, pf: ProcessedFrame, packet) -> pb.ProcessResponse:
        t = pf.frame.timings
        t["total_ms"] = (time.perf_counter() - t.pop("arrived")) * 1000.0
        work = sum(t.get(k, 0.0) for k in ("decode_ms", "vision_ms", "effects_ms", "encode_ms"))
        t["queue_ms"] = max(0.0, t["total_ms"] - work)
        s = self.stats
        s.frames_out += 1
        s.faces += len(pf.faces)
        if packet is None:
            s.dropped += 1
            status = "dropped"
        elif not pf.processed:
            s.passed_through += 1
            status = "passed_through"
        else:
            status = "processed"
        for k, v in t.items():
            s.timing_sums[k] = s.timing_sums.get(k, 0.0) + v
        if self.metrics is not None:
            self.metrics.observe_frame(t, status)
        return pb.ProcessResponse(packet=output_packet(pf, packet, self.plan.encoder.codec, self.plan))

    def stats_message(self) -> pb.ProcessResponse:
        s = self.stats
        duration = time.monotonic() - self.started
        n = max(1, s.frames_out)
        return pb.ProcessResponse(
            stats=pb.SessionStats(
                packets_in=s.packets_in,
                frames_decoded=s.frames_decoded,
                frames_out=s.frames_out,
                frames_passed_through=s.passed_through,
                frames_dropped=s.dropped,
                faces_detected=s.faces,
                duration_s=duration,
                fps=s.frames_out / duration if duration > 0 else 0.0,
                mean_timings=timings_message({k: v / n for k, v in s.timing_sums.items()}),
                effects_updates=s.updates,
            )
        )

    async def run(self, requests: AsyncIterator[pb.ProcessRequest]) -> AsyncIterator[pb.ProcessResponse]:
        """Responses until the stream is flushed; raises SessionError when the session fails.

        After a failure the reader keeps discarding requests (see `drain`), so that a client
        still writing does not see its writes fail before it learns why.
        """
        self._failure = asyncio.get_running_loop().create_future()
        self._reader = asyncio.create_task(self._read(requests), name=f"{self.id}-read")
        workers = [
            asyncio.create_task(self._run_front(), name=f"{self.id}-front"),
            asyncio.create_task(self._run_effects(), name=f"{self.id}-effects"),
            asyncio.create_task(self._run_back(), name=f"{self.id}-back"),
        ]
        watched = [self._reader, *workers]
        getter: asyncio.Future | None = None
        limit = self.server.max_session_seconds
        expiry = asyncio.get_running_loop().call_later(
            limit, self._fail, SessionError(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"the session reached this server's limit of {limit:g} seconds; open a new session to continue",
            )) if limit > 0 else None
        try:
            while True:
                if getter is None:
                    getter = asyncio.ensure_future(self._out.get())
                running = [t for t in watched if not t.done()]
                await asyncio.wait([getter, self._failure, *running], return_when=asyncio.FIRST_COMPLETED)
                for t in watched:
                    if t.done() and not t.cancelled() and t.exception() is not None:
                        self._fail(_as_session_error(t.exception()))
                if self._failure.done():
                    raise self._failure.result()
                if not getter.done():
                    continue
                item, getter = getter.result(), None
                if item is _END:
                    break
                yield self._response(*item)
            yield self.stats_message()
            # A message sent after end-of-stream is reported even when the flush was quicker than it.
            grace = self.server.error_drain_seconds
            await asyncio.wait([self._reader, self._failure], timeout=grace, return_when=asyncio.FIRST_COMPLETED)
            if self._failure.done():
                raise self._failure.result()
        finally:
            if expiry is not None:
                expiry.cancel()
            if getter is not None:
                getter.cancel()
            if not self._failure.done():
                self._reader.cancel()
            for t in workers:
                t.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            await asyncio.shield(self.close())

    async def drain(self, timeout: float) -> None:
        """Waits (at most `timeout`) for the failed session's client to stop sending."""
        if self._reader is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(self._reader), timeout)
        except (asyncio.TimeoutError, Exception):
            pass
        self._reader.cancel()
        await asyncio.gather(self._reader, return_exceptions=True)

    def _close(self) -> None:
        self._front.close()
        self._back.close()


async def _next(requests: AsyncIterator[pb.ProcessRequest], timeout: float | None) -> pb.ProcessRequest:
    """The next request, TimeoutError after `timeout`; a cancellation always gets through (see `_call`)."""
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


def _as_session_error(exc: BaseException) -> SessionError:
    if isinstance(exc, SessionError):
        return exc
    if isinstance(exc, FrameTooLarge):
        return SessionError(grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc))
    if isinstance(exc, CodecError):
        return SessionError(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
    log.exception("session failed", exc_info=exc)
    return SessionError(grpc.StatusCode.INTERNAL, f"internal error while processing the stream: {exc!r}")
