"""Callers without credentials cost next to nothing: their streams are refused before a message is read,
however large the messages they push, and the server neither reads nor keeps them."""
from __future__ import annotations

import asyncio
import os
import time

import grpc

from facestream.proto import pb
from facestream.server.auth import hash_key

from fs_helpers import Served

KEY = "fs_hostile-victim-key"
METHOD = "/facestream.v1.FaceStream/Process"
CLIENTS = 40
FLOOD_SECONDS = 6.0


async def flood(address: str, message: bytes, stop: float, counts: dict) -> None:
    """Opens streams without credentials and pushes `message` on each until the server ends it, until `stop`."""
    async with grpc.aio.insecure_channel(address) as ch:
        while time.monotonic() < stop:
            call = ch.stream_stream(METHOD)(timeout=10)
            try:
                while time.monotonic() < stop:
                    await call.write(message)
                counts["cut short"] += 1
            except (grpc.aio.AioRpcError, asyncio.InvalidStateError):
                counts["ended by the server"] += 1
            call.cancel()


async def test_a_flood_without_credentials_is_not_read(victim_of):
    message = pb.ProcessRequest(packet=pb.Packet(data=os.urandom(8_000_000), pts=1)).SerializeToString()
    counts = {"ended by the server": 0, "cut short": 0}
    with Served("--api-keys", f"victim:{hash_key(KEY)}") as srv:
        victim = victim_of(srv, KEY)
        await victim.ready()
        t0, c0 = time.monotonic(), srv.cpu_seconds()
        await asyncio.sleep(2.0)
        usual = (srv.cpu_seconds() - c0) / (time.monotonic() - t0)
        await victim.attack()
        t0, c0 = time.monotonic(), srv.cpu_seconds()
        stop = time.monotonic() + FLOOD_SECONDS
        await asyncio.gather(*(flood(srv.address, message, stop, counts) for _ in range(CLIENTS)))
        during = (srv.cpu_seconds() - c0) / (time.monotonic() - t0)
        m = srv.metrics()
        await victim.finish(f"{CLIENTS} clients without credentials push 8 MB")
    calls = sum(counts.values())
    print(f"{calls} streams refused; server CPU {usual:.2f} cores with the victim alone, {during:.2f} during the "
          "flood")
    assert counts["ended by the server"] >= calls - CLIENTS, counts
    assert m['facestream_auth_failures_total{reason="missing"}'] >= calls - CLIENTS
    assert during < usual + 1.0, "refusing the flood cost the server too much CPU"
