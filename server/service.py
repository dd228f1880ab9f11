"""The FaceStream gRPC service: a session per Process stream, from admission to the audit line."""
from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import uuid
from concurrent.futures import Executor
from typing import AsyncIterator, Callable

import grpc

from facestream.engines import backend as backends
from facestream.engines.stages import Queue
from facestream.proto import pb

from . import logs, memory
from .admission import SessionSlots
from .audit import StreamRecord
from .auth import ANONYMOUS, Principal, principal
from .budget import ByteBudget
from .capabilities import capabilities
from .config import ServerConfig
from .errors import CallEnded, SessionError, as_session_error
from .intake import discard, next_request
from .metrics import Metrics
from .pipeline_processes import PipelineProcesses
from .plan import ConfigError, session_plan
from .responder import Responder
from .responses import error_response
from .session import Session
from .stage_host import SessionStages, ThreadStages
from .stage_runner import StuckCalls
from .wire import MESSAGE_OVERHEAD, Undecodable

log = logging.getLogger("facestream.service")

# Seconds without sessions before freed memory is handed back to the OS.
_RELEASE_AFTER = 0.5

# The backend for (the backend a session asks for, its output codec's name); raises BackendUnavailable.
BackendResolver = Callable[[str, str], backends.Backend]


def _peer_principal(context: grpc.aio.ServicerContext) -> Principal:
    """With mTLS and no API key or JWT, the client certificate's identity names the caller."""
    try:
        ids = context.peer_identities()
    except Exception:
        ids = None
    if ids:
        return Principal(ids[0].decode(errors="replace"), "tls")
    return ANONYMOUS


def _peer(context: grpc.aio.ServicerContext) -> str:
    try:
        return context.peer()
    except Exception:
        return ""


class FaceStreamService:
    """Process and GetCapabilities. `resolve` gives each session its backend, from the backend it asks for
    (or the server's default) and its output codec."""

    def __init__(self, config: ServerConfig, executor: Executor, metrics: Metrics | None = None,
                 resolve: BackendResolver = backends.resolve, pipelines: PipelineProcesses | None = None) -> None:
        self.config = config
        self.executor = executor
        # Where CPU sessions' stages run when the server has pipeline processes (else on `executor`).
        self.pipelines = pipelines
        self.metrics = metrics or Metrics()
        self.resolve = resolve
        # Stage calls past --stage-timeout-seconds that have not returned: each holds a worker.
        self.stuck = StuckCalls(self.metrics)
        self.slots = SessionSlots(config, self.stuck)
        self._release: asyncio.TimerHandle | None = None
        # Reading what refused streams still send, server-wide: one of the largest requests at once, then
        # half of one a second (see budget.py); a refused client that behaves sends a few KiB.
        largest = config.max_packet_bytes + MESSAGE_OVERHEAD
        self.refused_reads = ByteBudget(largest / 2, largest, largest)

    @property
    def sessions(self) -> dict[str, Session]:
        return self.slots.running

    def queue_depths(self) -> dict[Queue, int]:
        depths = dict.fromkeys(Queue, 0)
        for s in list(self.sessions.values()):
            for queue, depth in s.queue_depths().items():
                depths[queue] += depth
        return depths

    async def refused(self, requests: AsyncIterator, seconds: float) -> None:
        """For a stream refused before it had a session, once its error is out: reads and drops what its
        client still sends, for at most `seconds` and within the server's budget for that; shortly after,
        the memory it held goes back to the OS."""
        try:
            await discard(requests, seconds, self.refused_reads)
        finally:
            self.release_memory_soon()

    def release_memory_soon(self) -> None:
        """Shortly after streams end, gives freed memory back to the OS (see memory.py): one release at a
        time, not postponed by more streams ending."""
        if self._release is not None:
            return

        def run() -> None:
            self._release = None
            try:
                asyncio.get_running_loop().run_in_executor(self.executor, memory.release)
            except RuntimeError:  # the executor is shut down: the server is stopping
                pass

        self._release = asyncio.get_running_loop().call_later(_RELEASE_AFTER, run)

    async def Process(self, request_iterator: AsyncIterator, context: grpc.aio.ServicerContext) -> None:
        """One session per stream. A coroutine handler (not a generator), so that when the client
        vanishes the cancellation reaches the session at once and frees its decoder, encoder and queues.

        A failed stream gets its error in band, then a moment for a client still writing to stop, then the
        status. Its slot, metrics and audit line are settled before the status goes out, so a client that
        reads them once it has the status sees its session there."""
        sid = uuid.uuid4().hex[:12]
        logs.session_id.set(sid)
        who = principal.get()
        record = StreamRecord(sid, who if who is not ANONYMOUS else _peer_principal(context))
        requests = request_iterator.__aiter__()
        responder = Responder(context, self.config.idle_timeout_seconds)
        self.metrics.streams_open.inc()
        try:
            await self._serve(record, requests, responder)
        except asyncio.CancelledError as exc:
            record.ended(as_session_error(exc))
            raise
        except Exception as exc:
            if isinstance(exc, CallEnded) or context.cancelled() or context.done():
                record.ended(as_session_error(exc, call_ended=True))
                raise asyncio.CancelledError from exc  # nothing more can reach the client: end quietly
            await self._fail(record, requests, responder, context, as_session_error(exc))
        finally:
            self.metrics.streams_open.dec()
            try:
                await asyncio.shield(self._end(record))
            finally:
                record.write(_peer(context))

    async def _fail(self, record: StreamRecord, requests: AsyncIterator, responder: Responder,
                    context: grpc.aio.ServicerContext, error: SessionError) -> None:
        """The error in band, a bounded drain, then the status."""
        record.ended(error)
        if record.session is not None:  # a stream refused before that is told of by its audit line alone
            log.info("session %s failed: %s: %s", record.session_id, error.code.name, error.message)
        # A client that is not reading (a write still waits on it) gets the status alone, and no drain; nor
        # does one that never sent anything.
        if not responder.blocked:
            with contextlib.suppress(SessionError, CallEnded):
                await responder.send(error_response(error), limit=self.config.error_drain_seconds)
        drain = 0.0 if responder.blocked or record.first is None else self.config.error_drain_seconds
        if record.session is not None:
            await record.session.drain(drain)
        elif drain:
            await self.refused(requests, drain)
        context.set_code(error.code)
        context.set_details(error.message)

    async def _first(self, requests: AsyncIterator):
        """The stream's first request, within --config-timeout-seconds (and up to a tenth more, so that streams
        opened together do not all end in the same instant)."""
        limit = self.config.config_timeout_seconds
        try:
            return await next_request(requests, limit * random.uniform(1.0, 1.1) if limit > 0 else None)
        except StopAsyncIteration:
            raise SessionError(grpc.StatusCode.INVALID_ARGUMENT,
                               "empty stream; send a SessionConfig as the first message") from None
        except asyncio.TimeoutError:
            raise SessionError(
                grpc.StatusCode.DEADLINE_EXCEEDED,
                f"no SessionConfig arrived within {limit:g} seconds of the stream opening (this server's "
                "--config-timeout-seconds); send the config as soon as the stream is open",
            ) from None

    async def _serve(self, record: StreamRecord, requests: AsyncIterator, responder: Responder) -> None:
        record.first = first = await self._first(requests)
        config = self.slots.admit(first, record.who)
        session = record.session = await self._open(config, record.session_id)
        self.slots.take(session, record.who)
        self.metrics.sessions_active.set(len(self.sessions))
        log.info("session %s started for %s (%s, label %r)", session.id, record.who.name, session.backend.name,
                 session.plan.label)
        await responder.send(session.started_message(config), session.failed)
        async with contextlib.aclosing(session.run(requests)) as responses:
            async for response in responses:
                await responder.send(response, session.failed)

    async def _open(self, config: pb.SessionConfig, sid: str) -> Session:
        """The session for an admitted config; raises ConfigError or BackendUnavailable saying what to change."""
        try:
            plan = session_plan(config, self.config)
            backend = self.resolve(plan.backend if plan.backend != "auto" else self.config.backend,
                                   plan.encoder.codec.value)
            here = functools.partial(ThreadStages, backend, plan, self.config, self.executor)
            stages: SessionStages
            if self.pipelines is not None and backend.name == "cpu":
                stages = await self.pipelines.open(sid, plan, backend.reason, here)
            else:
                stages = here()
            return Session(plan, backend, stages, self.config, self.stuck, sid, self.metrics)
        except ConfigError:
            raise
        except ValueError as exc:  # a codec rejected the config
            raise ConfigError(str(exc)) from None

    async def _end(self, record: StreamRecord) -> None:
        """Frees the session's slot and counts how it ended."""
        session = record.session
        if session is not None:
            try:
                await session.drain(0)
                await session.close()
            except Exception:
                log.exception("session %s: releasing its codecs failed", record.session_id)
            self.slots.free(session, record.who)
            self.metrics.sessions_active.set(len(self.sessions))
        self.release_memory_soon()
        self.metrics.sessions.labels(record.code.name).inc()
        if record.code is not grpc.StatusCode.OK:
            self.metrics.errors.labels(record.code.name).inc()

    async def GetCapabilities(self, request, context: grpc.aio.ServicerContext) -> pb.Capabilities:
        if isinstance(request, Undecodable):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                                f"the request is not a valid GetCapabilitiesRequest protobuf ({request.error})")
        return capabilities(self.config)
