"""Clients that stop reading (and sending) cannot hold a session slot: the server ends such a stream
even while its response write is blocked by flow control, and stops reading a client that only sends."""
from __future__ import annotations

import asyncio
import time

import grpc
import numpy as np

from facestream.proto import pb, rpc

from fs_helpers import Served, clip_input, clip_packets

W, H = 640, 360
RAW = pb.ProcessRequest(config=pb.SessionConfig(input=pb.InputConfig(codec=pb.CODEC_RAW_NV12, width=W, height=H),
                                                output=pb.OutputConfig(codec=pb.CODEC_RAW_NV12)))
FRAME = np.random.default_rng(0).integers(0, 255, W * H * 3 // 2, dtype=np.uint8).tobytes()
ENDED_BY_SERVER = (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.RESOURCE_EXHAUSTED)


def raw_frame(i: int) -> pb.ProcessRequest:
    return pb.ProcessRequest(packet=pb.Packet(data=FRAME, pts=i * 3000))


class Stalled:
    """A Process stream whose client writes `requests` (then, with `forever`, raw frames without end) and
    reads nothing until `outcome()`."""

    def __init__(self, channel: grpc.aio.Channel, requests: list[pb.ProcessRequest], forever: bool = False) -> None:
        self.call = rpc.FaceStreamStub(channel).Process()
        self.written = 0
        self._writer = asyncio.create_task(self._write(requests, forever))

    async def _write(self, requests, forever: bool) -> None:
        try:
            for r in requests:
                await self.call.write(r)
                self.written += 1
            while forever:
                await self.call.write(raw_frame(self.written))
                self.written += 1
        except (grpc.aio.AioRpcError, asyncio.InvalidStateError):
            pass

    async def outcome(self) -> tuple[grpc.StatusCode, str, int]:
        """Reads what is left; the status, its details and how many responses were still waiting."""
        n = 0
        try:
            while await asyncio.wait_for(self.call.read(), 10) is not grpc.aio.EOF:
                n += 1
        except grpc.aio.AioRpcError:
            pass
        self._writer.cancel()
        return await self.call.code(), await self.call.details() or "", n

    def cancel(self) -> None:
        self._writer.cancel()
        self.call.cancel()


async def sessions_active(srv: Served, want: float, within: float) -> float:
    """Seconds until the server reports `want` running sessions; fails after `within`."""
    start = time.monotonic()
    while (m := srv.metrics())["facestream_sessions_active"] != want:
        assert time.monotonic() - start < within, f"{m['facestream_sessions_active']} sessions still running"
        await asyncio.sleep(0.1)
    return time.monotonic() - start


async def test_clients_that_neither_read_nor_send_lose_their_slots(victim_of, tmp_path):
    """Two raw-video clients and one H.264 client send, then neither send nor read: with a 3 s idle
    limit all three slots are free again within seconds, and every other client gets a session."""
    log = tmp_path / "server.log"
    with Served("--max-sessions", "4", "--idle-timeout-seconds", "3", log_path=log) as srv:
        victim = victim_of(srv)
        await victim.ready()
        await victim.attack()
        async with grpc.aio.insecure_channel(srv.address) as ch:
            stalled = [Stalled(ch, [RAW, *map(raw_frame, range(30))]) for _ in range(2)]
            stalled.append(Stalled(ch, [pb.ProcessRequest(config=pb.SessionConfig(input=clip_input())),
                                        *clip_packets()]))
            await sessions_active(srv, 4, within=10)
            refused = rpc.FaceStreamStub(ch).Process()
            await refused.write(RAW)
            assert (await refused.read()).error.code_name == "RESOURCE_EXHAUSTED"
            freed = await sessions_active(srv, 1, within=10)
            again = rpc.FaceStreamStub(ch).Process()
            await again.write(RAW)
            assert (await again.read()).WhichOneof("msg") == "started"
            again.cancel()
            outcomes = [await s.outcome() for s in stalled]
        await victim.finish("3 clients neither read nor send")
    print(f"slots freed {freed:.1f} s after the session limit was reached; the stalled clients got "
          f"{[code.name for code, _, _ in outcomes]}")
    assert freed < 3 + 4, freed
    for code, details, _ in outcomes:
        assert code in ENDED_BY_SERVER, (code, details)
        assert "seconds" in details
    assert "Traceback" not in log.read_text()


async def test_a_client_that_only_sends_is_ended_and_no_longer_read(victim_of):
    """A client that writes raw frames without end and never reads: the session ends at the idle limit
    (its output was not read), and the server stops reading it: its CPU use falls back to the victim's."""
    with Served("--max-sessions", "4", "--idle-timeout-seconds", "3") as srv:
        victim = victim_of(srv)
        await victim.ready()
        t0, c0 = time.monotonic(), srv.cpu_seconds()
        await asyncio.sleep(2.0)
        usual = (srv.cpu_seconds() - c0) / (time.monotonic() - t0)
        await victim.attack()
        async with grpc.aio.insecure_channel(srv.address) as ch:
            flood = Stalled(ch, [RAW], forever=True)
            await sessions_active(srv, 2, within=10)
            freed = await sessions_active(srv, 1, within=10)
            written = flood.written
            t0, c0 = time.monotonic(), srv.cpu_seconds()
            await asyncio.sleep(2.0)
            after = (srv.cpu_seconds() - c0) / (time.monotonic() - t0)
            assert flood.written - written <= 2, "the server kept reading the ended stream"
            code, details, _ = await flood.outcome()
            ended = srv.metrics()['facestream_sessions_total{code="DEADLINE_EXCEEDED"}']
        await victim.finish("a client sends raw frames, never reads")
    print(f"ended {freed:.1f} s after it started; server CPU {usual:.2f} cores before, {after:.2f} after; "
          f"the client saw {code.name}")
    # The server ended it for not reading; the client's own write fails once the server stops reading, and
    # grpc.aio then reports that failure (INTERNAL) instead of the status still queued behind the responses.
    assert ended == 1
    assert code != grpc.StatusCode.OK
    assert after < usual + 0.25


async def test_max_session_seconds_ends_a_stalled_stream(victim_of):
    """No idle limit: a client that sends a few frames and then neither reads nor sends is ended at
    --max-session-seconds, whatever its blocked write."""
    with Served("--max-sessions", "4", "--idle-timeout-seconds", "0", "--max-session-seconds", "6") as srv:
        async with grpc.aio.insecure_channel(srv.address) as ch:
            stalled = Stalled(ch, [RAW, *map(raw_frame, range(30))])
            opened = time.monotonic()
            victim = victim_of(srv)
            await victim.ready()
            await victim.attack()
            await sessions_active(srv, 1, within=10)
            took = time.monotonic() - opened
            await victim.finish("stalled stream past --max-session-seconds", settle=0.0)
            code, details, _ = await stalled.outcome()
    print(f"ended {took:.1f} s after it opened")
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and "limit of 6 seconds" in details, (code, details)
    assert took < 6 + 1.5


async def test_cancelling_during_a_blocked_write_is_not_a_server_fault(tmp_path):
    """Clients that stop reading and then cancel while the server's write waits on them: each session
    ends as CANCELLED, never INTERNAL, and nothing is logged as a failure."""
    log = tmp_path / "server.log"
    with Served("--max-sessions", "16", "--idle-timeout-seconds", "5", log_path=log) as srv:
        async with grpc.aio.insecure_channel(srv.address) as ch:
            for wait in (0.3, 0.6, 1.0, 1.5, 2.0):
                stalled = [Stalled(ch, [RAW, *map(raw_frame, range(20))]) for _ in range(3)]
                await asyncio.sleep(wait)
                for s in stalled:
                    s.cancel()
            await sessions_active(srv, 0, within=10)
        m = srv.metrics()
    assert m.get('facestream_errors_total{code="INTERNAL"}', 0) == 0
    assert m['facestream_sessions_total{code="CANCELLED"}'] == 15
    text = log.read_text()
    assert "Traceback" not in text and "INTERNAL" not in text
