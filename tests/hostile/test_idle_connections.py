"""Connections that hold something open and send nothing: Process streams without a config, and idle
connections to the metrics port. Each is closed within seconds and costs no thread."""
from __future__ import annotations

import asyncio
import socket
import time
import urllib.request

import grpc

from facestream.proto import rpc

from fs_helpers import Served, scrape

STREAMS = 1000
CHANNELS = 8
METRICS_CONNECTIONS = 2000


async def outcome(call) -> grpc.StatusCode:
    """The status, once the in-band error before it is read (gRPC gives a client its status after its messages)."""
    try:
        while await call.read() is not grpc.aio.EOF:
            pass
    except grpc.aio.AioRpcError:
        pass
    return await call.code()


async def test_streams_without_a_config_are_closed_and_counted(victim_of):
    with Served("--config-timeout-seconds", "2") as srv:
        victim = victim_of(srv)
        await victim.ready()
        await victim.attack()
        channels = [grpc.aio.insecure_channel(srv.address) for _ in range(CHANNELS)]
        opened = time.monotonic()
        calls = [rpc.FaceStreamStub(channels[i % CHANNELS]).Process() for i in range(STREAMS)]
        peak = 0.0
        while time.monotonic() - opened < 1.5:
            peak = max(peak, srv.metrics()["facestream_streams_open"])
            await asyncio.sleep(0.1)
        while (m := srv.metrics())["facestream_streams_open"] > 1 and time.monotonic() - opened < 15:
            await asyncio.sleep(0.1)
        took = time.monotonic() - opened
        await victim.finish(f"{STREAMS} streams send no config")
        codes = await asyncio.wait_for(asyncio.gather(*(outcome(c) for c in calls)), 15)
        for ch in channels:
            await ch.close()
    print(f"{STREAMS} config-less streams: {peak:.0f} open at the peak, all closed {took:.1f} s after opening")
    assert peak >= STREAMS, "streams waiting for their config are not in the metrics"
    assert set(codes) == {grpc.StatusCode.DEADLINE_EXCEEDED}, set(codes)
    assert took < 2 + 4
    assert m["facestream_streams_open"] == 1  # the victim's
    assert m['facestream_sessions_total{code="DEADLINE_EXCEEDED"}'] == STREAMS


def scrape_once(port: int) -> float:
    t = time.perf_counter()
    urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read()
    return time.perf_counter() - t


async def test_idle_metrics_connections_cost_no_thread(victim_of):
    with Served() as srv:
        victim = victim_of(srv)
        await victim.ready()
        threads = srv.threads()
        await victim.attack()
        idle = []
        for _ in range(METRICS_CONNECTIONS):
            s = socket.socket()
            s.setblocking(False)
            try:
                s.connect(("127.0.0.1", srv.metrics_port))
            except BlockingIOError:
                pass
            idle.append(s)
        await asyncio.sleep(1.0)
        during = srv.threads()
        scrape_s = await asyncio.to_thread(scrape_once, srv.metrics_port)  # a scraper still gets in
        for s in idle:
            s.close()
        await asyncio.sleep(1.0)
        after = srv.threads()
        m = scrape(f"http://127.0.0.1:{srv.metrics_port}/metrics")
        await victim.finish(f"{METRICS_CONNECTIONS} idle metrics connections")
    print(f"server threads: {threads} before, {during} with {METRICS_CONNECTIONS} idle metrics connections, "
          f"{after} after; a scrape during them took {scrape_s * 1000:.0f} ms")
    assert during <= threads + 2 and after <= threads + 2
    assert m["facestream_sessions_active"] == 1
