"""A well-behaved client to run beside an attack, in a process of its own (so that the attack's
clients do not slow it down): one paced real-time session of the test clip, looped, and a health
check every 100 ms. Prints "ready" once frames come back; when stdin closes it ends the stream
and prints one JSON line: the arrival time of every output packet, each health check's latency,
and how each session ended.

    python victim.py ADDRESS CLIP [API_KEY]
"""
from __future__ import annotations

import asyncio
import json
import sys
import time

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from facestream.client import VideoSource
from facestream.proto import pb, rpc

FPS = 30.0
HEALTH_EVERY = 0.1


def clip_packets(path: str) -> tuple[pb.InputConfig, list[pb.Packet]]:
    src = VideoSource(path)
    try:
        return src.input_config(), [pb.Packet(data=p.data, pts=p.pts) for p in src]
    finally:
        src.close()


async def stdin_closed() -> None:
    await asyncio.to_thread(sys.stdin.read)


async def paced(call, packets: list[pb.Packet], step: int, stop: asyncio.Event) -> None:
    """Sends the clip again and again at FPS, timestamps running on, until `stop`."""
    start, n = time.perf_counter(), 0
    while not stop.is_set():
        p = packets[n % len(packets)]
        await call.write(pb.ProcessRequest(packet=pb.Packet(data=p.data, pts=n * step)))
        n += 1
        await asyncio.sleep(max(0.0, start + n / FPS - time.perf_counter()))
    await call.write(pb.ProcessRequest(end=pb.EndOfStream()))
    await call.done_writing()


async def health(channel: grpc.aio.Channel, stop: asyncio.Event, out: list) -> None:
    stub = health_pb2_grpc.HealthStub(channel)
    while not stop.is_set():
        t = time.time()
        try:
            await stub.Check(health_pb2.HealthCheckRequest(), timeout=10)
            out.append([t, time.time() - t])
        except grpc.aio.AioRpcError as exc:
            out.append([t, None, exc.code().name])
        await asyncio.sleep(HEALTH_EVERY)


async def session(channel, config, packets, step, metadata, stop, frames, ready) -> tuple[str, str]:
    """One session until `stop` (or until the server ends it); its status code and details."""
    call = rpc.FaceStreamStub(channel).Process(metadata=metadata)
    await call.write(pb.ProcessRequest(config=config))
    sender = asyncio.create_task(paced(call, packets, step, stop))
    try:
        while (r := await call.read()) is not grpc.aio.EOF:
            if r.WhichOneof("msg") == "packet":
                frames.append(time.time())
                if not ready.is_set() and len(frames) >= 5:
                    print("ready", flush=True)
                    ready.set()
    except grpc.aio.AioRpcError:
        pass
    sender.cancel()
    await asyncio.gather(sender, return_exceptions=True)
    return (await call.code()).name, await call.details() or ""


async def main(address: str, key: str, clip: str) -> dict:
    """Sessions one after another until stdin closes: a session ended by the server's session length
    limit is followed by the next, the way a live client goes on."""
    inp, packets = clip_packets(clip)
    # The clip's pts step, so that the looped stream keeps a steady frame rate.
    step = round(inp.time_base.den / (inp.frame_rate.num / inp.frame_rate.den) / inp.time_base.num)
    config = pb.SessionConfig(input=inp, drop_policy=pb.DROP_POLICY_REALTIME, label="victim")
    metadata = (("x-api-key", key),) if key else ()
    stop, ready = asyncio.Event(), asyncio.Event()
    frames: list[float] = []
    checks: list = []
    endings: list[tuple[str, str]] = []
    watcher = asyncio.create_task(stdin_closed())
    watcher.add_done_callback(lambda _: stop.set())
    async with grpc.aio.insecure_channel(address) as channel:
        prober = asyncio.create_task(health(channel, stop, checks))
        while not stop.is_set():
            endings.append(await session(channel, config, packets, step, metadata, stop, frames, ready))
            if endings[-1][0] != "OK" and "reached this server's limit of" not in endings[-1][1]:
                break
        stop.set()
        await prober
    return {"frames": frames, "health": checks, "endings": endings}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(sys.argv[1], sys.argv[3] if len(sys.argv) > 3 else "", sys.argv[2]))),
          flush=True)
