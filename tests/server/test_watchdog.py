"""A stage call that never returns (a codec stuck on a crafted stream) ends its own session only."""
from __future__ import annotations

import asyncio
import threading
import time

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from facestream.server.wire import SERVICE_NAME

from fs_helpers import END, HookedBackend, clip_packets, h264_config, scrape, stream
from support import free_port

SERVING, NOT_SERVING = health_pb2.HealthCheckResponse.SERVING, health_pb2.HealthCheckResponse.NOT_SERVING

STUCK_FRAME = 5


def stuck_backend(release: threading.Event, hung: list[int]) -> HookedBackend:
    """The CPU backend whose encoder hangs on one frame of the first session to reach it, until released."""

    def hang(frame):
        if frame.index == STUCK_FRAME and not hung:
            hung.append(frame.pts)
            release.wait(30)

    return HookedBackend("cpu backend with a stage that hangs, for a test", before_encode=hang)


async def test_a_stuck_stage_ends_its_session_and_frees_the_slot(server_factory):
    release, hung = threading.Event(), list[int]()
    stuck = stuck_backend(release, hung)
    port = free_port()
    srv = await server_factory(resolve=lambda requested, output: stuck, stage_timeout_seconds=3.0, max_sessions=1,
                               metrics_port=port)
    packets = clip_packets(20)
    address = f"127.0.0.1:{srv.port}"
    try:
        started = time.monotonic()
        async with grpc.aio.insecure_channel(address) as ch:
            out = await stream(ch, [h264_config(), *packets, END], timeout=30)
        took = time.monotonic() - started
        assert hung, f"the stage never hung: {out.code} {out.details}"
        assert out.code == grpc.StatusCode.INTERNAL
        assert f"encoding the frame with pts {hung[0]} took longer than 3 seconds" in out.details
        assert "--stage-timeout-seconds" in out.details
        assert took < 20, took
        # The one session slot is free again while the stuck call still runs, and the next session works.
        async with grpc.aio.insecure_channel(address) as ch:
            ok = await stream(ch, [h264_config(), *packets, END], timeout=30)
        assert ok.code == grpc.StatusCode.OK, ok.details
        assert sum(r.WhichOneof("msg") == "packet" for r in ok.responses) == len(packets)
        metrics = scrape(f"http://127.0.0.1:{port}/metrics")
        assert metrics["facestream_stuck_stage_calls_total"] == 1
    finally:
        release.set()
    await asyncio.sleep(0.2)


async def _service_health(channel: grpc.aio.Channel) -> int:
    reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=SERVICE_NAME))
    return reply.status


async def test_a_server_with_stuck_calls_on_half_its_workers_takes_no_new_sessions(server_factory):
    release, hung = threading.Event(), list[int]()
    stuck = stuck_backend(release, hung)
    srv = await server_factory(resolve=lambda requested, output: stuck, stage_timeout_seconds=2.0, workers=2)
    packets = clip_packets(10)
    address = f"127.0.0.1:{srv.port}"
    try:
        async with grpc.aio.insecure_channel(address) as ch:
            first = await stream(ch, [h264_config(), *packets, END], timeout=30)
            assert first.code == grpc.StatusCode.INTERNAL and hung
            refused = await stream(ch, [h264_config(), *packets, END], timeout=30)
            assert refused.code == grpc.StatusCode.UNAVAILABLE
            assert "1 stage calls on this server are stuck" in refused.details
            assert "use another server" in refused.details
            assert await _service_health(ch) == NOT_SERVING, "not ready for new streams while workers are stuck"
            release.set()
            for _ in range(50):   # the stuck call returns and gives its worker back
                if not srv.service.stuck and await _service_health(ch) == SERVING:
                    break
                await asyncio.sleep(0.1)
            assert await _service_health(ch) == SERVING
            again = await stream(ch, [h264_config(), *packets, END], timeout=30)
        assert again.code == grpc.StatusCode.OK, again.details
        assert sum(r.WhichOneof("msg") == "packet" for r in again.responses) == len(packets)
    finally:
        release.set()


async def test_calls_queued_behind_a_stuck_one_end_their_session_as_overloaded(server_factory):
    """One worker: session A hangs it; session B, already running, cannot get a worker."""
    release, hung = threading.Event(), list[int]()
    stuck = stuck_backend(release, hung)
    srv = await server_factory(resolve=lambda requested, output: stuck, stage_timeout_seconds=2.0, workers=1)
    address = f"127.0.0.1:{srv.port}"
    try:
        async with grpc.aio.insecure_channel(address) as ch:
            first = asyncio.create_task(stream(ch, [h264_config(), *clip_packets(10), END], timeout=30))
            while not hung:
                await asyncio.sleep(0.01)
            b = await stream(ch, [h264_config(), *clip_packets(10), END], timeout=30)
            a = await first
        # A ends on whichever of its calls reaches the limit first: the stuck one, or one queued behind it.
        assert (a.code == grpc.StatusCode.INTERNAL and "took longer than 2 seconds" in a.details) or \
            (a.code == grpc.StatusCode.UNAVAILABLE and "for a free worker" in a.details), (a.code, a.details)
        assert b.code == grpc.StatusCode.UNAVAILABLE, (b.code, b.details)
        assert "waited 2 seconds for a free worker: this server is overloaded" in b.details
    finally:
        release.set()


def test_a_stuck_call_returning_after_the_server_stopped_tells_no_one():
    """The call a stopped server left running returns on its worker thread after the event loop closed:
    readiness has nothing left to update, and nothing is raised there."""
    from grpc_health.v1 import health

    from facestream.server.admission import SessionSlots
    from facestream.server.config import ServerConfig
    from facestream.server.readiness import Readiness
    from facestream.server.stage_runner import StuckCalls

    stuck = StuckCalls()
    loop = asyncio.new_event_loop()

    async def watch() -> Readiness:
        return Readiness(health.aio.HealthServicer(), SessionSlots(ServerConfig(), stuck), stuck)

    loop.run_until_complete(watch())
    loop.close()
    errors: list[BaseException] = []

    def returned() -> None:
        try:
            stuck.on_change()
        except BaseException as exc:  # noqa: BLE001 - any exception here is the failure
            errors.append(exc)

    t = threading.Thread(target=returned)
    t.start()
    t.join()
    assert errors == []
