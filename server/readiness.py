"""Readiness for new streams: the `facestream.v1.FaceStream` health status follows whether the server
takes new sessions, so a load balancer (a Kubernetes Service, the SDK's health watch) sends new streams
elsewhere while this one is full; running streams go on. The overall status ("") stays SERVING while
the process is healthy, for liveness."""
from __future__ import annotations

import asyncio

from grpc_health.v1 import health, health_pb2

from .admission import SessionSlots
from .stage_runner import StuckCalls
from .wire import SERVICE_NAME

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class Readiness:
    """Watches the session slots and the stuck stage calls; sets the service's health on a change."""

    def __init__(self, servicer: health.aio.HealthServicer, slots: SessionSlots, stuck: StuckCalls) -> None:
        self._servicer = servicer
        self._slots = slots
        self._loop = asyncio.get_running_loop()
        self._status = SERVING
        self._tasks: set[asyncio.Task] = set()
        self.stopped = False
        slots.on_change = self.changed
        stuck.on_change = self._from_any_thread   # stuck calls return on worker threads

    def _from_any_thread(self) -> None:
        # a stuck call may return after the server stopped and its loop closed: nothing is left to tell
        if self.stopped or self._loop.is_closed():
            return
        try:
            self._loop.call_soon_threadsafe(self.changed)
        except RuntimeError:    # the loop closed between the check and the call
            pass

    def changed(self) -> None:
        if self.stopped or self._slots.draining:
            return  # draining and stopping set every status themselves
        status = SERVING if self._slots.taking else NOT_SERVING
        if status != self._status:
            self._status = status
            task = self._loop.create_task(self._servicer.set(SERVICE_NAME, status))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
