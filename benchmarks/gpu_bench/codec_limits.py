"""The decoder and the host encoder alone: the limits the pipeline is measured against (NVDEC's
decode rate, and the libx264 fallback of a GPU without NVENC)."""
from __future__ import annotations

import os
import time
from typing import Any

from facestream.benchmarks.gpu_bench.config import FPS
from facestream.benchmarks.gpu_bench.report import Deadline
from facestream.benchmarks.gpu_bench.session import device_stream, make_backend, run_threads, synchronize
from facestream.benchmarks.gpu_bench.stats import ms_summary, rounded
from facestream.engines.codec.base import Codec, EncoderSettings


def decode_only(packets, backend: str, repeats: int, parallel: int, deadline: Deadline) -> dict[str, Any]:
    """Decoder throughput alone (the copy into frame-owned memory included): the best of `repeats`
    runs of one decoder, then `parallel` decoders at once, each in its own thread. The clock starts
    after the first packet, which makes the decoder."""

    def one(out: list[float], engines: list[str]) -> None:
        b = make_backend(backend, Codec.RAW_NV12)
        dec = b.decoder(Codec.H264, 0, 0)
        dec.decode(*packets[0])
        synchronize(device_stream(b))
        t = time.perf_counter()
        n = sum(len(dec.decode(data, pts)) for data, pts in packets[1:]) + len(dec.flush())
        synchronize(device_stream(b))
        out.append(n / (time.perf_counter() - t))
        on_nvdec = getattr(dec, "on_nvdec", None)
        engines.append("nvdec" if on_nvdec else "cpu decode, uploaded" if on_nvdec is False else type(dec).__name__)
        dec.close()

    runs: list[float] = []
    engines: list[str] = []
    while len(runs) < repeats and not deadline.over:
        one(runs, engines)
    if not runs:
        raise TimeoutError("no time was left for a decode run")
    result = {"frames": len(packets), "fps": rounded(max(runs)), "runs_fps": [rounded(r) for r in runs],
              "decoder": engines[-1], "parallel_decoders": None, "parallel_fps_total": None}
    if not deadline.over:
        each: list[float] = []
        run_threads(lambda: one(each, []), parallel)
        # they ran at once: together they decoded about parallel x the slowest one's rate
        result.update(parallel_decoders=parallel, parallel_fps_total=rounded(parallel * min(each)))
    return result


# ---------------------------------------------------------------- host encode


def device_frames(packets, backend: str, count: int) -> tuple[list, Any]:
    """The first `count` decoded frames (on the device for the gpu backend) and the backend."""
    b = make_backend(backend, Codec.H264)
    dec = b.decoder(Codec.H264, 0, 0)
    frames: list = []
    for data, pts in packets:
        frames += dec.decode(data, pts)
        if len(frames) >= count:
            break
    synchronize(device_stream(b))
    dec.close()
    return frames[:count], b


def _host_encoder(frames, settings: EncoderSettings, on_gpu: bool, copy_ms: list[float], encode_ms: list[float]):
    """Encodes `frames` as the gpu backend's fallback does (pinned copy, then the CPU encoder; on
    the cpu backend the frames are on the host already). Returns FFmpeg's thread count and the
    seconds the frames took (the encoder's opening left out)."""
    from facestream.engines.codec import cpu as cpu_codec
    from facestream.engines.frame import Frame

    inner = cpu_codec.make_encoder(settings)
    if on_gpu:
        import cupy as cp

        from facestream.engines.codec.gpu import PinnedHost

        stream = cp.cuda.Stream(non_blocking=True)
        host = PinnedHost(frames[0].width, frames[0].height)
    start = time.perf_counter()
    for f in frames:
        t = time.perf_counter()
        y, uv = host.fetch(f, stream) if on_gpu else (f.y, f.uv)
        t2 = time.perf_counter()
        inner.encode(Frame(y=y, uv=uv, pts=f.pts, index=f.index))
        copy_ms.append((t2 - t) * 1000)
        encode_ms.append((time.perf_counter() - t2) * 1000)
    inner.flush()
    seconds = time.perf_counter() - start
    # FFmpeg's thread count as the encoder was opened (0: automatic, one x264 slice thread per core)
    threads = getattr(getattr(inner, "_ctx", None), "thread_count", None)
    inner.close()
    return threads, seconds


def host_encode(packets, backend: str, parallel: int, deadline: Deadline) -> dict[str, Any]:
    """The encode fallback of a GPU without NVENC at the input's size: pinned copy + libx264."""
    frames, b = device_frames(packets, backend, min(len(packets), 60))
    on_gpu = device_stream(b) is not None
    settings = EncoderSettings(Codec.H264, frames[0].width, frames[0].height)
    copy_ms: list[float] = []
    encode_ms: list[float] = []
    threads, seconds = _host_encoder(frames, settings, on_gpu, copy_ms, encode_ms)
    single_fps = len(frames) / seconds
    result: dict[str, Any] = {
        "frames": len(frames), "width": settings.width, "height": settings.height, "encoder": "libx264 superfast",
        "pinned_copy": on_gpu, "ffmpeg_thread_count": threads, "cpu_cores": os.cpu_count(),
        "fps": rounded(single_fps), "pinned_copy_ms": ms_summary(copy_ms) if on_gpu else None,
        "libx264_ms": ms_summary(encode_ms),
        "parallel_encoders": None, "parallel_fps_total": None, "streams_at_30fps_bound": None,
    }
    if deadline.over:
        return result
    each: list[float] = []
    run_threads(lambda: each.append(_host_encoder(frames, settings, on_gpu, [], [])[1]), parallel)
    total = len(frames) * parallel / max(each)
    result.update(parallel_encoders=parallel, parallel_fps_total=rounded(total),
                  streams_at_30fps_bound=int(total // FPS))
    return result
