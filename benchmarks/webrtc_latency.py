"""Added latency through the WebRTC gateway, and how many peers one machine holds in real time.

    python benchmarks/webrtc_latency.py [--seconds 10] [--peers 1,2,3,4] [--out result.json]

Each call is two aiortc peers on loopback, as the gateway runs them: a "browser" that plays the
clip (scaled to 360p or 720p, looped at 30 fps) and shows what comes back, and the gateway side,
whose bot-kit track sends each frame through a facestream server (its own process, CPU backend)
and back. The added latency is the track's: frame received from the browser -> processed frame
handed to the encoder. Part of it is the server's own time per frame (its `total_ms` timing); the
rest is the gateway's: conversions and the gRPC round trip. The simulated browsers' VP8 coding runs
on the same machine, so the peer counts are a lower bound for a gateway whose browsers are elsewhere.

0. an echo call (the track sent straight back, no facestream): what the WebRTC loop alone costs;
1. raw NV12 and H.264 to the server, one peer, at 360p30 and 720p30;
2. 360p30 peers over raw NV12, 1, 2, 3, ... until a peer is no longer served in real time: fewer
   than 95 % of its frames handed on, or a p99 added latency over 100 ms.

Each configuration runs --repeat times (the wires taking turns). With each run: the cores busy in
the server's process and in this one (browsers and gateway side), and the load average, where other
work on the machine shows.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from aiortc import RTCConfiguration, RTCPeerConnection
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from facestream.client import FaceStreamClient
from facestream.client.api import parse_effects
from facestream.client.health import wait_serving
from facestream.client.webrtc import BeautifiedTrack, TrackResult, add_beautified_track
from facestream.client.webrtc.gateway import DEFAULT_EFFECTS
from facestream.client.webrtc.ice import offer_host_addresses

CLIP = Path(os.environ.get("FACESTREAM_MEDIA", Path(__file__).resolve().parents[2] / "shared" / "media")
            ) / "short_hamilton_clip.mp4"
FPS = 30
SIZES = {"360p": (640, 360), "720p": (1280, 720)}
REALTIME_SHARE = 0.95
REALTIME_P99_MS = 100.0


class ClipTrack(MediaStreamTrack):
    """The clip's frames at one size, looped, at FPS: a camera."""

    kind = "video"

    def __init__(self, pictures: list[np.ndarray]) -> None:
        super().__init__()
        self._pictures, self._index, self._start = pictures, 0, 0.0

    async def recv(self) -> av.VideoFrame:
        if self._index == 0:
            self._start = time.perf_counter()
        await asyncio.sleep(max(0.0, self._start + self._index / FPS - time.perf_counter()))
        frame = av.VideoFrame.from_ndarray(self._pictures[self._index % len(self._pictures)], format="yuv420p")
        frame.pts, frame.time_base = self._index * (90000 // FPS), Fraction(1, 90000)
        self._index += 1
        return frame


@dataclass
class Call:
    """One browser and the gateway's side of it; results are collected while `measuring`."""

    browser: RTCPeerConnection
    gateway: RTCPeerConnection
    results: list[TrackResult] = field(default_factory=list)
    shown: int = 0
    measuring: bool = False
    track: BeautifiedTrack | None = None


async def open_call(frames: list[np.ndarray], client: FaceStreamClient, wire: str) -> Call:
    """A call whose gateway side beautifies, or with `wire` "echo" sends the browser's track straight back."""
    call = Call(RTCPeerConnection(RTCConfiguration(iceServers=[])), RTCPeerConnection(RTCConfiguration(iceServers=[])))
    call.browser.addTrack(ClipTrack(frames))

    def keep(result: TrackResult) -> None:
        if call.measuring:
            call.results.append(result)

    @call.gateway.on("track")
    def on_track(track: MediaStreamTrack) -> None:
        if wire == "echo":
            call.gateway.addTrack(track)
            return
        call.track = add_beautified_track(call.gateway, track, client, effects=parse_effects(DEFAULT_EFFECTS),
                                          wire=wire, on_result=keep)

    @call.browser.on("track")
    def on_back(track: MediaStreamTrack) -> None:
        async def show() -> None:
            try:
                while True:
                    await track.recv()
                    call.shown += call.measuring
            except MediaStreamError:
                pass

        asyncio.ensure_future(show())

    await call.browser.setLocalDescription(await call.browser.createOffer())
    await call.gateway.setRemoteDescription(call.browser.localDescription)
    await call.gateway.setLocalDescription(await call.gateway.createAnswer())
    await call.browser.setRemoteDescription(call.gateway.localDescription)
    return call


def _pct(values: list[float], q: float) -> float:
    return round(float(np.percentile(values, q)), 1) if values else float("nan")


class CpuMeter:
    """Cores busy in the server's process and in this one (the browsers and the gateway side)."""

    def __init__(self, server_pid: int) -> None:
        import psutil

        self._processes = {"server": psutil.Process(server_pid), "peers": psutil.Process()}
        self._start: dict[str, float] = {}
        self._wall = 0.0

    def _used(self) -> dict[str, float]:
        return {name: sum(p.cpu_times()[:2]) for name, p in self._processes.items()}

    def start(self) -> None:
        self._start, self._wall = self._used(), time.perf_counter()

    def stop(self) -> dict[str, float]:
        wall = time.perf_counter() - self._wall
        return {name: round((used - self._start[name]) / wall, 2) for name, used in self._used().items()}


async def measure_echo(frames: list[np.ndarray], client: FaceStreamClient, cpu: CpuMeter, seconds: float) -> dict:
    """The same call with the track sent straight back: what the WebRTC loop alone costs."""
    call = await open_call(frames, client, "echo")
    await asyncio.sleep(3)
    cpu.start()
    call.measuring = True
    await asyncio.sleep(seconds)
    busy = cpu.stop()
    await call.browser.close()
    await call.gateway.close()
    return {"fps_shown": round(call.shown / seconds, 1), "cpu": busy}


async def measure(frames: list[np.ndarray], client: FaceStreamClient, cpu: CpuMeter, wire: str, peers: int,
                  seconds: float) -> dict:
    """`peers` calls at once: 3 s to settle, then `seconds` measured."""
    calls = [await open_call(frames, client, wire) for _ in range(peers)]
    await asyncio.sleep(3)
    counts = []
    cpu.start()
    for call in calls:
        assert call.track is not None, "no track arrived"
        call.measuring = True
        counts.append(call.track.stats.frames_in)
    await asyncio.sleep(seconds)
    busy = cpu.stop()
    per_peer = [_peer_figures(call, before) for call, before in zip(calls, counts, strict=True)]
    for call in calls:
        await call.browser.close()
        await call.gateway.close()
    everything = [r.latency_ms for call in calls for r in call.results]
    worst_share = min(p["share"] for p in per_peer)
    p99 = _pct(everything, 99)
    return {"wire": wire, "peers": peers, "p50": _pct(everything, 50), "p99": p99, "worst_share": worst_share,
            "cpu": busy, "realtime": worst_share >= REALTIME_SHARE and p99 <= REALTIME_P99_MS and not any(
                p["error"] for p in per_peer), "per_peer": per_peer}


def _peer_figures(call: Call, frames_in_before: int) -> dict:
    call.measuring = False
    assert call.track is not None
    frames_in = call.track.stats.frames_in - frames_in_before
    latencies = [r.latency_ms for r in call.results]
    server = [r.packet.timings.total_ms for r in call.results]
    return {"frames_in": frames_in, "handed_on": len(call.results), "shown": call.shown,
            "share": round(len(call.results) / max(1, frames_in), 3),
            "p50": _pct(latencies, 50), "p99": _pct(latencies, 99), "server_p50": _pct(server, 50),
            "faces": sum(1 for r in call.results if r.packet.faces),
            "error": str(call.track.error) if call.track.error else None}


def clip_pictures(size: tuple[int, int]) -> list[np.ndarray]:
    """The clip's frames at `size`, as yuv420p arrays."""
    with av.open(str(CLIP)) as container:
        return [f.reformat(width=size[0], height=size[1], format="yuv420p").to_ndarray()
                for f in container.decode(video=0)]


class Server:
    """A facestream server in its own process, as beside a gateway."""

    def __init__(self) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.target = f"127.0.0.1:{s.getsockname()[1]}"
        self.proc = subprocess.Popen([sys.executable, "-m", "facestream.server.cli", "serve", "--host", "127.0.0.1",
                                      "--port", self.target.rsplit(":", 1)[1], "--backend", "cpu",
                                      "--log-level", "WARNING"])

    def __enter__(self) -> Server:
        wait_serving(self.target, 120.0)
        return self

    def __exit__(self, *exc) -> None:
        self.proc.terminate()
        self.proc.wait(30)


def _line(label: str, r: dict) -> str:
    return (f"{label:<22} added p50 {r['p50']:6.1f} ms  p99 {r['p99']:6.1f} ms  (server p50 {r['server_p50']:5.1f} ms)"
            f"  handed on {r['worst_share'] * 100:5.1f} % (worst peer)  cores: server {r['cpu']['server']:.2f}, "
            f"peers {r['cpu']['peers']:.2f}  load {r['load']:.1f}  "
            f"{'real time' if r['realtime'] else 'NOT real time'}")


async def measured(frames: list[np.ndarray], client: FaceStreamClient, cpu: CpuMeter, wire: str, peers: int,
                   seconds: float) -> dict:
    r = await measure(frames, client, cpu, wire, peers, seconds)
    r["server_p50"] = float(np.nanmedian([p["server_p50"] for p in r["per_peer"]]))
    r["load"] = os.getloadavg()[0]   # other work on the machine shows here
    return r


def _median(runs: list[dict], key: str) -> float:
    return float(np.median([r[key] for r in runs]))


async def compare_wires(client: FaceStreamClient, cpu: CpuMeter, seconds: float, repeat: int) -> dict:
    """Raw NV12 against H.264, one peer, taking turns so that drifting machine load hits both alike."""
    out = {}
    for name, size in SIZES.items():
        frames = clip_pictures(size)
        runs: dict[str, list[dict]] = {"nv12": [], "h264": []}
        for _ in range(repeat):
            for wire in runs:
                runs[wire].append(r := await measured(frames, client, cpu, wire, 1, seconds))
                print(_line(f"{name} {wire}, 1 peer", r), flush=True)
        ratios = [h["p50"] / n["p50"] for n, h in zip(runs["nv12"], runs["h264"], strict=True)]
        out[name] = {wire: {"p50": _median(rs, "p50"), "p99": _median(rs, "p99"),
                            "server_p50": _median(rs, "server_p50"), "runs": rs} for wire, rs in runs.items()}
        out[name]["h264_over_nv12_p50"] = [round(x, 2) for x in ratios]
        print(f"{name}: median added latency over {repeat} runs each: raw NV12 p50 {out[name]['nv12']['p50']:.1f} "
              f"p99 {out[name]['nv12']['p99']:.1f} ms, H.264 p50 {out[name]['h264']['p50']:.1f} "
              f"p99 {out[name]['h264']['p99']:.1f} ms; H.264 / NV12 p50 per pair of runs: "
              f"{', '.join(f'{x:.2f}x' for x in ratios)}", flush=True)
    return out


async def ramp(client: FaceStreamClient, cpu: CpuMeter, seconds: float, counts: list[int], repeat: int
               ) -> list[dict]:
    """360p30 peers over raw NV12, more and more; a count holds when most of its runs are real time."""
    frames = clip_pictures(SIZES["360p"])
    steps = []
    for peers in counts:
        runs = []
        for _ in range(repeat):
            runs.append(r := await measured(frames, client, cpu, "nv12", peers, seconds))
            print(_line(f"360p nv12, {peers} peers", r), flush=True)
        steps.append({"peers": peers, "held": sum(r["realtime"] for r in runs) * 2 > len(runs), "runs": runs})
        if not steps[-1]["held"]:
            break
    return steps


async def run(seconds: float, counts: list[int], repeat: int) -> dict:
    offer_host_addresses(["127.0.0.1"])
    out: dict = {"cpus": os.cpu_count(), "seconds": seconds, "repeat": repeat, "effects": DEFAULT_EFFECTS}
    with Server() as server:
        async with FaceStreamClient(server.target) as client:
            cpu = CpuMeter(server.proc.pid)
            await measure(clip_pictures(SIZES["360p"]), client, cpu, "nv12", 1, 2)   # warm-up, not counted
            for name, size in SIZES.items():
                out[f"echo {name}"] = echo = await measure_echo(clip_pictures(size), client, cpu, seconds)
                print(f"{name} echo (no facestream): {echo['fps_shown']} fps back, cores: "
                      f"peers {echo['cpu']['peers']:.2f}", flush=True)
            out["wires"] = await compare_wires(client, cpu, seconds, repeat)
            out["ramp"] = await ramp(client, cpu, seconds, counts, repeat)
    out["peers_in_real_time"] = max((s["peers"] for s in out["ramp"] if s["held"]), default=0)
    print(f"peers held in real time at 360p30 on {out['cpus']} CPUs: {out['peers_in_real_time']}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=10.0, help="measured seconds per run")
    ap.add_argument("--peers", default="1,2,3,4,5,6", help="peer counts of the ramp")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each configuration")
    ap.add_argument("--out", help="write the figures as JSON here")
    args = ap.parse_args()
    result = asyncio.run(run(args.seconds, [int(n) for n in args.peers.split(",")], args.repeat))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
