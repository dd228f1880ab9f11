"""Where the SDK opens a session when it has several servers: in turn, past the ones that refuse,
and never on one whose health says it takes no new sessions."""
from __future__ import annotations

import asyncio

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from facestream.client import FaceStreamClient, FaceStreamError
from facestream.client.live import raw_config
from facestream.client.protocol import SERVICE_NAME
from facestream.client.targets import names_several_servers, split_targets

from support import target

CONFIG = raw_config(64, 64)
SERVING, NOT_SERVING = health_pb2.HealthCheckResponse.SERVING, health_pb2.HealthCheckResponse.NOT_SERVING


def refusals(srv, code: str = "RESOURCE_EXHAUSTED") -> float:
    """Streams the server ended with `code` (refused ones included)."""
    return srv.metrics.sessions.labels(code)._value.get()


async def health(srv) -> int:
    async with grpc.aio.insecure_channel(target(srv)) as channel:
        reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=SERVICE_NAME))
    return reply.status


async def until_health(srv, status: int, within: float = 3.0) -> None:
    for _ in range(int(within / 0.1)):
        if await health(srv) == status:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{target(srv)} did not report {health_pb2.HealthCheckResponse.ServingStatus.Name(status)} "
                         f"for {SERVICE_NAME} within {within} s")


def test_targets_name_one_server_or_several():
    assert split_targets("a:1") == ["a:1"]
    assert split_targets("a:1, b:2") == ["a:1", "b:2"]
    assert split_targets(["a:1", "b:2,c:3"]) == ["a:1", "b:2", "c:3"]
    assert split_targets("ipv4:10.0.0.1:1,10.0.0.2:1") == ["ipv4:10.0.0.1:1,10.0.0.2:1"]
    with pytest.raises(ValueError):
        split_targets(" , ")
    assert not names_several_servers(["a:1"]) and not names_several_servers(["ipv4:10.0.0.1:1"])
    assert names_several_servers(["a:1", "b:2"]) and names_several_servers(["dns:///facestream-headless:50051"])
    assert names_several_servers(["ipv4:10.0.0.1:1,10.0.0.2:1"])


async def test_failover_is_on_where_there_is_somewhere_to_go():
    for target_arg, expected in (("127.0.0.1:1", 0.0), ("127.0.0.1:1,127.0.0.1:2", 10.0),
                                 ("dns:///localhost:1", 10.0)):
        async with FaceStreamClient(target_arg) as client:
            assert client.failover_seconds == expected
    async with FaceStreamClient("127.0.0.1:1", failover_seconds=5) as client:
        assert client.failover_seconds == 5


async def test_a_refused_start_is_tried_on_the_other_servers(server_factory):
    full, also_full = await server_factory(max_sessions=1), await server_factory(max_sessions=1)
    free = await server_factory()
    async with FaceStreamClient([target(full), target(also_full)]) as holder, holder.live(CONFIG), holder.live(CONFIG):
        # Without health gating (no failover) the full server is asked, and refuses.
        async with FaceStreamClient([target(full), target(free)], failover_seconds=0) as client, \
                client.live(CONFIG) as session:
            assert session.target == target(free)  # the turn started at the full one
        assert refusals(full) == 1
        # With one server there is nowhere else: its own answer comes back.
        async with FaceStreamClient(target(full)) as alone:
            with pytest.raises(FaceStreamError) as err:
                await alone.live(CONFIG).start()
        assert err.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED and "limit of 1" in err.value.message
        # When every server refuses, the error gives each one's reason.
        async with FaceStreamClient([target(full), target(also_full)], failover_seconds=0) as both:
            with pytest.raises(FaceStreamError) as err:
                await both.live(CONFIG).start()
    assert err.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert err.value.message.startswith("no server took the session") and err.value.message.count("limit of 1") == 2


async def test_a_server_that_is_not_ready_is_sent_no_sessions(server_factory):
    draining, ready = await server_factory(), await server_factory()
    async with FaceStreamClient([target(draining), target(ready)]) as client:
        await draining.drain(1)  # no sessions: returns at once, health NOT_SERVING from now on
        sessions = [client.live(CONFIG) for _ in range(4)]
        for session in sessions:
            await session.start()
        assert {s.target for s in sessions} == {target(ready)}
        for session in sessions:
            await session.close()
    assert refusals(draining, "UNAVAILABLE") == 0, "a stream reached the draining server"


async def test_a_full_server_turns_not_ready_and_gets_no_new_streams(server_factory):
    full = await server_factory(max_sessions=1)
    others = [await server_factory(max_sessions=2) for _ in range(2)]
    async with FaceStreamClient([target(full), *map(target, others)]) as client:
        first = client.live(CONFIG)
        assert (await first.start()) and first.target == target(full)
        await until_health(full, NOT_SERVING)  # full: the Service and the SDK stop sending it streams
        assert await health(others[0]) == SERVING
        await asyncio.sleep(0.3)  # the client's health watch hears of it
        more = [client.live(CONFIG) for _ in range(4)]
        for session in more:
            await session.start()
        assert {s.target for s in more} == set(map(target, others))
        assert refusals(full) == 0, "a stream was sent to the full server"
        assert len(full.service.sessions) == 1, "its running stream goes on"
        await first.close()
        await until_health(full, SERVING)  # a slot is free again
        for session in more:
            await session.close()
