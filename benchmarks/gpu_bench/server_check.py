"""A real server in this process and real SDK clients over gRPC: the latency a user of the service
sees, next to the server's own stage timings."""
from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import numpy as np

from facestream.benchmarks.gpu_bench.config import EFFECTS, FPS, OUTPUTS, P99_GOAL_MS
from facestream.benchmarks.gpu_bench.report import Deadline
from facestream.benchmarks.gpu_bench.stats import ms_summary, rounded
from facestream.engines.codec.base import Codec


async def _server_stream(target: str, path: Path, backend: str, output: Codec, frames: int, delay: float,
                         records: list[dict[str, Any]]) -> dict[str, Any]:
    """One SDK client streaming the input paced, starting after `delay`; each output frame is added to `records`."""
    from facestream.benchmarks.loadgen import ClipSource
    from facestream.client import FaceStreamClient
    from facestream.proto import pb

    await asyncio.sleep(delay)
    codec = {Codec.RAW_NV12: pb.CODEC_RAW_NV12, Codec.H264: pb.CODEC_H264, Codec.MJPEG: pb.CODEC_MJPEG}[output]

    def on_frame(fr) -> None:
        t = fr.packet.timings
        records.append({"latency_ms": fr.latency_ms, "processed": fr.packet.status == pb.FRAME_PROCESSED,
                        "bytes": len(fr.packet.data), "faces": len(fr.packet.faces),
                        **{k: getattr(t, k) for k in ("decode_ms", "vision_ms", "effects_ms", "encode_ms",
                                                      "queue_ms", "total_ms")}})

    src = ClipSource(str(path), frames)
    try:
        async with FaceStreamClient(target) as client:
            result = await client.process(src, output_codec=codec, effects=EFFECTS, pace=True, return_faces=True,
                                          backend=pb.BACKEND_GPU if backend == "gpu" else pb.BACKEND_CPU,
                                          on_frame=on_frame)
        encode = next(s for s in result.started.stages if s.stage == "encode")
        return {"sent": src.sent, "encode": f"{encode.device}: {encode.engine}"}
    finally:
        src.close()


async def _server_runs(path: Path, backend: str, streams: int, frames: int, deadline: Deadline) -> dict[str, Any]:
    """Starts the server once, then `streams` clients at once per output codec while the section's time allows."""
    from facestream.server.app import FaceStreamServer
    from facestream.server.config import ServerConfig

    t = time.perf_counter()
    srv = FaceStreamServer(ServerConfig(host="127.0.0.1", port=0, backend=backend, max_sessions=max(16, streams),
                                        log_level="WARNING"))
    await srv.start()
    out: dict[str, Any] = {"server": "in this process, started and its models warmed up in "
                                     f"{time.perf_counter() - t:.1f} s", "streams": streams}
    try:
        for output in OUTPUTS:
            if deadline.left() < frames / FPS + 5.0:
                out[output.value] = {"skipped": "no time left in the section"}
                continue
            records: list[dict[str, Any]] = []
            streams_out = await asyncio.gather(*[
                _server_stream(f"127.0.0.1:{srv.port}", path, backend, output, frames, i / (FPS * streams), records)
                for i in range(streams)])
            out[output.value] = _server_summary(records, streams_out, streams * frames)
    finally:
        await srv.stop(0)
    return out


def _server_summary(records: list[dict[str, Any]], streams_out: list[dict[str, Any]], sent: int) -> dict[str, Any]:
    """One output codec's figures over every stream's frames; it holds when every frame came back
    processed within the p99 goal."""
    lat = ms_summary([r["latency_ms"] for r in records])
    processed = sum(r["processed"] for r in records)
    return {"frames_sent": sum(s["sent"] for s in streams_out), "frames_expected": sent, "frames_received":
            len(records), "frames_processed": processed, "latency_ms": lat,
            "holds": processed == sent and lat["p99"] is not None and lat["p99"] <= P99_GOAL_MS,
            "server_stage_ms_mean": {k: rounded(float(np.mean([r[k] for r in records])), 3) for k in
                                     ("decode_ms", "vision_ms", "effects_ms", "encode_ms", "queue_ms", "total_ms")}
            if records else None,
            "output_bytes_mean": int(np.mean([r["bytes"] for r in records])) if records else None,
            "faces_per_frame_mean": rounded(float(np.mean([r["faces"] for r in records])), 2) if records else None,
            "encode": streams_out[0]["encode"]}


def server_check(path: Path, backend: str, streams: int, frames: int, deadline: Deadline) -> dict[str, Any]:
    """Paced streams through a real server and real clients, per output codec: the client's
    latency (packet sent -> its output received) and the server's own stage timings."""
    result = asyncio.run(_server_runs(path, backend, streams, frames, deadline))
    result["latency_is"] = "the SDK's: packet sent -> output packet received, over gRPC on loopback"
    result["stage_times_are"] = "the server's stage timings (wall time of each stage call) from each output packet"
    return result
