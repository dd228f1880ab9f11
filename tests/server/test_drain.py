"""SIGTERM on `facestream serve`: NOT_SERVING, new sessions UNAVAILABLE, running ones finish, exit 0."""
from __future__ import annotations

import asyncio
import json
import signal

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from facestream.proto import rpc

from fs_helpers import END, Served, clip_packets, h264_config

PACKETS = 75  # 2.5 s of video at 30 fps, sent like a camera


async def paced_session(address: str, packets, started: asyncio.Event):
    async with grpc.aio.insecure_channel(address) as ch:
        call = rpc.FaceStreamStub(ch).Process()
        await call.write(h264_config())
        assert (await call.read()).WhichOneof("msg") == "started"
        started.set()

        async def send():
            for p in packets:
                await call.write(p)
                await asyncio.sleep(1 / 30)
            await call.write(END)
            await call.done_writing()

        sender = asyncio.create_task(send())
        kinds = []
        while (r := await call.read()) is not grpc.aio.EOF:
            kinds.append(r.WhichOneof("msg"))
        await sender
        return await call.code(), kinds


async def test_sigterm_drains(tmp_path):
    log_path = tmp_path / "server.log"
    packets = clip_packets(PACKETS)
    with Served("--grace-seconds", "30", "--log-format", "json", log_path=log_path) as srv:
        events = [asyncio.Event(), asyncio.Event()]
        sessions = [asyncio.create_task(paced_session(srv.address, packets, e)) for e in events]
        await asyncio.gather(*(e.wait() for e in events))
        await asyncio.sleep(0.5)
        srv.proc.send_signal(signal.SIGTERM)
        await asyncio.sleep(0.5)
        async with grpc.aio.insecure_channel(srv.address) as ch:
            health = await health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest())
            assert health.status == health_pb2.HealthCheckResponse.NOT_SERVING
            call = rpc.FaceStreamStub(ch).Process()
            await call.write(h264_config())
            first = await call.read()
            assert first.WhichOneof("msg") == "error" and first.error.code_name == "UNAVAILABLE"
            await call.done_writing()
            assert await call.code() == grpc.StatusCode.UNAVAILABLE
            assert "shutting down" in await call.details() and "retry" in await call.details()
            assert srv.proc.poll() is None, "the server exited while sessions were running"
        results = await asyncio.gather(*sessions)
        for code, kinds in results:
            assert code == grpc.StatusCode.OK
            assert kinds == ["packet"] * PACKETS + ["stats"]
        assert await asyncio.to_thread(srv.proc.wait, 30) == 0
    records = [json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")]
    audit = [r for r in records if r["logger"] == "facestream.audit"]
    assert sorted(r["ended"]["code"] for r in audit) == ["OK", "OK", "UNAVAILABLE"]
    assert all(r["session_id"] for r in audit)
    assert any("draining: 2 sessions running" in r["message"] for r in records)
