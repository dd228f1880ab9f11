"""The two drop policies under load: lossless throttles the sender, real-time carries faces or drops."""
from __future__ import annotations

import asyncio
import time

import av
import grpc
import numpy as np
import pytest

from facestream.proto import pb, rpc

from fs_helpers import END, HookedBackend, clip_packets, h264_config

W, H = 640, 360


def slow_backend(vision_s: float = 0.0, encode_s: float = 0.0) -> HookedBackend:
    """The CPU backend with an artificially slow vision stage and/or encoder."""
    return HookedBackend("cpu backend, slowed down for a test",
                         before_vision=(lambda frame: time.sleep(vision_s)) if vision_s else None,
                         before_encode=(lambda frame: time.sleep(encode_s)) if encode_s else None)


async def test_lossless_throttles_a_fast_sender(server_factory):
    """A client that writes raw frames as fast as it can but reads nothing: the server stops
    reading once its queues are full, and HTTP/2 flow control blocks the client's writes."""
    srv = await server_factory(queue_depth=2)
    frame = np.random.default_rng(0).integers(0, 255, W * H * 3 // 2, dtype=np.uint8).tobytes()
    total = 120
    config = pb.ProcessRequest(config=pb.SessionConfig(
        input=pb.InputConfig(codec=pb.CODEC_RAW_NV12, width=W, height=H),
        output=pb.OutputConfig(codec=pb.CODEC_RAW_NV12)))
    async with grpc.aio.insecure_channel(f"127.0.0.1:{srv.port}") as ch:
        call = rpc.FaceStreamStub(ch).Process()
        await call.write(config)
        assert (await call.read()).WhichOneof("msg") == "started"
        written = 0

        async def write():
            nonlocal written
            for i in range(total):
                await call.write(pb.ProcessRequest(packet=pb.Packet(data=frame, pts=i * 3000)))
                written += 1
            await call.write(END)
            await call.done_writing()

        writer = asyncio.create_task(write())
        await asyncio.sleep(3.0)
        session = next(iter(srv.service.sessions.values()))
        accepted = session.stats.packets_in
        assert not writer.done(), "the client was never slowed down"
        assert accepted <= 40, f"the server accepted {accepted} packets while nobody read its output"
        assert written < total
        await asyncio.sleep(1.0)
        assert session.stats.packets_in == accepted, "the server kept reading while stalled"
        # Reading the output lets everything through, losslessly.
        statuses = []
        while (r := await call.read()) is not grpc.aio.EOF:
            if r.WhichOneof("msg") == "packet":
                statuses.append(r.packet.status)
        await writer
        assert await call.code() == grpc.StatusCode.OK
    assert statuses == [pb.FRAME_PROCESSED] * total
    print(f"\nlossless: {accepted} of {total} packets accepted while the output was not read")


async def paced(srv, packets, config, fps=30.0):
    """Sends like a camera; returns the output packets and the stats."""
    async with grpc.aio.insecure_channel(f"127.0.0.1:{srv.port}") as ch:
        call = rpc.FaceStreamStub(ch).Process()
        await call.write(config)
        assert (await call.read()).WhichOneof("msg") == "started"

        async def send():
            start = time.perf_counter()
            for i, p in enumerate(packets):
                await asyncio.sleep(max(0.0, start + i / fps - time.perf_counter()))
                await call.write(p)
            await call.write(END)
            await call.done_writing()

        sender = asyncio.create_task(send())
        out, stats = [], None
        while (r := await call.read()) is not grpc.aio.EOF:
            if r.WhichOneof("msg") == "packet":
                out.append(r.packet)
            elif r.WhichOneof("msg") == "stats":
                stats = r.stats
        await sender
        assert await call.code() == grpc.StatusCode.OK, await call.details()
        return out, stats


def decode_h264(packets: list[pb.OutputPacket]) -> int:
    ctx = av.CodecContext.create("h264", "r")
    ctx.options = {"err_detect": "crccheck+bitstream+buffer"}
    n = 0
    for p in packets:
        n += len(ctx.decode(av.Packet(p.data)))
    return n + len(ctx.decode(None))


@pytest.mark.parametrize("slow,expect", [
    (dict(vision_s=0.09), "carried"),
    (dict(encode_s=0.08), "dropped"),
])
async def test_realtime_keeps_up_and_reports(server_factory, slow, expect):
    srv = await server_factory(resolve=lambda requested, output: slow_backend(**slow), realtime_latency_ms=100)
    packets = clip_packets(75)
    config = h264_config(return_faces=True, drop_policy=pb.DROP_POLICY_REALTIME)
    out, stats = await paced(srv, packets, config)
    status = [p.status for p in out]
    n_pass, n_drop = status.count(pb.FRAME_PASSED_THROUGH), status.count(pb.FRAME_DROPPED)
    n_carried = sum(f.carried for p in out for f in p.faces)
    print(f"\nrealtime with {slow}: {status.count(pb.FRAME_PROCESSED)} processed ({n_carried} faces carried), "
          f"{n_pass} passed through, {n_drop} dropped of {len(out)}")
    # Every input frame is reported, in order, with what happened to it.
    assert [p.frame_index for p in out] == list(range(len(packets)))
    assert [p.pts for p in out] == sorted(p.packet.pts for p in packets)
    assert stats.frames_out == len(out)
    assert stats.frames_passed_through == n_pass and stats.frames_dropped == n_drop
    if expect == "carried":
        assert stats.faces_carried == n_carried > 0
    else:
        assert n_drop > 0
    assert status.count(pb.FRAME_PROCESSED) > 0
    for p in out:
        if p.status == pb.FRAME_DROPPED:
            assert p.data == b""
        if p.status == pb.FRAME_PASSED_THROUGH:
            assert not p.faces  # vision skipped it, and no face was tracked to carry into it
    # What was encoded decodes cleanly: the reference chain is intact.
    sent = [p for p in out if p.status != pb.FRAME_DROPPED]
    assert decode_h264(sent) == len(sent)
    # Latency stays bounded instead of growing with the backlog.
    assert np.median([p.timings.total_ms for p in out[-20:]]) < 1000


async def test_lossless_with_a_slow_stage_processes_everything(server_factory):
    srv = await server_factory(resolve=lambda requested, output: slow_backend(vision_s=0.06), realtime_latency_ms=50)
    packets = clip_packets(30)
    out, stats = await paced(srv, packets, h264_config(return_faces=True), fps=60)
    assert [p.status for p in out] == [pb.FRAME_PROCESSED] * len(packets)
    assert stats.frames_passed_through == stats.frames_dropped == 0
    assert decode_h264(out) == len(packets)
