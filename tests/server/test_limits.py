"""Per-session limits, message sizes, garbage protobuf and connection settings on a real server."""
from __future__ import annotations

import asyncio
import os
import time

import grpc
import pytest

from facestream.proto import pb, rpc
from facestream.server.app import grpc_options
from facestream.server.config import ServerConfig

from fs_helpers import END, clip_input, clip_packets, h264_config, stream

EXHAUSTED = grpc.StatusCode.RESOURCE_EXHAUSTED
INVALID = grpc.StatusCode.INVALID_ARGUMENT


@pytest.fixture(scope="module")
def packets():
    return clip_packets(40)


async def run(srv, requests, **kw):
    async with grpc.aio.insecure_channel(f"127.0.0.1:{srv.port}") as ch:
        return await stream(ch, requests, **kw)


async def test_declared_frame_rate_over_the_limit(server_factory):
    srv = await server_factory(max_fps=60)
    inp = clip_input()
    inp.frame_rate.CopyFrom(pb.Rational(num=240, den=1))
    out = await run(srv, [h264_config(input=inp), END])
    assert out.code == EXHAUSTED
    assert "frame_rate 240/1 (240 fps) is over this server's limit of 60 fps" in out.details


async def test_measured_frame_rate_over_the_limit(server_factory, packets):
    """The clip's packets restamped 1/240 s apart: the rate measured from pts is over 60."""
    srv = await server_factory(max_fps=60)
    fast = [pb.ProcessRequest(packet=pb.Packet(data=p.packet.data, pts=i * 375)) for i, p in enumerate(packets)]
    inp = clip_input()
    inp.time_base.CopyFrom(pb.Rational(num=1, den=90000))
    out = await run(srv, [h264_config(input=inp), *fast, END])
    assert out.code == EXHAUSTED, out
    assert "the input runs at 240.0 frames per second" in out.details and "limit of 60" in out.details
    # The same packets at their real rate pass.
    ok = await run(srv, [h264_config(), *packets, END])
    assert ok.code == grpc.StatusCode.OK and len(ok.packets) == len(packets)


async def test_session_length_limit(server_factory, packets):
    srv = await server_factory(max_session_seconds=1.0)

    async with grpc.aio.insecure_channel(f"127.0.0.1:{srv.port}") as ch:
        call = rpc.FaceStreamStub(ch).Process()
        await call.write(h264_config())
        t0 = time.monotonic()
        for p in packets:
            await call.write(p)
            await asyncio.sleep(1 / 30)
            if time.monotonic() - t0 > 1.5:
                break
        kinds = []
        try:
            while (r := await call.read()) is not grpc.aio.EOF:
                kinds.append(r)
                if r.WhichOneof("msg") == "error":
                    await call.done_writing()
        except grpc.aio.AioRpcError:
            pass
        assert await call.code() == EXHAUSTED
        assert "reached this server's limit of 1 seconds; open a new session" in await call.details()
    assert kinds[-1].error.code_name == "RESOURCE_EXHAUSTED"


async def test_oversized_message_and_packet(server_factory, packets):
    srv = await server_factory(max_packet_bytes=20_000)
    healthy = asyncio.create_task(run(srv, [h264_config(), *packets, END]))
    # Over the packet limit but within the message limit: the session says which packet.
    big = pb.ProcessRequest(packet=pb.Packet(data=os.urandom(30_000), pts=5))
    out = await run(srv, [h264_config(), big, END])
    assert out.code == EXHAUSTED and "has 30000 bytes, over this server's limit of 20000" in out.details
    # Over the message limit: the transport refuses it before the service sees it.
    huge = pb.ProcessRequest(packet=pb.Packet(data=os.urandom(200_000), pts=6))
    out = await run(srv, [h264_config(), huge, END])
    assert out.code == EXHAUSTED and "larger than max" in out.details
    ok = await healthy
    assert ok.code == grpc.StatusCode.OK and len(ok.packets) == len(packets)


async def test_garbage_protobuf(server):
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as ch:
        raw = ch.stream_stream("/facestream.v1.FaceStream/Process")  # bytes in, bytes out
        call = raw()
        await call.write(b"\xff\xff\xff\xff\x0f")
        first = pb.ProcessResponse.FromString(await call.read())
        await call.done_writing()
        assert await call.code() == INVALID
        assert "is not a valid ProcessRequest protobuf" in await call.details()
        assert first.error.code_name == "INVALID_ARGUMENT"
        # A valid config, then garbage.
        call = raw()
        await call.write(h264_config().SerializeToString())
        await call.write(b"\x12\xff\xff\xff\xff\x0f")
        try:
            while await call.read() is not grpc.aio.EOF:
                pass
        except grpc.aio.AioRpcError:
            pass
        assert await call.code() == INVALID
        assert "message 2 (6 bytes) is not a valid ProcessRequest protobuf" in await call.details()
        unary = ch.unary_unary("/facestream.v1.FaceStream/GetCapabilities")
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await unary(b"\xff\xff")
        assert info.value.code() == INVALID


def test_connection_options():
    opts = dict(grpc_options(ServerConfig(max_connection_age_seconds=600, max_connection_idle_seconds=300,
                                          keepalive_seconds=30, max_packet_bytes=1 << 20)))
    assert opts["grpc.max_connection_age_ms"] == 600_000
    assert opts["grpc.max_connection_age_grace_ms"] == 4 * 3600 * 1000  # defaults to the session length limit
    assert opts["grpc.max_connection_idle_ms"] == 300_000
    assert opts["grpc.keepalive_time_ms"] == 30_000 and opts["grpc.keepalive_timeout_ms"] == 20_000
    assert opts["grpc.max_receive_message_length"] == (1 << 20) + (64 << 10)
    assert "grpc.max_connection_age_ms" not in dict(grpc_options(ServerConfig()))


async def test_stream_outlives_max_connection_age(server_factory, packets):
    """With a short connection age, a running stream still finishes within the grace period,
    and the client's next session simply goes over a new connection."""
    srv = await server_factory(max_connection_age_seconds=0.5, max_connection_age_grace_seconds=30)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{srv.port}") as ch:
        call = rpc.FaceStreamStub(ch).Process()
        await call.write(h264_config())
        for p in packets[:45]:
            await call.write(p)
            await asyncio.sleep(1 / 30)
        await call.write(END)
        await call.done_writing()
        n = 0
        while (r := await call.read()) is not grpc.aio.EOF:
            n += r.WhichOneof("msg") == "packet"
        assert await call.code() == grpc.StatusCode.OK and n == len(packets[:45])
        again = await stream(ch, [h264_config(), *packets[:5], END])
        assert again.code == grpc.StatusCode.OK


async def test_capabilities_report_the_limits(server_factory):
    srv = await server_factory(max_fps=50, max_session_seconds=600)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{srv.port}") as ch:
        caps = await rpc.FaceStreamStub(ch).GetCapabilities(pb.GetCapabilitiesRequest())
    assert caps.limits.max_fps == 50 and caps.limits.max_session_seconds == 600


async def test_idle_session_is_closed(server_factory):
    srv = await server_factory(idle_timeout_seconds=1.0)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{srv.port}") as ch:
        call = rpc.FaceStreamStub(ch).Process()
        await call.write(h264_config())
        for p in clip_packets(3):
            await call.write(p)
        kinds, error = [], None
        with pytest.raises(grpc.aio.AioRpcError) as status:  # the client goes quiet after 3 packets
            while (r := await call.read()) is not grpc.aio.EOF:
                kinds.append(r.WhichOneof("msg"))
                if kinds[-1] == "error":
                    error = r.error
        assert status.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert kinds == ["started", "packet", "packet", "packet", "error"]
    assert error is not None and "nothing arrived for 1 seconds, this server's idle limit" in error.message
    for _ in range(50):  # the slot is freed right after the status went out
        if not srv.service.sessions:
            break
        await asyncio.sleep(0.05)
    assert not srv.service.sessions
