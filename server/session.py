"""One Process stream: a session that moves frames through the pipeline with bounded queues.

Four tasks per session: the reader (intake.py) takes requests off the stream, the decode loop
decodes and finds faces, the effects loop applies the beauty effects, the encode loop encodes.
Each hands on through a bounded queue (stages.Queue), so a session that falls behind stops reading
(gRPC flow control then slows the client) instead of buffering without end. The blocking stage
calls run on the server's worker threads or in one of its pipeline processes (stage_host.py), never
on the event loop, so one session's work does not stall another's I/O. A frame travels as one
FrameInFlight, from the decode stage to its response.
"""
from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import replace
from typing import AsyncGenerator, AsyncIterator

import grpc

from facestream.engines.backend import Backend
from facestream.engines.effects.base import EffectSettings
from facestream.engines.pipeline import FrameInFlight
from facestream.engines.stages import FrameStatus, Queue
from facestream.proto import pb

from .config import ServerConfig
from .errors import SessionError, as_session_error
from .intake import END, EndOfStream, Intake, ToDecode
from .metrics import Metrics
from .plan import SessionPlan
from .realtime import RealtimePolicy
from .responses import SessionStats, packet_response, started_response, stats_response
from .stage_host import SessionStages
from .stage_runner import StageRunner, StuckCalls

log = logging.getLogger("facestream.session")

Frames = asyncio.Queue[FrameInFlight | EndOfStream]


class Session:
    """The pipeline of one stream: `run` yields its responses; after a failure, `drain` lets the client stop
    sending; `close` (also at the end of `run`) releases the codecs. `stages` run on `backend`."""

    def __init__(
        self, plan: SessionPlan, backend: Backend, stages: SessionStages, server: ServerConfig,
        stuck: StuckCalls, session_id: str | None = None, metrics: Metrics | None = None,
    ) -> None:
        self.id = session_id or uuid.uuid4().hex[:12]
        self.plan = plan
        self.backend = backend
        self.server = server
        self.metrics = metrics
        self.stats = SessionStats()
        self.started = time.monotonic()
        self._stages = stages
        self._runner = StageRunner(server.stage_timeout_seconds, stuck)
        self._policy = RealtimePolicy(plan.realtime, server.realtime_latency_ms)
        self._closed = False
        self._reader: asyncio.Task | None = None
        # Set (once) to the error the session ends with.
        self.failed: asyncio.Future[SessionError] = asyncio.get_running_loop().create_future()
        depth = max(1, server.queue_depth)
        self._to_decode: asyncio.Queue[ToDecode] = asyncio.Queue(depth)
        self._to_effects: Frames = asyncio.Queue(depth)
        self._to_encode: Frames = asyncio.Queue(depth)
        self._to_send: Frames = asyncio.Queue(depth)
        self._intake = Intake(plan, server, self.stats, metrics, self._to_decode, self._fail)

    def started_message(self, config: pb.SessionConfig) -> pb.ProcessResponse:
        placements = self.backend.placements()
        if self._stages.where:
            placements = [replace(p, reason=f"{p.reason}; in {self._stages.where}") for p in placements]
        return started_response(self.id, config, self.plan, self.backend.name, placements)

    def queue_depths(self) -> dict[Queue, int]:
        return {Queue.TO_DECODE: self._to_decode.qsize(), Queue.TO_EFFECTS: self._to_effects.qsize(),
                Queue.TO_ENCODE: self._to_encode.qsize(), Queue.TO_SEND: self._to_send.qsize()}

    def _fail(self, exc: SessionError) -> None:
        """Marks the session failed (the first failure wins) and unblocks a reader waiting on a full queue."""
        if not self.failed.done():
            self.failed.set_result(exc)
        self._intake.unblock()

    # ------------------------------------------------------------------ the stage loops
    async def _decoded(self, frames: list[FrameInFlight]) -> None:
        self.stats.frames_decoded += len(frames)
        if self.metrics is not None and frames:
            self.metrics.frames_in.inc(len(frames))
        for frame in frames:
            await self._to_effects.put(frame)

    async def _run_decode(self) -> None:
        while not isinstance(item := await self._to_decode.get(), EndOfStream):
            if isinstance(item, EffectSettings):
                await self._runner.watch("updating the effects", self._stages.update_effects(item))
                continue
            skip = self._policy.skip_vision(item.arrived, self._to_decode, self._stages.expected_vision_s,
                                            self._stages.just_skipped)
            await self._decoded(await self._runner.watch(
                f"decoding the packet with pts {item.pts} and finding its faces",
                self._stages.push(item.data, item.pts, item.arrived, skip)))
        frames = await self._runner.watch("flushing the decoder", self._stages.flush_decoder())
        if self.stats.packets_in and not (self.stats.frames_decoded or frames):
            raise SessionError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"none of the {self.stats.packets_in} packets decoded to a picture; check that "
                f"config.input.codec ({self.plan.input_codec.name}) is the codec of the stream and that "
                "it starts with a keyframe",
            )
        await self._decoded(frames)
        await self._to_effects.put(END)

    async def _run_effects(self) -> None:
        while not isinstance(item := await self._to_effects.get(), EndOfStream):
            if self._policy.too_late_for_effects(item):
                item.status = FrameStatus.DROPPED     # never shown without its effects
            else:
                item = await self._runner.watch(f"the effects on the frame with pts {item.frame.pts}",
                                                self._stages.apply_effects(item))
            await self._to_encode.put(item)
        await self._to_encode.put(END)

    async def _run_encode(self) -> None:
        while not isinstance(item := await self._to_encode.get(), EndOfStream):
            if self._policy.drop(item, self._to_encode):
                item.status = FrameStatus.DROPPED
            for done in await self._runner.watch(f"encoding the frame with pts {item.frame.pts}",
                                                 self._stages.encode(item)):
                await self._to_send.put(done)
        for done in await self._runner.watch("flushing the encoder", self._stages.flush_encoder()):
            await self._to_send.put(done)
        await self._to_send.put(END)

    # ------------------------------------------------------------------ the stream
    def _respond(self, item: FrameInFlight) -> pb.ProcessResponse:
        item.finish(time.perf_counter())
        self.stats.record(item)
        if self.metrics is not None:
            self.metrics.observe_frame(item.timings, item.status, len(item.faces), item.carried_faces)
        return packet_response(item, self.plan)

    async def _next_done(
        self, tasks: list[asyncio.Task], failure: asyncio.Future[SessionError]
    ) -> FrameInFlight | EndOfStream:
        """The next frame out of the encode loop (or END); raises the session's failure as soon as there
        is one, the failure of a task that raised included."""
        getter = asyncio.ensure_future(self._to_send.get())
        try:
            while True:
                waits: list[asyncio.Future] = [getter, failure, *(t for t in tasks if not t.done())]
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                for t in tasks:
                    if t.done() and not t.cancelled() and (exc := t.exception()) is not None:
                        self._fail(as_session_error(exc))
                if failure.done():
                    raise failure.result()
                if getter.done():
                    return getter.result()
        finally:
            getter.cancel()

    def _expire(self) -> asyncio.TimerHandle | None:
        """Ends the session at --max-session-seconds."""
        limit = self.server.max_session_seconds
        if limit <= 0:
            return None
        return asyncio.get_running_loop().call_later(limit, self._fail, SessionError(
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            f"the session reached this server's limit of {limit:g} seconds; open a new session to continue",
        ))

    async def run(self, requests: AsyncIterator[pb.ProcessRequest]) -> AsyncGenerator[pb.ProcessResponse, None]:
        """Responses until the stream is flushed; raises SessionError when the session fails.

        After a failure the reader keeps discarding requests (see `drain`), so that a client
        still writing does not see its writes fail before it learns why.
        """
        failure = self.failed
        reader = self._reader = asyncio.create_task(self._intake.read(requests, failure), name=f"{self.id}-read")
        workers = [
            asyncio.create_task(self._run_decode(), name=f"{self.id}-decode"),
            asyncio.create_task(self._run_effects(), name=f"{self.id}-effects"),
            asyncio.create_task(self._run_encode(), name=f"{self.id}-encode"),
        ]
        expiry = self._expire()
        try:
            while not isinstance(item := await self._next_done([reader, *workers], failure), EndOfStream):
                yield self._respond(item)
            yield stats_response(self.stats, time.monotonic() - self.started)
            # A message sent after end-of-stream is reported even when the flush was quicker than it.
            await asyncio.wait([reader, failure], timeout=self.server.error_drain_seconds,
                               return_when=asyncio.FIRST_COMPLETED)
            if failure.done():
                raise failure.result()
        finally:
            if expiry is not None:
                expiry.cancel()
            if not failure.done():
                reader.cancel()
            for t in workers:
                t.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            await asyncio.shield(self.close())

    async def drain(self, timeout: float) -> None:
        """Waits (at most `timeout`) for the failed session's client to stop sending."""
        if self._reader is None:
            return
        await asyncio.wait([self._reader], timeout=timeout)
        self._reader.cancel()
        await asyncio.gather(self._reader, return_exceptions=True)

    async def close(self) -> None:
        """Releases decoder, vision, encoder; safe to call more than once, and from any path."""
        if self._closed:
            return
        self._closed = True
        if await self._runner.settle():
            await self._stages.close()
        else:
            log.error("session %s: stage calls still running past --stage-timeout-seconds; the session's "
                      "codecs are left to them and a worker stays busy until they return", self.id)
