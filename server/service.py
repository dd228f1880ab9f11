"""The FaceStream gRPC service: admission, session start, capabilities."""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections import Counter
from concurrent.futures import Executor
from importlib.metadata import PackageNotFoundError, version

import grpc

from facestream.engines import backend as backends
from facestream.engines.effects.registry import EFFECTS
from facestream.engines.models.store import default_store
from facestream.proto import pb

from . import logs, memory
from .auth import ANONYMOUS, Principal, principal
from .config import ServerConfig
from .metrics import Metrics
from .convert import INPUT_CODECS, OUTPUT_CODECS, WIRE_CODECS, ConfigError, SessionPlan, session_plan, stage_messages
from .session import Session, SessionError

log = logging.getLogger("facestream.service")
audit = logging.getLogger("facestream.audit")

# Seconds without sessions before freed memory is handed back to the OS.
_RELEASE_AFTER = 0.5

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["FaceStream"].full_name


def server_version() -> str:
    try:
        return version("facestream")
    except PackageNotFoundError:
        return "unknown"


class Undecodable:
    """Stands in for a request whose bytes are not a valid protobuf message of the expected type."""

    def __init__(self, size: int, error: str) -> None:
        self.size, self.error = size, error

    def WhichOneof(self, _group: str) -> str:
        return "undecodable"


def _deserializer(message_type):
    """Parses requests, handing malformed bytes to the service (which answers INVALID_ARGUMENT)
    instead of letting the transport end the call with INTERNAL."""

    def parse(data: bytes):
        try:
            return message_type.FromString(data)
        except Exception as exc:  # google.protobuf.message.DecodeError and friends
            return Undecodable(len(data), str(exc) or type(exc).__name__)

    return parse


def add_to_server(service: "FaceStreamService", server) -> None:
    """Registers the service like the generated helper, with the forgiving request parser."""
    handlers = {
        "Process": grpc.stream_stream_rpc_method_handler(
            service.Process, request_deserializer=_deserializer(pb.ProcessRequest),
            response_serializer=pb.ProcessResponse.SerializeToString),
        "GetCapabilities": grpc.unary_unary_rpc_method_handler(
            service.GetCapabilities, request_deserializer=_deserializer(pb.GetCapabilitiesRequest),
            response_serializer=pb.Capabilities.SerializeToString),
    }
    generic = grpc.method_handlers_generic_handler(SERVICE_NAME, handlers)
    server.add_generic_rpc_handlers((generic,))
    server.add_registered_method_handlers(SERVICE_NAME, handlers)


def _peer_principal(context) -> Principal:
    """With mTLS and no API key or JWT, the client certificate's identity names the caller."""
    try:
        ids = context.peer_identities()
    except Exception:
        ids = None
    if ids:
        return Principal(ids[0].decode(errors="replace"), "tls")
    return ANONYMOUS


class FaceStreamService:
    def __init__(self, config: ServerConfig, executor: Executor, metrics: Metrics | None = None) -> None:
        self.config = config
        self.executor = executor
        self.metrics = metrics or Metrics()
        self.sessions: dict[str, Session] = {}
        self._per_principal: Counter[str] = Counter()
        # Set once the models are verified and warmed up; until then sessions get UNAVAILABLE.
        self.ready = False
        # Set on SIGTERM: running sessions finish, new ones get UNAVAILABLE.
        self.draining = False
        self.idle = asyncio.Event()
        self.idle.set()
        self._release: asyncio.TimerHandle | None = None
        # Stage calls past --stage-timeout-seconds that have not returned: each holds a worker.
        self.stuck: set[Future] = set()
        self._stuck_limit = max(1, config.worker_threads // 2)

    def _schedule_release(self) -> None:
        """Once idle for a moment, give freed memory back to the OS (see memory.py)."""
        if self._release is not None:
            self._release.cancel()

        def run() -> None:
            self._release = None
            if not self.sessions:
                try:
                    asyncio.get_running_loop().run_in_executor(self.executor, memory.release)
                except RuntimeError:  # the executor is shut down: the server is stopping
                    pass

        self._release = asyncio.get_running_loop().call_later(_RELEASE_AFTER, run)

    def queue_depths(self) -> dict[str, int]:
        depths = {"in": 0, "mid": 0, "effects": 0, "out": 0}
        for s in list(self.sessions.values()):
            for name, depth in s.queue_depths().items():
                depths[name] += depth
        return depths

    async def Process(self, request_iterator, context: grpc.aio.ServicerContext) -> None:
        """One session per stream. A coroutine handler (not a generator), so that when the client
        vanishes the cancellation reaches the session at once and frees its decoder, encoder and queues."""
        sid = uuid.uuid4().hex[:12]
        logs.session_id.set(sid)
        who = principal.get()
        if who is ANONYMOUS:
            who = _peer_principal(context)
        began, wall = time.monotonic(), time.time()
        requests = request_iterator.__aiter__()
        session: Session | None = None
        plan: SessionPlan | None = None
        first: pb.ProcessRequest | None = None
        code, message = grpc.StatusCode.OK, ""
        accounted = False
        try:
            try:
                first = await anext(requests)
            except StopAsyncIteration:
                raise SessionError(grpc.StatusCode.INVALID_ARGUMENT,
                                   "empty stream; send a SessionConfig as the first message") from None
            session, plan = self._open(first, who, sid)
            self.sessions[sid] = session
            self._per_principal[who.name] += 1
            self.idle.clear()
            self.metrics.sessions_active.set(len(self.sessions))
            log.info("session %s started for %s (%s, label %r)", sid, who.name, session.backend.name, plan.label)
            await context.write(session.started_message(negotiated_config(first.config, plan)))
            async with contextlib.aclosing(session.run(requests)) as responses:
                async for response in responses:
                    await context.write(response)
        except asyncio.CancelledError:
            code, message = grpc.StatusCode.CANCELLED, "the client went away"
            raise
        except Exception as exc:
            if context.cancelled() or context.done():  # a write failed because the call ended under us
                code, message = grpc.StatusCode.CANCELLED, f"the call ended: {exc!r}"
                raise
            if not isinstance(exc, SessionError):
                log.exception("session %s: unexpected error", sid)
                exc = SessionError(grpc.StatusCode.INTERNAL, f"internal error while serving the stream: {exc!r}")
            code, message = exc.code, exc.message
            log.info("session %s failed: %s: %s", sid, exc.code.name, exc.message)
            try:
                await context.write(error_response(exc))
            except Exception:
                pass
            if session is not None:
                await session.drain(self.config.error_drain_seconds)
            else:
                await _discard(requests, self.config.error_drain_seconds)
            # Accounted before the status goes out: a client that reads the metrics or the audit
            # log once it has the status sees its session there.
            accounted = True
            try:
                await asyncio.shield(self._end(sid, who, session, code))
            finally:
                self._audit(sid, who, context, wall, time.monotonic() - began, first, session, code, message)
            await context.abort(exc.code, exc.message)
        finally:
            if not accounted:
                try:
                    await asyncio.shield(self._end(sid, who, session, code))
                finally:
                    self._audit(sid, who, context, wall, time.monotonic() - began, first, session, code, message)

    async def _end(self, sid: str, who: Principal, session: Session | None, code: grpc.StatusCode) -> None:
        """Frees the session's slot and counts how it ended."""
        if session is not None:
            try:
                await session.close()
            except Exception:
                log.exception("session %s: releasing its codecs failed", sid)
            self.sessions.pop(sid, None)
            self._per_principal[who.name] -= 1
            if self._per_principal[who.name] <= 0:
                del self._per_principal[who.name]
            self.metrics.sessions_active.set(len(self.sessions))
            if not self.sessions:
                self.idle.set()
                self._schedule_release()
        self.metrics.sessions.labels(code.name).inc()
        if code is not grpc.StatusCode.OK:
            self.metrics.errors.labels(code.name).inc()

    def _audit(self, sid, who, context, wall, duration, first, session, code, message) -> None:
        asked = describe_request(first) if first is not None else {}
        stats = session.stats if session is not None else None
        ended = {"code": code.name, "message": message}
        counts = {
            "packets_in": stats.packets_in if stats else 0,
            "frames_out": stats.frames_out if stats else 0,
            "frames_passed_through": stats.passed_through if stats else 0,
            "frames_dropped": stats.dropped if stats else 0,
        }
        try:
            peer = context.peer()
        except Exception:
            peer = ""
        started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(wall))
        audit.info(
            "session %s who=%s auth=%s peer=%s started=%s duration=%.2fs asked=%s ended=%s%s frames_out=%d",
            sid, who.name, who.method, peer, started, duration, json.dumps(asked, sort_keys=True), code.name,
            f" ({message})" if message else "", counts["frames_out"],
            extra={"event": "session", "session_id": sid, "principal": who.name, "auth": who.method, "peer": peer,
                   "started": started, "duration_s": round(duration, 3), "asked": asked, "ended": ended, **counts},
        )

    def _open(self, first, who: Principal, sid: str) -> tuple[Session, SessionPlan]:
        """Admission and config checks for a new stream; raises SessionError saying what to change."""
        if self.draining:
            raise SessionError(
                grpc.StatusCode.UNAVAILABLE,
                "the server is shutting down and takes no new sessions; reconnect (to another instance) and retry",
            )
        if not self.ready:
            raise SessionError(
                grpc.StatusCode.UNAVAILABLE, "the server is still loading its models; retry in a few seconds"
            )
        if isinstance(first, Undecodable):
            raise SessionError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"the first message ({first.size} bytes) is not a valid ProcessRequest protobuf ({first.error}); "
                "send a SessionConfig first",
            )
        if len(self.stuck) >= self._stuck_limit:
            raise SessionError(
                grpc.StatusCode.UNAVAILABLE,
                f"{len(self.stuck)} stage calls on this server are stuck (see its log) and hold half of its "
                "worker threads; it takes no new sessions until they return or it is restarted: use another server",
            )
        if first.WhichOneof("msg") != "config":
            raise SessionError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"the first message must be a SessionConfig (got {first.WhichOneof('msg') or 'an empty request'}); "
                "send config first, then packets",
            )
        if len(self.sessions) >= self.config.max_sessions:
            raise SessionError(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"this server is at its limit of {self.config.max_sessions} concurrent sessions; "
                "retry in a few seconds or use another server",
            )
        quota = 0 if who is ANONYMOUS else who.max_sessions or self.config.max_sessions_per_key
        if quota and self._per_principal[who.name] >= quota:
            raise SessionError(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"{who.name!r} is at its quota of {quota} concurrent sessions; end one first, "
                "or ask the operator for a higher quota",
            )
        try:
            plan = session_plan(first.config, self.config)
            backend = backends.resolve(
                plan.backend if plan.backend != "auto" else self.config.backend, plan.encoder.codec.value
            )
            return Session(plan, backend, self.config, self.executor, sid, self.metrics, self.stuck), plan
        except ConfigError as exc:
            code = grpc.StatusCode.RESOURCE_EXHAUSTED if exc.limit else grpc.StatusCode.INVALID_ARGUMENT
            raise SessionError(code, str(exc)) from None
        except backends.BackendUnavailable as exc:
            raise SessionError(grpc.StatusCode.FAILED_PRECONDITION, str(exc)) from None
        except ValueError as exc:  # a codec rejected the config
            raise SessionError(grpc.StatusCode.INVALID_ARGUMENT, str(exc)) from None

    async def GetCapabilities(self, request, context) -> pb.Capabilities:
        if isinstance(request, Undecodable):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                                f"the request is not a valid GetCapabilitiesRequest protobuf ({request.error})")
        return capabilities(self.config)


def describe_request(first) -> dict:
    """What a session asked for, for the audit log (no pixels, no secrets)."""
    if isinstance(first, Undecodable) or first.WhichOneof("msg") != "config":
        return {"first_message": "undecodable" if isinstance(first, Undecodable) else first.WhichOneof("msg")}
    c = first.config
    enum = lambda e, v: e.Name(v) if v in e.values() else str(v)  # noqa: E731
    return {
        "input": enum(pb.Codec, c.input.codec),
        "size": f"{c.input.width}x{c.input.height}",
        "output": enum(pb.Codec, c.output.codec or pb.CODEC_H264),
        "effects": {e.name: round(e.strength, 3) for e in c.effects.effects},
        "per_face": len(c.effects.per_face),
        "drop_policy": enum(pb.DropPolicy, c.drop_policy),
        "backend": enum(pb.Backend, c.backend),
        "return_faces": c.return_faces,
        "label": c.label,
    }


def negotiated_config(config: pb.SessionConfig, plan: SessionPlan) -> pb.SessionConfig:
    """The client's config with the server's defaults filled in, as SessionStarted promises."""
    out = pb.SessionConfig()
    out.CopyFrom(config)
    out.output.codec = WIRE_CODECS[plan.encoder.codec]
    out.input.time_base.num, out.input.time_base.den = plan.encoder.time_base
    out.input.frame_rate.num, out.input.frame_rate.den = plan.encoder.frame_rate
    return out


def error_response(exc: SessionError) -> pb.ProcessResponse:
    return pb.ProcessResponse(
        error=pb.StreamError(code=exc.code.value[0], code_name=exc.code.name, message=exc.message)
    )


async def _discard(requests, timeout: float) -> None:
    """Reads and drops requests until end-of-stream, half-close or `timeout`."""

    async def consume() -> None:
        async for req in requests:
            if req.WhichOneof("msg") == "end":
                return

    try:
        await asyncio.wait_for(consume(), timeout)
    except (asyncio.TimeoutError, Exception):
        pass


def model_messages() -> list[pb.ModelInfo]:
    """The packaged models from the store's manifest: FP32 runs on ONNX Runtime (the CPU backend, and
    the GPU backend without TensorRT), the INT8 Q/DQ models become TensorRT engines."""
    out = []
    for name, sha in sorted(default_store().manifest()["files"].items()):
        stem, _, ext = name.rpartition(".")
        if ext != "onnx":
            continue
        model, _, precision = stem.rpartition(".")
        out.append(pb.ModelInfo(name=model, precision=precision, sha256=sha,
                                runtime="onnxruntime" if precision == "fp32" else "tensorrt"))
    return out


def capabilities(config: ServerConfig) -> pb.Capabilities:
    gpu = backends.probe_gpu()
    gpu_on = gpu.available and config.backend in ("auto", "gpu")
    cpu = backends.CpuBackend("cpu backend" if gpu.available or config.backend == "cpu"
                              else f"auto: no usable GPU ({gpu.detail})")
    if gpu.available:
        gpu_stages = backends.gpu_plan().placements()
        gpu_detail = (f"{gpu.name}, compute capability {gpu.compute_capability}, {gpu.memory_gb:g} GB, "
                      f"CUDA driver {gpu.driver}; " + "; ".join(f"{p.stage}: {p.engine}" for p in gpu_stages))
    else:
        gpu_stages, gpu_detail = [], gpu.detail
    return pb.Capabilities(
        server_version=server_version(),
        input_codecs=INPUT_CODECS,
        output_codecs=OUTPUT_CODECS,
        effects=[
            pb.EffectInfo(
                name=spec.name,
                description=spec.description,
                per_face=spec.per_face,
                params=[pb.EffectParam(name=p.name, min=p.min, max=p.max, default=p.default, description=p.description)
                        for p in spec.params],
            )
            for spec in EFFECTS.values()
        ],
        backends=[
            pb.BackendInfo(backend=pb.BACKEND_CPU, available=True, device="cpu",
                           detail="PyAV codecs, ONNX Runtime, NumPy/OpenCV", stages=stage_messages(cpu.placements())),
            pb.BackendInfo(backend=pb.BACKEND_GPU, available=gpu.available, device=gpu.device,
                           detail=gpu_detail, stages=stage_messages(gpu_stages)),
        ],
        default_backend=pb.BACKEND_GPU if gpu_on else pb.BACKEND_CPU,
        models=model_messages(),
        limits=pb.Limits(
            max_sessions=config.max_sessions,
            max_width=config.max_width,
            max_height=config.max_height,
            max_packet_bytes=config.max_packet_bytes,
            max_faces=config.max_faces,
            max_fps=config.max_fps,
            max_session_seconds=config.max_session_seconds,
        ),
    )
