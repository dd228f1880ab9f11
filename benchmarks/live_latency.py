"""The delay the live-streaming integrations add, at 360p30 and 720p30, against a CPU server on this machine.

- GStreamer element: the shared clip decoded and paced at 30 fps (`identity sync=true`, as a live
  source would deliver it) through `facestream`; per frame, the time from the buffer entering the
  element to its processed picture being ready to push (the element's `latency-ms`).
- RTMP relay: the clip (video and audio) published at its own pace to `relay --listen`, the relay
  publishing to a local RTMP listener; per video frame, from being written by the publisher to being
  read by the listener (RTMP both ways, the session, the muxer).

Both use the real-time drop policy (a live source); the counts of frames processed, passed through
and dropped are printed with the delays. The 720p clip is the shared clip scaled up (made at run time).

    python benchmarks/live_latency.py [--clip PATH]
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import av

from facestream.client.gstreamer.install import loader_problem, plugin_folder
from facestream.client.health import wait_serving

DEFAULT_CLIP = Path(__file__).resolve().parents[1].parent / "shared" / "media" / "short_hamilton_clip.mp4"
BIN = Path(sys.executable).parent
SIZES = {"360p30": (640, 360), "720p30": (1280, 720)}
WARMUP = 30   # frames left out of the statistics: the session's first frames warm its models up


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def summary(delays_ms: list[float]) -> str:
    steady = sorted(delays_ms[WARMUP:]) or [float("nan")]
    p95 = steady[min(len(steady) - 1, int(0.95 * len(steady)))]
    return f"median {statistics.median(steady):.0f} ms, p95 {p95:.0f} ms, max {steady[-1]:.0f} ms"


def element(clip: Path, size: tuple[int, int], server: str, env: dict[str, str]) -> str:
    width, height = size
    pipeline = (f"filesrc location={clip} ! qtdemux ! avdec_h264 ! videoconvert ! videoscale ! "
                f"video/x-raw,format=NV12,width={width},height={height} ! identity sync=true ! "
                f"facestream server={server} effects=smooth=0.6,eyes=0.3 ! fakesink sync=false")
    out = subprocess.run(["gst-launch-1.0", "-m", *pipeline.split()], env=env, capture_output=True, text=True,
                         timeout=300, check=True).stdout
    delays = [float(v) for v in re.findall(r"latency-ms=\(double\)([\d.]+)", out)]
    statuses = re.findall(r"status=\(string\)([\w-]+)", out)
    counts = ", ".join(f"{statuses.count(s)} {s}" for s in sorted(set(statuses)))
    return f"{summary(delays)} ({counts})"


def scaled_clip(clip: Path, size: tuple[int, int], folder: Path) -> Path:
    """The clip at `size`, H.264 with its AAC audio copied."""
    if size == (640, 360):
        return clip
    path = folder / f"clip-{size[1]}p.mp4"
    with av.open(str(clip)) as src, av.open(str(path), "w") as out:
        v_in, a_in = src.streams.video[0], src.streams.audio[0]
        v_out = out.add_stream("libx264", rate=v_in.average_rate)
        v_out.width, v_out.height, v_out.pix_fmt = *size, "yuv420p"
        v_out.options = {"preset": "veryfast", "g": "60"}
        a_out = out.add_stream_from_template(a_in)
        for packet in src.demux(v_in, a_in):
            if packet.stream is a_in:
                if packet.dts is not None:
                    packet.stream = a_out
                    out.mux(packet)
                continue
            for frame in packet.decode():
                frame = frame.reformat(width=size[0], height=size[1])
                out.mux(v_out.encode(frame))
        out.mux(v_out.encode(None))
    return path


def listen(url: str, arrived: dict[int, float], ready: threading.Event) -> None:
    ready.set()
    with av.open(url, options={"listen": "1"}) as c:
        try:
            for packet in c.demux(c.streams.video[0]):
                if packet.size and packet.pts is not None:
                    arrived.setdefault(packet.pts, time.perf_counter())
        except OSError:
            pass   # the publisher has stopped


def publish(clip: Path, url: str) -> dict[int, float]:
    """Publishes at the clip's pace; the time each video packet (by FLV pts) was written."""
    sent: dict[int, float] = {}
    with av.open(str(clip)) as src:
        for _ in range(100):
            out = av.open(url, "w", format="flv")
            streams = [out.add_stream_from_template(s) for s in (src.streams.video[0], src.streams.audio[0])]
            try:
                out.start_encoding()
                break
            except OSError:
                time.sleep(0.2)
        by_index = {src.streams.video[0].index: streams[0], src.streams.audio[0].index: streams[1]}
        start, first = time.perf_counter(), None
        for packet in src.demux():
            if packet.dts is None:
                continue
            at = float(packet.dts * packet.time_base)
            first = at if first is None else first
            time.sleep(max(0.0, start + at - first - time.perf_counter()))
            video = packet.stream.type == "video"
            packet.stream = by_index[packet.stream.index]
            out.mux(packet)
            if video:
                sent[packet.pts] = time.perf_counter()
        out.close()
    return sent


def relay(clip: Path, server: str) -> str:
    in_url, out_url = (f"rtmp://127.0.0.1:{free_port()}/live/{name}" for name in ("in", "out"))
    arrived: dict[int, float] = {}
    ready = threading.Event()
    listener = threading.Thread(target=listen, args=(out_url, arrived, ready), daemon=True)
    listener.start()
    ready.wait()
    proc = subprocess.Popen([str(BIN / "facestream-client"), "--server", server, "relay", "--listen", in_url,
                             out_url, "--effects", "smooth=0.6,eyes=0.3"], stderr=subprocess.PIPE, text=True)
    sent = publish(clip, in_url)
    _, log = proc.communicate(timeout=120)
    listener.join(30)
    delays = [(arrived[pts] - t) * 1000 for pts, t in sorted(sent.items()) if pts in arrived]
    done = re.search(r"done: (.*)", log)
    return f"{summary(delays)} ({done.group(1) if done else log.strip()[-300:]})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", type=Path, default=DEFAULT_CLIP)
    args = parser.parse_args()
    gst = shutil.which("gst-launch-1.0") and not loader_problem()
    port = free_port()
    server = subprocess.Popen([str(BIN / "facestream"), "serve", "--port", str(port), "--backend", "cpu"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    address = f"127.0.0.1:{port}"
    env = {**os.environ, "GST_PLUGIN_PATH": str(plugin_folder())}
    try:
        wait_serving(address)
        with tempfile.TemporaryDirectory() as tmp:
            print("| size | GStreamer element | RTMP relay (end to end) |\n| --- | --- | --- |")
            for name, size in SIZES.items():
                clip = scaled_clip(args.clip, size, Path(tmp))
                gst_result = element(args.clip, size, address, env) if gst else "GStreamer not installed"
                print(f"| {name} | {gst_result} | {relay(clip, address)} |", flush=True)
    finally:
        server.terminate()
        server.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
