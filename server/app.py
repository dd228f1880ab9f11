"""Builds and runs the grpc.aio server with its standard companions (health, reflection)."""
from __future__ import annotations

import asyncio
import logging
import signal
from concurrent.futures import ThreadPoolExecutor

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from facestream.engines.models.store import default_store
from facestream.proto import pb, rpc

from .config import ServerConfig
from .service import FaceStreamService

log = logging.getLogger("facestream.server")

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["FaceStream"].full_name
# Room for the protobuf framing around the largest packet the server accepts.
_MESSAGE_OVERHEAD = 64 << 10


class FaceStreamServer:
    """A running server; `port` is the bound port (useful with port 0)."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.executor = ThreadPoolExecutor(config.worker_threads, thread_name_prefix="facestream-stage")
        max_msg = config.max_packet_bytes + _MESSAGE_OVERHEAD
        self.grpc = grpc.aio.server(
            options=[
                ("grpc.max_receive_message_length", max_msg),
                ("grpc.max_send_message_length", max(max_msg, config.max_width * config.max_height * 2)),
            ]
        )
        self.service = FaceStreamService(config, self.executor)
        rpc.add_FaceStreamServicer_to_server(self.service, self.grpc)
        self.health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.grpc)
        reflection.enable_server_reflection(
            (SERVICE_NAME, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME),
            self.grpc,
        )
        self.port = self.grpc.add_insecure_port(config.address)
        if self.port == 0:
            raise OSError(f"could not listen on {config.address}")

    async def start(self) -> None:
        """Listens at once (health says NOT_SERVING), then verifies and warms up the models."""
        for name in ("", SERVICE_NAME):
            await self.health.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
        await self.grpc.start()
        log.info("listening on %s:%d; loading models", self.config.host, self.port)
        store = default_store()
        await asyncio.get_running_loop().run_in_executor(self.executor, store.load)
        self.service.ready = True
        for name in ("", SERVICE_NAME):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        log.info("serving on %s:%d", self.config.host, self.port)

    async def stop(self, grace: float | None = None) -> None:
        for name in ("", SERVICE_NAME):
            await self.health.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
        await self.grpc.stop(grace)
        self.executor.shutdown(wait=False, cancel_futures=True)


async def serve(config: ServerConfig) -> None:
    """Runs until SIGINT or SIGTERM, then lets running sessions finish within the grace period."""
    server = FaceStreamServer(config)
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("stopping: letting %d sessions finish (grace %.0f s)", len(server.service.sessions), config.grace_seconds)
    await server.stop(config.grace_seconds)
