"""Throughput of the pass-through pipeline (decode -> encode, no vision, no effects) over gRPC loopback.

Prints frames per second for one stream through a real server in a separate process, and,
measured in the same run, the cost of the two codec stages alone (PyAV decode + libx264
encode of the same packets, no gRPC) as the limit the server can approach.

    python benchmarks/passthrough.py [--clip PATH] [--runs 3]
"""
from __future__ import annotations

import argparse
import asyncio
import socket
import subprocess
import sys
import time
from pathlib import Path

from facestream.client import FaceStreamClient, VideoSource
from facestream.client.health import wait_serving
from facestream.engines.codec.base import Codec, EncoderSettings
from facestream.engines.codec.cpu import make_decoder, make_encoder

DEFAULT_CLIP = Path(__file__).resolve().parents[1].parent / "shared" / "media" / "short_hamilton_clip.mp4"


def codec_only_fps(clip: Path) -> float:
    src = VideoSource(str(clip))
    packets = list(src)
    src.close()
    start = time.perf_counter()
    decoder = make_decoder(Codec.H264)
    encoder = None
    frames = 0
    for p in packets:
        for frame in decoder.decode(p.data, p.pts):
            encoder = encoder or make_encoder(EncoderSettings(Codec.H264, frame.width, frame.height))
            frames += len(encoder.encode(frame)) and 1
    for frame in decoder.flush():
        encoder.encode(frame)
        frames += 1
    frames += len(encoder.flush())
    return frames / (time.perf_counter() - start)


async def grpc_fps(address: str, clip: Path) -> tuple[float, int]:
    async with FaceStreamClient(address) as client:
        start = time.perf_counter()
        result = await client.process(str(clip))
        return result.frames / (time.perf_counter() - start), result.frames


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", type=Path, default=DEFAULT_CLIP)
    parser.add_argument("--runs", type=int, default=3)
    opts = parser.parse_args()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "facestream"), "serve", "--port", str(port), "--backend", "cpu",
         "--log-level", "WARNING"]
    )
    try:
        address = f"127.0.0.1:{port}"
        wait_serving(address)
        asyncio.run(grpc_fps(address, opts.clip))  # warm-up
        runs = [asyncio.run(grpc_fps(address, opts.clip)) for _ in range(opts.runs)]
        limit = max(codec_only_fps(opts.clip) for _ in range(opts.runs))
    finally:
        server.terminate()
        server.wait()
    best = max(fps for fps, _ in runs)
    print(f"frames per run: {runs[0][1]}")
    print(f"pass-through over gRPC loopback: {best:.1f} fps (runs: {', '.join(f'{f:.1f}' for f, _ in runs)})")
    print(f"decode + encode alone, same process: {limit:.1f} fps")
    print(f"ratio gRPC pipeline / codecs alone: {best / limit:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
