"""The FaceStream gRPC service: admission, session start, capabilities."""
from __future__ import annotations

import asyncio
import logging
from concurrent.futures import Executor
from importlib.metadata import PackageNotFoundError, version

import grpc

from facestream.engines import backend as backends
from facestream.engines.effects.registry import EFFECTS
from facestream.proto import pb, rpc

from .config import ServerConfig
from .convert import INPUT_CODECS, OUTPUT_CODECS, ConfigError, SessionPlan, session_plan
from .session import Session, SessionError

log = logging.getLogger("facestream.service")


def server_version() -> str:
    try:
        return version("facestream")
    except PackageNotFoundError:
        return "unknown"


class FaceStreamService(rpc.FaceStreamServicer):
    def __init__(self, config: ServerConfig, executor: Executor) -> None:
        self.config = config
        self.executor = executor
        self.sessions: dict[str, Session] = {}
        # Set once the models are verified and warmed up; until then sessions get UNAVAILABLE.
        self.ready = False

    async def Process(self, request_iterator, context: grpc.aio.ServicerContext):
        requests = request_iterator.__aiter__()
        try:
            first = await anext(requests)
        except StopAsyncIteration:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "empty stream; send a SessionConfig as the first message")
        try:
            session, plan = self._open(first)
        except SessionError as exc:
            yield error_response(exc)
            await _discard(requests, self.config.error_drain_seconds)
            await context.abort(exc.code, exc.message)
        self.sessions[session.id] = session
        log.info("session %s started (%s, label %r)", session.id, session.backend.name, plan.label)
        try:
            yield session.started_message(first.config)
            async for response in session.run(requests):
                yield response
        except SessionError as exc:
            log.info("session %s failed: %s: %s", session.id, exc.code.name, exc.message)
            yield error_response(exc)
            await session.drain(self.config.error_drain_seconds)
            await context.abort(exc.code, exc.message)
        finally:
            self.sessions.pop(session.id, None)
            log.info("session %s closed after %d frames", session.id, session.stats.frames_out)

    def _open(self, first: pb.ProcessRequest) -> tuple[Session, SessionPlan]:
        """Admission and config checks for a new stream; raises SessionError saying what to change."""
        if first.WhichOneof("msg") != "config":
            raise SessionError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"the first message must be a SessionConfig (got {first.WhichOneof('msg') or 'an empty request'}); "
                "send config first, then packets",
            )
        if not self.ready:
            raise SessionError(
                grpc.StatusCode.UNAVAILABLE, "the server is still loading its models; retry in a few seconds"
            )
        if len(self.sessions) >= self.config.max_sessions:
            raise SessionError(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"this server is at its limit of {self.config.max_sessions} concurrent sessions; "
                "retry in a few seconds or use another server",
            )
        try:
            plan = session_plan(first.config, self.config)
            backend = backends.resolve(plan.backend if plan.backend != "auto" else self.config.backend)
            return Session(plan, backend, self.config, self.executor), plan
        except ConfigError as exc:
            code = grpc.StatusCode.RESOURCE_EXHAUSTED if exc.limit else grpc.StatusCode.INVALID_ARGUMENT
            raise SessionError(code, str(exc)) from None
        except backends.BackendUnavailable as exc:
            raise SessionError(grpc.StatusCode.FAILED_PRECONDITION, str(exc)) from None
        except ValueError as exc:  # a codec rejected the config
            raise SessionError(grpc.StatusCode.INVALID_ARGUMENT, str(exc)) from None

    async def GetCapabilities(self, request, context) -> pb.Capabilities:
        return capabilities(self.config)


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


def capabilities(config: ServerConfig) -> pb.Capabilities:
    gpu = backends.probe_gpu()
    cpu = backends.CpuBackend()
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
            pb.BackendInfo(
                backend=pb.BACKEND_CPU, available=True, device="cpu", detail="PyAV codecs, ONNX Runtime, NumPy/OpenCV",
                stages=[pb.StagePlacement(stage=p.stage, device=p.device, engine=p.engine, reason=p.reason)
                        for p in cpu.placements()],
            ),
            pb.BackendInfo(backend=pb.BACKEND_GPU, available=False, device=gpu.device,
                           detail=gpu.detail or "the gpu backend is not built into this server version"),
        ],
        default_backend=pb.BACKEND_CPU,
        limits=pb.Limits(
            max_sessions=config.max_sessions,
            max_width=config.max_width,
            max_height=config.max_height,
            max_packet_bytes=config.max_packet_bytes,
            max_faces=config.max_faces,
        ),
    )
