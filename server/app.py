"""Builds and runs the grpc.aio server with its companions: health, optional reflection, metrics, auth."""
from __future__ import annotations

import asyncio
import logging
import math
import os
import signal
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from facestream.engines import backend as backends
from facestream.engines.models.store import default_store

from . import memory
from .auth import Authenticator, AuthInterceptor
from .config import ConfigurationError, ServerConfig
from .errors import PipelineProcessLost, SessionError
from .metrics import Metrics
from .pipeline_processes import PipelineProcesses
from .readiness import Readiness
from .responses import error_response
from .service import BackendResolver, FaceStreamService
from .wire import MESSAGE_OVERHEAD, SERVICE_NAME, add_to_server

log = logging.getLogger("facestream.server")

HEALTH_SERVICE = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name
# After the drain, how long the transport waits for calls still finishing (error drains, writes).
_STOP_GRACE = 2.0


def _ms(seconds: float) -> int:
    return int(seconds * 1000)


def grpc_options(config: ServerConfig) -> list[tuple[str, int]]:
    """Message size limits and connection management (keepalive, connection age) for long streams."""
    max_msg = config.max_packet_bytes + MESSAGE_OVERHEAD
    opts = [
        ("grpc.max_receive_message_length", max_msg),
        ("grpc.max_send_message_length", max(max_msg, config.max_width * config.max_height * 2)),
        ("grpc.http2.min_recv_ping_interval_without_data_ms", _ms(config.min_client_ping_seconds)),
        ("grpc.http2.max_ping_strikes", 2),
        ("grpc.keepalive_permit_without_calls", 1),
    ]
    if config.keepalive_seconds > 0:
        opts += [
            ("grpc.keepalive_time_ms", _ms(config.keepalive_seconds)),
            ("grpc.keepalive_timeout_ms", _ms(config.keepalive_timeout_seconds)),
        ]
    if config.max_connection_idle_seconds > 0:
        opts.append(("grpc.max_connection_idle_ms", _ms(config.max_connection_idle_seconds)))
    if config.max_connection_age_seconds > 0:
        grace = config.max_connection_age_grace_seconds or config.max_session_seconds
        opts.append(("grpc.max_connection_age_ms", _ms(config.max_connection_age_seconds)))
        if grace > 0:
            opts.append(("grpc.max_connection_age_grace_ms", _ms(grace)))
    return opts


def server_credentials(config: ServerConfig) -> grpc.ServerCredentials | None:
    """TLS from --tls-cert-file/--tls-key-file; mTLS when --tls-client-ca-file is set too."""
    if not (config.tls_cert_file or config.tls_key_file):
        if config.tls_client_ca_file:
            raise ValueError("--tls-client-ca-file needs --tls-cert-file and --tls-key-file")
        return None
    if not (config.tls_cert_file and config.tls_key_file):
        raise ValueError("TLS needs both --tls-cert-file and --tls-key-file")
    cert, key = Path(config.tls_cert_file).read_bytes(), Path(config.tls_key_file).read_bytes()
    ca = Path(config.tls_client_ca_file).read_bytes() if config.tls_client_ca_file else None
    return grpc.ssl_server_credentials([(key, cert)], root_certificates=ca, require_client_auth=ca is not None)


def usable_cores(cgroup: Path = Path("/sys/fs/cgroup")) -> int:
    """The cores this process may use: those it may run on, within its cgroup's CPU quota (a container's
    CPU limit, which os.cpu_count does not see)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    try:
        quota, period = (cgroup / "cpu.max").read_text().split()  # cgroup v2: "max 100000" or "200000 100000"
        if quota != "max":
            cores = min(cores, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return cores


def _gpu_sessions(config: ServerConfig) -> bool:
    """Whether sessions may run on the GPU here (backend auto or gpu on a host with a usable one)."""
    return config.backend != "cpu" and backends.gpu_backend_ready()[0]


def pipeline_process_count(config: ServerConfig) -> int:
    """How many pipeline processes the server starts: --pipeline-processes, where -1 is one per usable core
    (no more than --max-sessions) when sessions may run on the CPU; on a GPU host with backend auto or gpu,
    sessions run on the GPU, in this process."""
    if config.pipeline_processes >= 0:
        return config.pipeline_processes
    if _gpu_sessions(config):
        return 0
    return max(1, min(usable_cores(), config.max_sessions))


class FaceStreamServer:
    """A running server; `port` is the bound port (useful with port 0), `metrics_port` likewise.

    `resolve` picks each session's backend (see FaceStreamService)."""

    def __init__(self, config: ServerConfig, resolve: BackendResolver = backends.resolve) -> None:
        self.config = config
        if config.backend == "gpu":
            ok, why = backends.gpu_backend_ready()
            if not ok:
                raise ConfigurationError(
                    f"--backend gpu: no usable GPU on this host ({why}); use --backend cpu or auto")
        self.executor = ThreadPoolExecutor(config.worker_threads, thread_name_prefix="facestream-stage")
        self.metrics = Metrics()
        try:
            self.auth = Authenticator(config)
            credentials = server_credentials(config)
        except (OSError, ValueError) as exc:
            raise ConfigurationError(str(exc)) from None
        count = pipeline_process_count(config)
        self.pipelines = PipelineProcesses(config, count, self.metrics) if count else None
        self.service = FaceStreamService(config, self.executor, self.metrics, resolve, self.pipelines)
        interceptors = []
        if self.auth.enabled:
            in_band = {f"/{SERVICE_NAME}/Process": lambda code, msg: error_response(SessionError(code, msg))}
            interceptors.append(AuthInterceptor(self.auth, (SERVICE_NAME,), self.metrics, in_band,
                                                config.error_drain_seconds, self.service.refused))
        self.grpc = grpc.aio.server(options=grpc_options(config), interceptors=interceptors)
        self.metrics.watch_queues(self.service.queue_depths)
        add_to_server(self.service, self.grpc)
        self.health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.grpc)
        if config.reflection:
            reflection.enable_server_reflection((SERVICE_NAME, HEALTH_SERVICE, reflection.SERVICE_NAME), self.grpc)
        if credentials is None:
            self.port = self.grpc.add_insecure_port(config.address)
        else:
            self.port = self.grpc.add_secure_port(config.address, credentials)
        if self.port == 0:
            raise OSError(f"could not listen on {config.address}")
        self.metrics_port = 0
        self._stopped = False
        self._readiness: Readiness | None = None

    async def _set_health(self, status) -> None:
        for name in ("", SERVICE_NAME):
            await self.health.set(name, status)

    def _load_models(self) -> None:
        """Verifies and warms up the models of every backend this server may run sessions on (each pipeline
        process loads its own)."""
        from facestream.engines.effects.jit import warm_up as warm_up_effects

        default_store().load()
        warm_up_effects()
        if _gpu_sessions(self.config):
            from facestream.engines.vision.gpu import shared_models

            # the first call makes the process's models: the batching budget is fixed here
            shared_models(budget_ms=self.config.batch_budget_ms).warm_up()  # builds and caches TensorRT engines

    async def start(self) -> None:
        """Listens at once (health says NOT_SERVING), then verifies and warms up the models."""
        await self._set_health(health_pb2.HealthCheckResponse.NOT_SERVING)
        if self.config.metrics_port:
            self.metrics_port = self.metrics.serve(self.config.metrics_host or self.config.host,
                                                   self.config.metrics_port)
        await self.grpc.start()
        log.info("listening on %s:%d (%s, auth %s, reflection %s); loading models", self.config.host, self.port,
                 "TLS" if self.config.tls_cert_file else "plaintext", "on" if self.auth.enabled else "off",
                 "on" if self.config.reflection else "off")
        await asyncio.get_running_loop().run_in_executor(self.executor, self._load_models)
        if self.pipelines is not None:
            try:
                await self.pipelines.start()  # each loads and warms up its own models
            except PipelineProcessLost as exc:
                raise ConfigurationError(f"--pipeline-processes {len(self.pipelines)}: {exc}") from None
        memory.settle()
        self.service.slots.ready = True
        self.metrics.model_ready.set(1)
        await self._set_health(health_pb2.HealthCheckResponse.SERVING)
        self._readiness = Readiness(self.health, self.service.slots, self.service.stuck)
        log.info("serving on %s:%d", self.config.host, self.port)

    async def drain(self, grace: float) -> bool:
        """NOT_SERVING, new sessions get UNAVAILABLE, running ones get up to `grace` seconds to
        finish; returns whether all finished in time."""
        self.service.slots.draining = True
        self.metrics.draining.set(1)
        await self._set_health(health_pb2.HealthCheckResponse.NOT_SERVING)
        try:
            await asyncio.wait_for(self.service.slots.idle.wait(), grace)
            return True
        except asyncio.TimeoutError:
            return False

    async def stop(self, grace: float | None = None) -> None:
        if self._stopped:
            return
        self._stopped = True
        if self._readiness is not None:
            self._readiness.stopped = True
        await self._set_health(health_pb2.HealthCheckResponse.NOT_SERVING)
        await self.grpc.stop(grace)
        self.metrics.stop()
        if self.pipelines is not None:
            await self.pipelines.stop()
        self.executor.shutdown(wait=False, cancel_futures=True)


async def serve(config: ServerConfig) -> int:
    """Runs until SIGINT or SIGTERM, then drains: running sessions get the grace period to finish.

    Returns the number of stage calls still stuck (their threads cannot be stopped)."""
    server = FaceStreamServer(config)
    try:
        await server.start()
    except BaseException:
        await server.stop(0)  # listener, metrics endpoint and workers go with a failed start
        raise
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    n = len(server.service.sessions)
    log.info("draining: %d sessions running, grace %.0f s; new sessions get UNAVAILABLE", n, config.grace_seconds)
    finished = await server.drain(config.grace_seconds)
    if not finished:
        log.warning("grace period over with %d sessions still running; cancelling them",
                    len(server.service.sessions))
    await server.stop(_STOP_GRACE if finished else 0)
    stuck = len(server.service.stuck)
    if stuck:
        log.error("stopped with %d stage calls still stuck; exiting without waiting for them", stuck)
    else:
        log.info("stopped")
    return stuck
