"""GPU benchmark: in one run on one device, NVDEC-only decode, the host-encode fallback, the full
pipeline per output codec with per-stage GPU times, GPU memory per session, how many paced
1080p30 streams hold p99 <= 50 ms for raw NV12 and for H.264 output, and a check through a real
server and real clients.

    python -m facestream.benchmarks.gpu_bench [--out gpu_bench.json] [--budget 235]
    python -m facestream.benchmarks.gpu_bench --backend cpu --smoke --out smoke.json   # on any machine

Input: a 2x2 tiling of the shared clip (FACESTREAM_MEDIA) at 1920x1080, 1 to 4 tiles showing the
singer (the number and places change every half second; each tile at another point of the part
of the clip where the singer faces the camera, the others plain grey), so 1 to 4 faces a frame;
encoded once with PyAV/libx264 at start-up (no B-frames).
Every section uses all effects the server offers except `debug`.

Sections (each with a time budget inside --budget; the JSON is rewritten after each one, so a run
cut short keeps what it measured):
  input        the tiled clip (an MP4, read back as Annex-B access units)
  decode_only  the decoder alone (NVDEC on the gpu backend), one session and several at once
  host_encode  the fallback encode without NVENC: the frame copied device -> pinned host, libx264
               with FFmpeg's automatic threads (one slice thread per core); one encoder and several
  pipeline     per output codec (nv12, h264, mjpeg), one session: decode + vision, effects and
               encode overlapping in three threads as the server runs them (the throughput), and a
               serial pass with CUDA events around each stage on the session's stream (GPU time per
               stage) and the wall time of each stage call
  memory       GPU memory per added session (CuPy pool, PyTorch allocator, nvidia-smi)
  ramp_nv12    paced 1080p30 sessions in this process (engine stages, no gRPC), N doubled, then
  ramp_h264    bisected: N holds when every frame of every session is processed and p99 latency
               (packet due -> output packet ready) is <= 50 ms
  server       a real server in this process and real SDK clients over gRPC: paced streams per
               output codec, the client's latency and the server's stage timings
  goals        full pipeline >= 0.8x NVDEC with raw output; >= 60 streams with raw output; the
               H.264 figure with what bounds it (the host encoder's cores)

Exit status: 0; 1 when a section failed; 3 for the gpu backend without a GPU (the JSON says why).
"""
from __future__ import annotations

import argparse
import asyncio
import gc
import json
import math
import os
import platform
import queue
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass, replace
from fractions import Fraction
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

import numpy as np

from facestream.engines.codec.base import Codec, EncoderSettings
from facestream.engines.effects.base import EffectSetting, EffectSettings
from facestream.engines.effects.registry import EFFECTS as EFFECT_SPECS

REPO = Path(__file__).resolve().parents[1]
MEDIA = Path(os.environ.get("FACESTREAM_MEDIA", REPO.parent / "shared" / "media"))
CLIP = MEDIA / "short_hamilton_clip.mp4"
# The clip's frames 82 to 210 show the singer facing the camera (before, the singer turns away;
# after, an audience): the tiles come from there.
SINGER_FRAMES = range(82, 211)
TILE_PHASE = 15            # frames between changes of the tiles that show the singer
TILE_STRIDE = 32           # clip frames between neighbouring tiles
FPS = 30.0
P99_GOAL_MS = 50.0
GOAL_PIPELINE_OVER_DECODE = 0.8
GOAL_RAW_STREAMS = 60
MAX_FACES = 4
MAX_SIZE = (1920, 1088)    # the server's default frame limit
QUEUE_DEPTH = 4            # frames between stages (the server's default --queue-depth)
OUTPUTS = (Codec.RAW_NV12, Codec.H264, Codec.MJPEG)
RAMPS = (Codec.RAW_NV12, Codec.H264)
EFFECTS = {name: 0.5 for name in EFFECT_SPECS if name != "debug"}
NO_GPU = 3
DISTRIBUTIONS = ("cupy-cuda13x", "cupy-cuda12x", "pynvvideocodec", "av", "onnxruntime", "tensorrt", "tensorrt-cu13",
                 "tensorrt-cu12", "numpy", "grpcio", "torch", "torchvision")
# Seconds per section with the default --budget; each is also cut to what is left of the whole.
BUDGETS = {"input": 20.0, "decode_only": 8.0, "host_encode": 12.0, "pipeline": 45.0, "memory": 10.0,
           "ramp_nv12": 60.0, "ramp_h264": 35.0, "server": 25.0}


@dataclass(frozen=True)
class Scale:
    """How big the run is: the full GPU run, or the smoke run any machine does in seconds."""

    size: tuple[int, int] = (1920, 1080)
    frames: int = 160            # input frames
    warm_frames: int = 3         # each paced session's first frames, before its clock starts
    run_seconds: float = 5.0     # paced run of each ramp step
    decode_repeats: int = 3
    parallel: int = 4            # decoders, encoders at once
    memory_sessions: int = 4
    ramp_start: int = 8
    max_streams: int = 96
    server_streams: int = 2
    budget: float = 235.0


SMOKE = Scale(size=(640, 360), frames=12, warm_frames=2, run_seconds=0.3, decode_repeats=1, parallel=2,
              memory_sessions=2, ramp_start=1, max_streams=2, server_streams=1, budget=200.0)


class Deadline:
    def __init__(self, seconds: float) -> None:
        self.end = time.perf_counter() + seconds

    def left(self) -> float:
        return self.end - time.perf_counter()

    @property
    def over(self) -> bool:
        return self.left() <= 0

    def part(self, seconds: float) -> Deadline:
        """A deadline `seconds` from now, but never after this one."""
        return Deadline(min(seconds, self.left()))


class Report:
    """The JSON result, rewritten after every section."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.data: dict[str, Any] = {}
        self.failed: list[str] = []

    def save(self) -> None:
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(json.dumps(self.data, indent=2, default=str) + "\n")

    def section(self, name: str, run: Callable[[], dict[str, Any]], deadline: Deadline) -> dict[str, Any]:
        """Runs one section; a failure is recorded with its error and the run goes on. A section
        the run's time does not reach is recorded as skipped."""
        print(f"{name} ...", flush=True)
        t = time.perf_counter()
        try:
            result = run() if not deadline.over else {"skipped": "no time was left in the run's budget"}
        except Exception as exc:
            result = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc(limit=8)}
            self.failed.append(name)
            print(f"{name} failed: {result['error']}", flush=True)
        result["section_seconds"] = round(time.perf_counter() - t, 1)
        self.data[name] = result
        self.save()
        return result


def _ms(values: list[float]) -> dict[str, float | None]:
    """Mean, p50, p90, p99 and max of millisecond values, to 3 decimals (None without values)."""
    if not values:
        return dict.fromkeys(("mean", "p50", "p90", "p99", "max"))
    a = np.asarray(values, np.float64)
    return {"mean": round(float(a.mean()), 3), "p50": round(float(np.percentile(a, 50)), 3),
            "p90": round(float(np.percentile(a, 90)), 3), "p99": round(float(np.percentile(a, 99)), 3),
            "max": round(float(a.max()), 3)}


def _round(x: float | None, n: int = 1) -> float | None:
    return None if x is None or not math.isfinite(x) else round(x, n)


# ---------------------------------------------------------------- input


def _clip_planes(src: Path, frames: range, tile: tuple[int, int]) -> list[tuple[np.ndarray, ...]]:
    """The clip's `frames` as (Y, U, V) planes scaled to the tile size."""
    import cv2

    from facestream.engines.codec.cpu import pyav

    tw, th = tile
    out = []
    with pyav().open(str(src)) as c:
        for i, f in enumerate(c.decode(video=0)):
            if i < frames.start:
                continue
            if i >= frames.stop:
                break
            yuv = f.to_ndarray(format="yuv420p")
            h, w = f.height, f.width
            y, u, v = yuv[:h], yuv[h: h + h // 4].reshape(h // 2, w // 2), yuv[h + h // 4:].reshape(h // 2, w // 2)
            out.append((cv2.resize(y, (tw, th), interpolation=cv2.INTER_LINEAR),
                        cv2.resize(u, (tw // 2, th // 2), interpolation=cv2.INTER_LINEAR),
                        cv2.resize(v, (tw // 2, th // 2), interpolation=cv2.INTER_LINEAR)))
    return out


def face_tiles(i: int) -> list[int]:
    """The tiles (0..3, row by row) that show the singer in frame i: 1, 2, 3, 4, 1, ... of them,
    changing every TILE_PHASE frames, starting at a tile that moves on each time."""
    phase = i // TILE_PHASE
    return [(phase + k) % 4 for k in range(1 + phase % 4)]


def tiled_frame(i: int, tiles: list[tuple[np.ndarray, ...]], size: tuple[int, int]) -> np.ndarray:
    """Frame i of the tiled video as one yuv420p array (H * 3 / 2, W)."""
    w, h = size
    tw, th = w // 2, h // 2
    y = np.full((h, w), 128, np.uint8)
    u = np.full((h // 2, w // 2), 128, np.uint8)
    v = np.full((h // 2, w // 2), 128, np.uint8)
    for k in face_tiles(i):
        ty, tu, tv = tiles[(i + k * TILE_STRIDE) % len(tiles)]
        r, c = divmod(k, 2)
        y[r * th:(r + 1) * th, c * tw:(c + 1) * tw] = ty
        u[r * th // 2:(r + 1) * th // 2, c * tw // 2:(c + 1) * tw // 2] = tu
        v[r * th // 2:(r + 1) * th // 2, c * tw // 2:(c + 1) * tw // 2] = tv
    return np.concatenate([y, u.reshape(h // 4, w), v.reshape(h // 4, w)])


def make_input(src: Path, out: Path, size: tuple[int, int], frames: int, deadline: Deadline) -> dict[str, Any]:
    """Writes the tiled clip to `out` (MP4, libx264, no B-frames); stops early at the deadline."""
    from facestream.engines.codec.cpu import pyav

    av = pyav()
    t = time.perf_counter()
    tiles = _clip_planes(src, SINGER_FRAMES, (size[0] // 2, size[1] // 2))
    faces: dict[int, int] = {}
    with av.open(str(out), "w", format="mp4") as c:
        st = c.add_stream("libx264", rate=int(FPS))
        st.width, st.height, st.pix_fmt = size[0], size[1], "yuv420p"
        st.codec_context.gop_size = 60
        st.codec_context.max_b_frames = 0
        st.options = {"preset": "veryfast", "tune": "zerolatency", "crf": "20"}
        n = 0
        while n < frames and not deadline.over:
            frame = av.VideoFrame.from_ndarray(tiled_frame(n, tiles, size), format="yuv420p")
            frame.pts, frame.time_base = n, Fraction(1, int(FPS))
            for p in st.encode(frame):
                c.mux(p)
            faces[len(face_tiles(n))] = faces.get(len(face_tiles(n)), 0) + 1
            n += 1
        for p in st.encode(None):
            c.mux(p)
    return {"width": size[0], "height": size[1], "frames": n, "source": f"{src.name}, 2x2 tiles",
            "frames_by_tiles_showing_the_singer": dict(sorted(faces.items())), "bytes": out.stat().st_size,
            "seconds": round(time.perf_counter() - t, 2)}


def annexb_packets(path: Path) -> list[tuple[bytes, int]]:
    """(Annex-B access unit, pts) for every packet of an H.264 MP4, as the client sends them."""
    from facestream.engines.codec.cpu import pyav

    av = pyav()
    out = []
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        bsf = av.BitStreamFilterContext("h264_mp4toannexb", s)
        for p in [*c.demux(s), None]:
            for q in bsf.filter(p):
                if q.size:
                    out.append((bytes(q), int(q.pts or 0)))
    return out


# ---------------------------------------------------------------- environment


def versions(backend: str) -> dict[str, Any]:
    from facestream.engines.backend import probe_gpu

    v: dict[str, Any] = {"python": platform.python_version(), "cpu_cores": os.cpu_count()}
    for dist in DISTRIBUTIONS:
        try:
            v[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    if backend != "gpu":
        return v
    import cupy as cp

    g = probe_gpu()
    v.update(device=g.name, compute_capability=g.compute_capability, memory_gb=g.memory_gb, cuda_driver=g.driver,
             cuda_runtime=cp.cuda.runtime.runtimeGetVersion(), nvidia_driver=_smi("driver_version"))
    return v


def _smi(fields: str) -> str | None:
    """nvidia-smi's CSV answer for GPU 0's `fields`, or None where it does not answer."""
    try:
        out = subprocess.run(["nvidia-smi", "-i", "0", f"--query-gpu={fields}", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


def gpu_load() -> dict[str, float | None]:
    """One sample of the GPU's and NVDEC's utilisation (%) and the memory in use (MiB), from nvidia-smi."""
    both = (_smi("utilization.gpu,memory.used") or "").split(",")
    return {"gpu_percent": _number(both[0]) if len(both) == 2 else None,
            "memory_used_mb": _number(both[1]) if len(both) == 2 else None,
            "nvdec_percent": _number(_smi("utilization.decoder"))}


def gpu_memory() -> dict[str, float | None]:
    """GPU memory in MiB: CuPy's pool (in use, held), PyTorch's allocator (where PyTorch runs
    here) and the device's total in use (nvidia-smi: also NVDEC surfaces and contexts)."""
    out: dict[str, float | None] = dict.fromkeys(("cupy_used_mb", "cupy_held_mb", "torch_allocated_mb",
                                                  "torch_reserved_mb", "device_used_mb"))
    if "cupy" not in sys.modules:
        return out
    import cupy as cp

    pool = cp.get_default_memory_pool()
    out["cupy_used_mb"], out["cupy_held_mb"] = pool.used_bytes() / 2**20, pool.total_bytes() / 2**20
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_initialized():
        out["torch_allocated_mb"] = torch.cuda.memory_allocated() / 2**20
        out["torch_reserved_mb"] = torch.cuda.memory_reserved() / 2**20
    out["device_used_mb"] = _number(_smi("memory.used"))
    return out


def release_memory() -> None:
    """Frees what the pools hold but nothing uses, so the next measurement starts level."""
    gc.collect()
    if "cupy" in sys.modules:
        import cupy as cp

        cp.get_default_memory_pool().free_all_blocks()
        cp.get_default_pinned_memory_pool().free_all_blocks()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_initialized():
        torch.cuda.empty_cache()


# ---------------------------------------------------------------- sessions


def effect_settings() -> EffectSettings:
    return EffectSettings(effects=tuple(EffectSetting(k, v) for k, v in EFFECTS.items()))


def make_backend(name: str, output: Codec):
    from facestream.engines.backend import resolve

    return resolve(name, output.value)


class Session:
    """One stream through the engine's stages as the server runs them (engines/pipeline.py), no gRPC."""

    def __init__(self, backend: str, output: Codec) -> None:
        from facestream.engines.pipeline import DecodeStage, EffectsStage, EncodeStage

        self.backend = make_backend(backend, output)
        b = self.backend
        self.decode = DecodeStage(b.decoder(Codec.H264, 0, 0), b.vision(MAX_FACES, FPS), effect_settings(),
                                  True, *MAX_SIZE)
        self.effects = EffectsStage(b.effects())
        self.encode = EncodeStage(b.encoder, EncoderSettings(output, 0, 0))

    def push(self, data: bytes, pts: int, arrived: float) -> list:
        """Decode, vision, effects and encode of what the packet completes, one after the other."""
        out = []
        for item in self.decode.push(data, pts, arrived):
            out += self.encode.encode(self.effects.apply(item))
        return out

    def flush(self) -> list:
        out = []
        for item in self.decode.flush():
            out += self.encode.encode(self.effects.apply(item))
        return out + self.encode.flush()

    def close(self) -> None:
        self.decode.close()
        self.encode.close()


def _stream(backend) -> Any:
    return getattr(backend, "stream", None)


def run_threads(target: Callable[[], Any], n: int) -> float:
    """Runs `target` in n threads at once and returns the wall time; the first error raised in
    any of them is raised here."""
    errors: list[BaseException] = []

    def guarded() -> None:
        try:
            target()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=guarded) for _ in range(n)]
    t = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    if errors:
        raise errors[0]
    return time.perf_counter() - t


def _sync(stream) -> None:
    if stream is not None:
        stream.synchronize()


def decode_only(packets, backend: str, repeats: int, parallel: int, deadline: Deadline) -> dict[str, Any]:
    """Decoder throughput alone (the copy into frame-owned memory included): the best of `repeats`
    runs of one decoder, then `parallel` decoders at once, each in its own thread. The clock starts
    after the first packet, which makes the decoder."""

    def one(out: list[float], engines: list[str]) -> None:
        b = make_backend(backend, Codec.RAW_NV12)
        dec = b.decoder(Codec.H264, 0, 0)
        dec.decode(*packets[0])
        _sync(_stream(b))
        t = time.perf_counter()
        n = sum(len(dec.decode(data, pts)) for data, pts in packets[1:]) + len(dec.flush())
        _sync(_stream(b))
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
    result = {"frames": len(packets), "fps": _round(max(runs)), "runs_fps": [_round(r) for r in runs],
              "decoder": engines[-1], "parallel_decoders": None, "parallel_fps_total": None}
    if not deadline.over:
        each: list[float] = []
        run_threads(lambda: one(each, []), parallel)
        # they ran at once: together they decoded about parallel x the slowest one's rate
        result.update(parallel_decoders=parallel, parallel_fps_total=_round(parallel * min(each)))
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
    _sync(_stream(b))
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
    on_gpu = _stream(b) is not None
    settings = EncoderSettings(Codec.H264, frames[0].width, frames[0].height)
    copy_ms: list[float] = []
    encode_ms: list[float] = []
    threads, seconds = _host_encoder(frames, settings, on_gpu, copy_ms, encode_ms)
    single_fps = len(frames) / seconds
    result: dict[str, Any] = {
        "frames": len(frames), "width": settings.width, "height": settings.height, "encoder": "libx264 superfast",
        "pinned_copy": on_gpu, "ffmpeg_thread_count": threads, "cpu_cores": os.cpu_count(),
        "fps": _round(single_fps), "pinned_copy_ms": _ms(copy_ms) if on_gpu else None, "libx264_ms": _ms(encode_ms),
        "parallel_encoders": None, "parallel_fps_total": None, "streams_at_30fps_bound": None,
    }
    if deadline.over:
        return result
    each: list[float] = []
    run_threads(lambda: each.append(_host_encoder(frames, settings, on_gpu, [], [])[1]), parallel)
    total = len(frames) * parallel / max(each)
    result.update(parallel_encoders=parallel, parallel_fps_total=_round(total),
                  streams_at_30fps_bound=int(total // FPS))
    return result


# ---------------------------------------------------------------- pipeline


class StageClock:
    """Per-stage times of one frame: CUDA events on the session's stream (the stream's time
    between the stage's start and end) where there is one, and the wall time of each stage call,
    the stream synchronised at its end."""

    STAGES = ("decode", "vision", "effects", "encode")

    def __init__(self, stream) -> None:
        self.stream = stream
        self.gpu: dict[str, list[float]] = {s: [] for s in self.STAGES}
        self.wall: dict[str, list[float]] = {s: [] for s in self.STAGES}
        if stream is not None:
            import cupy as cp

            self._cp = cp
            self._events = (cp.cuda.Event(), cp.cuda.Event())

    def timed(self, stage: str, call: Callable[..., Any], *args: Any) -> Any:
        """`call(*args)`, its times added to `stage`'s."""
        if self.stream is not None:
            self._events[0].record(self.stream)
        t = time.perf_counter()
        result = call(*args)
        if self.stream is not None:
            self._events[1].record(self.stream)
            self._events[1].synchronize()
            self.gpu[stage].append(self._cp.cuda.get_elapsed_time(*self._events))
        self.wall[stage].append((time.perf_counter() - t) * 1000)
        return result

    def summary(self) -> dict[str, Any]:
        gpu = {s: _ms(v) for s, v in self.gpu.items()} if self.stream is not None else None
        return {"stage_gpu_ms": gpu, "stage_wall_ms": {s: _ms(v) for s, v in self.wall.items()}}


def serial_pass(packets, backend: str, output: Codec, deadline: Deadline) -> dict[str, Any]:
    """Every stage of every frame one after the other, timed (StageClock), in one session."""
    b = make_backend(backend, output)
    dec, vis, fx = b.decoder(Codec.H264, 0, 0), b.vision(MAX_FACES, FPS), b.effects()
    settings = effect_settings()
    clock = StageClock(_stream(b))
    enc = None
    faces: list[int] = []
    sizes: list[int] = []
    t = time.perf_counter()
    for data, pts in [*packets, (b"", 0)]:
        frames = clock.timed("decode", dec.decode, data, pts) if data else clock.timed("decode", dec.flush)
        for frame in frames:
            found = clock.timed("vision", vis.process, frame)
            clock.timed("effects", fx.apply, frame, found, settings)
            if enc is None:
                enc = b.encoder(EncoderSettings(output, *frame.picture_size))
            sizes += [len(p.data) for p in clock.timed("encode", enc.encode, frame)]
            faces.append(len(found))
        if deadline.over:
            break
    wall = time.perf_counter() - t
    for stage in (vis, dec, enc):
        if stage is not None:
            stage.close()
    counts = {str(k): faces.count(k) for k in sorted(set(faces))}
    return {"frames": len(faces), "fps": _round(len(faces) / wall), **clock.summary(),
            "faces_per_frame_mean": _round(float(np.mean(faces)), 2) if faces else None,
            "frames_by_faces_found": counts, "output_bytes_mean": int(np.mean(sizes)) if sizes else None}


def _put(q: queue.Queue, item: Any, failed: threading.Event) -> None:
    while not failed.is_set():
        try:
            q.put(item, timeout=0.1)
            return
        except queue.Full:
            continue


def _drain(q: queue.Queue) -> None:
    while q.get() is not None:
        pass


def overlapped_pass(packets, backend: str, output: Codec, deadline: Deadline) -> dict[str, Any]:
    """One session as the server runs it: decode + vision, effects and encode of consecutive
    frames in three threads with bounded queues between them; frames per second end to end."""
    session = Session(backend, output)
    to_effects: queue.Queue = queue.Queue(QUEUE_DEPTH)
    to_encode: queue.Queue = queue.Queue(QUEUE_DEPTH)
    failed = threading.Event()
    errors: list[BaseException] = []

    def decode() -> None:
        try:
            for data, pts in packets:
                if failed.is_set() or deadline.over:
                    break
                for item in session.decode.push(data, pts, time.perf_counter()):
                    _put(to_effects, item, failed)
            for item in [] if failed.is_set() else session.decode.flush():
                _put(to_effects, item, failed)
        except BaseException as exc:
            errors.append(exc)
            failed.set()
        finally:
            _put(to_effects, None, threading.Event())

    def effects() -> None:
        try:
            while (item := to_effects.get()) is not None:
                _put(to_encode, session.effects.apply(item), failed)
        except BaseException as exc:
            errors.append(exc)
            failed.set()
            _drain(to_effects)
        finally:
            _put(to_encode, None, threading.Event())

    threads = [threading.Thread(target=decode), threading.Thread(target=effects)]
    t = time.perf_counter()
    for th in threads:
        th.start()
    done = 0
    try:
        while (item := to_encode.get()) is not None:
            done += len(session.encode.encode(item))
        done += len(session.encode.flush())
    except BaseException:
        failed.set()
        _drain(to_encode)
        raise
    finally:
        for th in threads:
            th.join()
        session.close()
    if errors:
        raise errors[0]
    return {"frames": done, "fps": _round(done / (time.perf_counter() - t))}


def warm_up(packets, backend: str) -> float:
    """Loads the models, compiles the kernels and opens each output's encoder once, so that no
    measurement pays for them; the seconds it took."""
    t = time.perf_counter()
    for output in OUTPUTS:
        session = Session(backend, output)
        try:
            for data, pts in packets[:3]:
                session.push(data, pts, time.perf_counter())
            session.flush()
        finally:
            session.close()
    return time.perf_counter() - t


def pipeline(packets, backend: str, output: Codec, deadline: Deadline) -> dict[str, Any]:
    overlapped = overlapped_pass(packets, backend, output, deadline.part(deadline.left() / 2))
    serial = serial_pass(packets, backend, output, deadline)
    placements = make_backend(backend, output).placements()
    vision = next(p for p in placements if p.stage == "vision")
    return {"fps": overlapped["fps"], "frames": overlapped["frames"], "fps_is": "one session, stages overlapping "
            "as the server runs them (decode + vision | effects | encode), no gRPC",
            "vision_ran": f"{vision.device} ({vision.engine})", "serial": serial,
            "stage_times_are": "serial pass: CUDA events around each stage on the session's stream (stage_gpu_ms) "
                               "and each stage call's wall time with the stream synchronised (stage_wall_ms)",
            "placements": [vars(p) for p in placements]}


# ---------------------------------------------------------------- memory


def memory_per_session(packets, backend: str, sessions: int, deadline: Deadline) -> dict[str, Any]:
    """GPU memory after each added raw-output session has processed a few frames (all kept open)."""
    release_memory()
    base = gpu_memory()
    steps = []
    opened: list[Session] = []
    try:
        for n in range(1, sessions + 1):
            if deadline.over:
                break
            s = Session(backend, Codec.RAW_NV12)
            opened.append(s)
            for data, pts in packets[:5]:
                s.push(data, pts, time.perf_counter())
            _sync(_stream(s.backend))
            steps.append({"sessions": n, **gpu_memory()})
    finally:
        for s in opened:
            s.close()
    return {"baseline": base, "steps": steps, "first_session_mb": _delta(base, steps[0], 1) if steps else None,
            "per_session_mb": _delta(steps[0], steps[-1], len(steps) - 1) if len(steps) > 1 else None,
            "measured_as": "each session decoded, searched, beautified and output 5 frames (raw NV12) and stayed "
                           "open; first_session_mb: the first one's increase over the baseline (with what the "
                           "process sets up once), per_session_mb: the increase per further session"}


def _delta(before: dict[str, Any], after: dict[str, Any], sessions: int) -> dict[str, float | None]:
    return {k: _round((after[k] - v) / sessions) if v is not None and after[k] is not None else None
            for k, v in before.items() if k != "sessions"}


# ---------------------------------------------------------------- paced streams


@dataclass
class StreamRun:
    latencies: list[float]
    stages: dict[str, list[float]]
    expected: int
    processed: int = 0
    error: str | None = None


def _paced_session(packets, backend: str, output: Codec, scale: Scale, offset: float, run: StreamRun,
                   ready: threading.Event, start: list[float], go: threading.Event, stop: threading.Event) -> None:
    """One camera-like session: its first frames before the clock starts, then one packet every
    1/30 s from start[0] + offset; each frame's latency is from its packet's due time to its
    output packet."""
    session = None
    try:
        session = Session(backend, output)
        for data, pts in packets[:scale.warm_frames]:
            session.push(data, pts, time.perf_counter())
        ready.set()
        go.wait()
        t0 = start[0] + offset
        body = packets[scale.warm_frames:scale.warm_frames + run.expected]
        for k, (data, pts) in enumerate(body):
            if stop.is_set():
                break
            due = t0 + k / FPS
            time.sleep(max(0.0, due - time.perf_counter()))
            _record(run, session.push(data, pts, due))
        if not stop.is_set():
            _record(run, session.flush())
    except Exception as exc:
        run.error = f"{type(exc).__name__}: {exc}"
    finally:
        ready.set()
        if session is not None:
            session.close()


def _record(run: StreamRun, items) -> None:
    now = time.perf_counter()
    for item in items:
        run.latencies.append((now - item.arrived) * 1000)
        for stage, ms in item.timings.items():
            run.stages.setdefault(str(stage), []).append(ms)
        run.processed += item.processed


def paced_step(packets, backend: str, output: Codec, n: int, scale: Scale) -> dict[str, Any]:
    """n paced sessions at once, started over one frame interval; whether they hold the goal."""
    expected = min(len(packets) - scale.warm_frames, max(1, round(scale.run_seconds * FPS)))
    runs = [StreamRun([], {}, expected) for _ in range(n)]
    ready = [threading.Event() for _ in range(n)]
    go, stop = threading.Event(), threading.Event()
    start = [0.0]
    threads = [threading.Thread(target=_paced_session, daemon=True,
                                args=(packets, backend, output, scale, i / (FPS * n), runs[i], ready[i], start, go,
                                      stop)) for i in range(n)]
    t = time.perf_counter()
    for th in threads:
        th.start()
    for r in ready:
        r.wait(max(0.0, t + 30.0 - time.perf_counter()))
    setup = time.perf_counter() - t
    cpu0, start[0] = time.process_time(), time.perf_counter() + 0.05
    go.set()
    span = expected / FPS
    time.sleep(span / 2)
    load, memory = gpu_load(), gpu_memory()
    for th in threads:
        th.join(max(0.0, start[0] + span + 5.0 - time.perf_counter()))
    stop.set()
    unfinished = [i for i, th in enumerate(threads) if th.is_alive()]
    wall = time.perf_counter() - start[0]
    cores = (time.process_time() - cpu0) / wall
    for th in threads:
        th.join(2.0)
    return _step_result(n, runs, unfinished, setup, wall, cores, load, memory)


def _step_result(n, runs: list[StreamRun], unfinished, setup, wall, cores, load, memory) -> dict[str, Any]:
    latencies = [x for r in runs for x in r.latencies]
    expected = sum(r.expected for r in runs)
    processed = sum(r.processed for r in runs)
    errors = {i: r.error for i, r in enumerate(runs) if r.error}
    lat = _ms(latencies)
    holds = (not errors and not unfinished and processed == expected and lat["p99"] is not None
             and lat["p99"] <= P99_GOAL_MS)
    stages: dict[str, list[float]] = {}
    for r in runs:
        for k, v in r.stages.items():
            stages.setdefault(k, []).extend(v)
    return {"streams": n, "holds": holds, "latency_ms": lat, "frames_expected": expected,
            "frames_processed": processed, "frames_missing": expected - processed, "errors": errors,
            "unfinished": unfinished, "setup_s": _round(setup, 2), "wall_s": _round(wall, 2),
            "cpu_cores_busy": _round(cores, 2), "gpu_sample": load, "memory_sample": memory,
            "stage_call_ms_mean": {k: _round(float(np.mean(v)), 3) for k, v in sorted(stages.items())}}


def ramp(packets, backend: str, output: Codec, scale: Scale, start: int, deadline: Deadline) -> dict[str, Any]:
    """The most paced streams that hold: N doubles from `start` (or halves when it fails), then
    bisects until the gap is within an eighth, while a step still fits the section's time."""
    steps: list[dict[str, Any]] = []
    lo, hi = 0, None
    cost = scale.run_seconds + 10.0
    while deadline.left() >= cost:
        n = _next_count(lo, hi, start, scale.max_streams)
        if n is None:
            break
        t = time.perf_counter()
        step = paced_step(packets, backend, output, n, scale)
        release_memory()
        cost = max(cost, time.perf_counter() - t)
        steps.append(step)
        print(f"  {output.value} {n} streams: p99 {step['latency_ms']['p99']} ms, {step['frames_missing']} frames "
              f"late or missing, {'holds' if step['holds'] else 'breaks'}", flush=True)
        if step["holds"]:
            lo = n
        else:
            hi = n if hi is None else min(hi, n)
    exact = _next_count(lo, hi, start, scale.max_streams) is None
    at = next((s for s in steps if s["streams"] == lo), None)
    return {"sustained_streams": lo, "exact": exact, "fails_at": hi, "limit": scale.max_streams,
            "p99_ms_at_sustained": at["latency_ms"]["p99"] if at else None,
            "note": "" if exact else "the section's time ran out before the search ended",
            "streams_are": "paced 30 fps sessions in this process through the engine stages (no gRPC); a step "
                           f"holds when every frame is processed and p99 latency <= {P99_GOAL_MS:.0f} ms",
            "stage_call_ms_are": "the wall time of each stage call, as the server reports a frame's stage timings",
            "steps": steps}


def _next_count(lo: int, hi: int | None, start: int, limit: int) -> int | None:
    """The next stream count to try, or None when the search is done."""
    if hi is None:
        if lo >= limit:
            return None
        return min(limit, lo * 2) if lo else min(start, limit)
    if lo == 0:
        return None if hi <= 1 else hi // 2
    if hi - lo <= max(1, lo // 8):
        return None
    return (lo + hi) // 2


# ---------------------------------------------------------------- server


async def _server_stream(target: str, path: Path, backend: str, output: Codec, frames: int, delay: float,
                         records: list[dict[str, Any]]) -> dict[str, Any]:
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
    lat = _ms([r["latency_ms"] for r in records])
    processed = sum(r["processed"] for r in records)
    return {"frames_sent": sum(s["sent"] for s in streams_out), "frames_expected": sent, "frames_received":
            len(records), "frames_processed": processed, "latency_ms": lat,
            "holds": processed == sent and lat["p99"] is not None and lat["p99"] <= P99_GOAL_MS,
            "server_stage_ms_mean": {k: _round(float(np.mean([r[k] for r in records])), 3) for k in
                                     ("decode_ms", "vision_ms", "effects_ms", "encode_ms", "queue_ms", "total_ms")}
            if records else None,
            "output_bytes_mean": int(np.mean([r["bytes"] for r in records])) if records else None,
            "faces_per_frame_mean": _round(float(np.mean([r["faces"] for r in records])), 2) if records else None,
            "encode": streams_out[0]["encode"]}


def server_check(path: Path, backend: str, streams: int, frames: int, deadline: Deadline) -> dict[str, Any]:
    """Paced streams through a real server and real clients, per output codec: the client's
    latency (packet sent -> its output received) and the server's own stage timings."""
    result = asyncio.run(_server_runs(path, backend, streams, frames, deadline))
    result["latency_is"] = "the SDK's: packet sent -> output packet received, over gRPC on loopback"
    result["stage_times_are"] = "the server's stage timings (wall time of each stage call) from each output packet"
    return result


# ---------------------------------------------------------------- goals and summary


def _ratio(pipe: dict[str, Any], decode: dict[str, Any], output: Codec) -> float | None:
    fps = (pipe.get(output.value) or {}).get("fps")
    return round(fps / decode["fps"], 3) if fps and decode.get("fps") else None


def _raw_bound(ramp_result: dict[str, Any]) -> str:
    """What the first failing step shows about the limit."""
    failing = next((s for s in ramp_result.get("steps", []) if s["streams"] == ramp_result.get("fails_at")), None)
    if failing is None:
        return "no step failed within the section's time and stream limit"
    g = {k: "n/a" if v is None else v for k, v in failing["gpu_sample"].items()}
    return (f"at {failing['streams']} streams: p99 {failing['latency_ms']['p99']} ms, {failing['frames_missing']} "
            f"frames not processed, {len(failing['errors'])} sessions failed; this process kept "
            f"{failing['cpu_cores_busy']} CPU cores busy, the GPU was {g['gpu_percent']} % busy and NVDEC "
            f"{g['nvdec_percent']} % (one sample); stage calls (ms): {failing['stage_call_ms_mean']}")


def goals(data: dict[str, Any]) -> dict[str, Any]:
    decode, pipe = data.get("decode_only") or {}, data.get("pipeline") or {}
    raw, h264, enc = data.get("ramp_nv12") or {}, data.get("ramp_h264") or {}, data.get("host_encode") or {}
    ratio = _ratio(pipe, decode, Codec.RAW_NV12)
    streams = raw.get("sustained_streams")
    bound = enc.get("streams_at_30fps_bound")
    return {
        "pipeline_over_decode": {"nv12": ratio, "h264": _ratio(pipe, decode, Codec.H264),
                                 "mjpeg": _ratio(pipe, decode, Codec.MJPEG), "goal_nv12": GOAL_PIPELINE_OVER_DECODE,
                                 "met": ratio is not None and ratio >= GOAL_PIPELINE_OVER_DECODE},
        "streams_1080p30_nv12": {"value": streams, "exact": raw.get("exact"), "goal": GOAL_RAW_STREAMS,
                                 "met": streams is not None and streams >= GOAL_RAW_STREAMS,
                                 "p99_ms": raw.get("p99_ms_at_sustained"), "what_bounds_it": _raw_bound(raw)},
        "streams_1080p30_h264": {
            "value": h264.get("sustained_streams"), "exact": h264.get("exact"),
            "p99_ms": h264.get("p99_ms_at_sustained"), "host_encode_streams_bound": bound,
            "what_bounds_it": (f"the host encoder: libx264 on {enc.get('cpu_cores')} CPU cores encodes "
                               f"{enc.get('parallel_fps_total')} frames/s at {enc.get('width')}x{enc.get('height')} "
                               f"with {enc.get('parallel_encoders')} sessions at once, about {bound} streams of "
                               "30 fps, and shares those cores with the rest of the pipeline") if bound is not None
            else "not measured (host_encode did not run)"},
    }


def summary_lines(data: dict[str, Any]) -> list[str]:
    g = data.get("goals") or {}
    lines = []
    d, e = data.get("decode_only") or {}, data.get("host_encode") or {}
    lines.append(f"decode only ({d.get('decoder')}): {d.get('fps')} fps one session, "
                 f"{d.get('parallel_fps_total')} fps with {d.get('parallel_decoders')} at once")
    lines.append(f"host encode (pinned copy + libx264, {e.get('cpu_cores')} cores): {e.get('fps')} fps one encoder, "
                 f"{e.get('parallel_fps_total')} fps with {e.get('parallel_encoders')} at once")
    for output in OUTPUTS:
        p = (data.get("pipeline") or {}).get(output.value) or {}
        gpu = ((p.get("serial") or {}).get("stage_gpu_ms") or {})
        per_stage = ", ".join(f"{k} {v['mean']}" for k, v in gpu.items() if v.get("mean") is not None)
        lines.append(f"pipeline {output.value}: {p.get('fps')} fps" + (f"; GPU ms per stage: {per_stage}"
                                                                      if per_stage else ""))
    m = (data.get("memory") or {}).get("per_session_mb")
    lines.append(f"GPU memory per session (MiB): {m}")
    p = g.get("pipeline_over_decode") or {}
    lines.append(f"goal full/NVDEC >= {GOAL_PIPELINE_OVER_DECODE} with raw output: {p.get('nv12')} "
                 f"({'met' if p.get('met') else 'not met'}); h264 {p.get('h264')}, mjpeg {p.get('mjpeg')}")
    r = g.get("streams_1080p30_nv12") or {}
    lines.append(f"goal >= {GOAL_RAW_STREAMS} streams 1080p30 raw at p99 <= {P99_GOAL_MS:.0f} ms: {r.get('value')}"
                 f"{'' if r.get('exact') else ' (at least)'} ({'met' if r.get('met') else 'not met'}); "
                 f"{r.get('what_bounds_it')}")
    h = g.get("streams_1080p30_h264") or {}
    lines.append(f"streams 1080p30 h264 at p99 <= {P99_GOAL_MS:.0f} ms: {h.get('value')}"
                 f"{'' if h.get('exact') else ' (at least)'}; bound: {h.get('what_bounds_it')}")
    s = data.get("server") or {}
    for output in OUTPUTS:
        o = s.get(output.value) or {}
        if "latency_ms" in o:
            lines.append(f"server, {s.get('streams')} stream(s) {output.value}: p99 {o['latency_ms']['p99']} ms, "
                         f"{o['frames_processed']}/{o['frames_expected']} frames processed, encode {o['encode']}")
    return lines


# ---------------------------------------------------------------- main


def _budget(name: str, scale: Scale) -> float:
    """The section's seconds, in proportion when the whole run has another budget than the default."""
    return BUDGETS[name] * scale.budget / Scale.budget


def run_sections(report: Report, args: argparse.Namespace, scale: Scale, deadline: Deadline, work: Path) -> None:
    clip = work / "input.mp4"
    packets: list[tuple[bytes, int]] = []

    def make() -> dict[str, Any]:
        result = make_input(CLIP, clip, scale.size, scale.frames, deadline.part(_budget("input", scale)))
        packets.extend(annexb_packets(clip))
        result["packets"] = len(packets)
        return result

    report.section("input", make, deadline)
    if not packets:
        return
    backend = args.backend
    report.section("decode_only", lambda: decode_only(packets, backend, scale.decode_repeats, scale.parallel,
                                                      deadline.part(_budget("decode_only", scale))), deadline)
    report.section("host_encode", lambda: host_encode(packets, backend, scale.parallel,
                                                      deadline.part(_budget("host_encode", scale))), deadline)

    def pipelines() -> dict[str, Any]:
        part = deadline.part(_budget("pipeline", scale))
        out: dict[str, Any] = {"warm_up_s": _round(warm_up(packets, backend), 2)}
        for i, output in enumerate(OUTPUTS):
            share = part.part(part.left() / (len(OUTPUTS) - i))
            try:
                out[output.value] = pipeline(packets, backend, output, share)
            except Exception as exc:
                out[output.value] = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc(8)}
                report.failed.append(f"pipeline {output.value}")
            report.data["pipeline"] = out
            report.save()
        return out

    report.section("pipeline", pipelines, deadline)
    report.section("memory", lambda: memory_per_session(packets, backend, scale.memory_sessions,
                                                        deadline.part(_budget("memory", scale))), deadline)
    for output in RAMPS:
        name = f"ramp_{output.value}"
        start = scale.ramp_start
        bound = (report.data.get("host_encode") or {}).get("streams_at_30fps_bound")
        if output is Codec.H264 and bound:
            start = max(1, min(scale.ramp_start, 2 ** int(math.log2(max(1, bound)))))
        report.section(name, lambda o=output, s=start, n=name: ramp(packets, backend, o, scale, s,
                                                                   deadline.part(_budget(n, scale))), deadline)
        report.data["goals"] = goals(report.data)
    streams = scale.server_streams
    report.section("server", lambda: server_check(clip, backend, streams, min(len(packets), round(5 * FPS)),
                                                  deadline.part(_budget("server", scale))), deadline)
    report.data["goals"] = goals(report.data)
    report.save()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="", help="JSON result (default: benchmarks/results/gpu-<device>.json)")
    ap.add_argument("--backend", choices=("gpu", "cpu"), default="gpu",
                    help="the backend every section runs on (cpu: the same measurements on any machine)")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes and counts: checks the benchmark itself")
    ap.add_argument("--budget", type=float, default=0.0, help="seconds for the whole run (default 235; smoke 200)")
    args = ap.parse_args(argv)
    scale = SMOKE if args.smoke else Scale()
    if args.budget:
        scale = replace(scale, budget=args.budget)
    deadline = Deadline(scale.budget)

    from facestream.engines.backend import probe_gpu

    gpu = probe_gpu()
    results = REPO / "benchmarks" / "results"
    out: Path | None = Path(args.out) if args.out else results / "gpu-bench-on-cpu.json"
    if args.backend == "gpu" and not args.out:   # named for the device; nothing written without one
        slug = "".join(c if c.isalnum() else "-" for c in gpu.name.lower()).strip("-")
        out = results / f"gpu-{slug}.json" if gpu.available else None
    report = Report(out)
    report.data.update(date=time.strftime("%Y-%m-%dT%H:%M:%S%z"), host=platform.node(), args=vars(args),
                       scale=vars(scale))
    if args.backend == "gpu" and not gpu.available:
        report.data["skipped"] = f"no GPU: {gpu.detail}"
        report.save()
        print(report.data["skipped"])
        return NO_GPU
    report.data.update(versions=versions(args.backend), effects=EFFECTS,
                       plan={o.value: [vars(p) for p in make_backend(args.backend, o).placements()] for o in OUTPUTS})
    report.save()
    with tempfile.TemporaryDirectory(prefix="facestream-gpu-bench-") as work:
        run_sections(report, args, scale, deadline, Path(work))
    print("\n".join(summary_lines(report.data)))
    print(f"results written to {out}")
    return 1 if report.failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
