"""GPU benchmark: decode-only throughput, the full pipeline's throughput and per-stage times in the
same run, the vision models' call rate, and concurrent 1080p30 streams sustained.

    python -m facestream.benchmarks.gpu_bench [--out benchmarks/results/gpu-<device>.json] [--budget 150]

Input: the shared clip (FACESTREAM_MEDIA) upscaled to 1080p and encoded with libx264 (Annex-B
access units, no B-frames) at start-up. Stage times: CUDA events on the session's stream for
decode and effects; wall time after a stream sync for vision and for encode (NVENC, or the
pinned-host copy and CPU encoder the plan picked).

Vision: every call of the shared detector and mesh runners is timed, which gives the calls per
second that path sustains and the share of the pipeline's time it takes. Without TensorRT the
models run on ONNX Runtime's CPU provider, one row per call on one thread, behind one batch
thread for all sessions; the pipeline and concurrency figures are labelled with where vision
ran, and are not the GPU's throughput when that is the CPU.

Concurrent streams: N sessions in threads, each paced at 30 fps for `--run-seconds`; N streams
are sustained when every one keeps up (>= 29 fps delivered, lag under one second) and none
failed. N doubles, then bisects, while the section's time lasts.

Every section has a time budget inside `--budget`, and the JSON is rewritten after each one, so a
run cut short keeps what it measured. Exit status: 0; 1 when a section failed; 3 without a GPU.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import threading
import time
import traceback
from fractions import Fraction
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

import numpy as np

from facestream.engines.models.specs import DEFAULT_DETECTOR

REPO = Path(__file__).resolve().parents[1]
MEDIA = Path(os.environ.get("FACESTREAM_MEDIA", REPO.parent / "shared" / "media"))
CLIP = MEDIA / "short_hamilton_clip.mp4"
EFFECTS = {"smooth": 0.7, "whiten": 0.4, "lips": 0.5, "blush": 0.4, "eyes": 0.4, "slim": 0.4, "sharpen": 0.3}
MODELS = (DEFAULT_DETECTOR, "mesh")     # the models GpuVision runs
FPS = 30.0
NO_GPU = 3
DISTRIBUTIONS = ("cupy-cuda13x", "cupy-cuda12x", "pynvvideocodec", "av", "onnxruntime", "tensorrt", "tensorrt-cu13",
                 "tensorrt-cu12", "numpy", "grpcio", "torch")


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

    def section(self, name: str, run: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """Runs one section; a failure is recorded with its error and the run goes on."""
        print(f"{name} ...", flush=True)
        t = time.perf_counter()
        try:
            result = run()
        except Exception as exc:
            result = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc(limit=6)}
            self.failed.append(name)
            print(f"{name} failed: {result['error']}", flush=True)
        result["section_seconds"] = round(time.perf_counter() - t, 1)
        self.data[name] = result
        self.save()
        return result


def make_1080p(src: Path, frames: int, deadline: Deadline) -> list[tuple[bytes, int]]:
    """The clip upscaled to 1920x1080, encoded with libx264 (no B-frames), as (Annex-B AU, pts);
    stops early at the deadline."""
    from facestream.engines.codec.cpu import pyav

    av = pyav()
    out = []
    with av.open(str(src)) as c:
        s = c.streams.video[0]
        enc = av.CodecContext.create("libx264", "w")
        enc.width, enc.height, enc.pix_fmt = 1920, 1080, "yuv420p"
        enc.time_base = Fraction(1, 30)
        enc.framerate = Fraction(30)
        enc.gop_size = 60
        enc.max_b_frames = 0
        enc.options = {"preset": "veryfast", "tune": "zerolatency", "crf": "20", "repeat-headers": "1"}
        n = 0
        for f in c.decode(s):
            g = f.reformat(width=1920, height=1080, format="yuv420p", interpolation="BICUBIC")
            g.pts = n
            for p in enc.encode(g):
                out.append((bytes(p), int(p.pts)))
            n += 1
            if (frames and n >= frames) or deadline.over:
                break
        for p in enc.encode(None):
            out.append((bytes(p), int(p.pts)))
    return out


def versions() -> dict[str, Any]:
    import cupy as cp

    from facestream.engines.backend import probe_gpu

    v: dict[str, Any] = {"python": platform.python_version()}
    for dist in DISTRIBUTIONS:
        try:
            v[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    g = probe_gpu()
    v.update(device=g.name, compute_capability=g.compute_capability, memory_gb=g.memory_gb, cuda_driver=g.driver,
             cuda_runtime=cp.cuda.runtime.runtimeGetVersion())
    try:
        v["nvidia_driver"] = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                            capture_output=True, text=True, timeout=20).stdout.strip()
    except (OSError, subprocess.TimeoutExpired) as exc:
        v["nvidia_driver"] = f"not read: {exc}"
    return v


class ModelClock:
    """Times every call of the shared model runners: rows, batches and seconds per model.

    The runners are process-wide (engines.vision.gpu.shared_models), and each model's batcher
    runs one batch at a time, so the counts need no lock."""

    def __init__(self) -> None:
        from facestream.engines.vision.gpu import shared_models

        self.models = shared_models()
        self.runners = {m: self.models.batcher(m).runner for m in MODELS}
        self.rows = dict.fromkeys(MODELS, 0)
        self.batches = dict.fromkeys(MODELS, 0)
        self.seconds = dict.fromkeys(MODELS, 0.0)
        for model, runner in self.runners.items():
            runner.run = self._timed(model, runner.run)

    def _timed(self, model: str, run: Callable[[Any], Any]) -> Callable[[Any], Any]:
        def timed(batch: Any) -> Any:
            t = time.perf_counter()
            try:
                return run(batch)
            finally:
                self.seconds[model] += time.perf_counter() - t
                self.rows[model] += len(batch)
                self.batches[model] += 1

        return timed

    def reset(self) -> None:
        for m in MODELS:
            self.rows[m], self.batches[m], self.seconds[m] = 0, 0, 0.0

    def engine(self) -> dict[str, Any]:
        """Which runtime ran the models, and how: ONNX Runtime runs a batch row by row."""
        out: dict[str, Any] = {"kind": self.models.kind, "detail": self.models.detail}
        for m, runner in self.runners.items():
            ort = getattr(getattr(runner, "host", None), "ort", None)    # HostOrtRunner's inference
            out[m] = {"runner": type(runner).__name__, "max_batch": runner.max_batch,
                      "onnxruntime_threads": ort.get_session_options().intra_op_num_threads if ort else None,
                      "rows_per_model_run": 1 if ort else "the batch"}
        return out

    def snapshot(self, wall: float) -> dict[str, Any]:
        """Per model: calls (rows), batches, seconds in calls, calls per second while busy and per
        second of wall time, and the share of the wall time the calls took."""
        out: dict[str, Any] = {}
        for m in MODELS:
            s, n = self.seconds[m], self.rows[m]
            out[m] = {"calls": n, "batches": self.batches[m], "seconds": round(s, 3),
                      "calls_per_s_busy": round(n / s, 1) if s else None,
                      "calls_per_s_wall": round(n / wall, 1) if wall else None,
                      "share_of_wall": round(s / wall, 3) if wall else None}
        total = sum(self.seconds.values())
        out["share_of_wall_all_models"] = round(total / wall, 3) if wall else None
        return out


def _vision_label(placements) -> tuple[str, str]:
    vision = next(p for p in placements if p.stage == "vision")
    where = f"vision on {vision.device} ({vision.engine})"
    if vision.device == "cpu":
        return where, f"{where}: the models ran on the CPU, so this is not the GPU's throughput"
    return where, where


def decode_only(packets, deadline: Deadline, repeats: int = 3) -> dict[str, Any]:
    """Decoder throughput alone (frames per second), the copy into frame-owned memory included."""
    import cupy as cp

    from facestream.engines.codec.base import Codec
    from facestream.engines.codec.gpu import make_decoder

    best, frames, runs, engine = 0.0, 0, 0, ""
    while runs < repeats and not deadline.over:
        stream = cp.cuda.Stream(non_blocking=True)
        dec = make_decoder(Codec.H264, 0, 0, stream)
        t = time.perf_counter()
        n = 0
        for data, pts in packets:
            n += len(dec.decode(data, pts))
            if deadline.over:
                break
        n += len(dec.flush())
        stream.synchronize()
        best = max(best, n / (time.perf_counter() - t))
        frames, runs = n, runs + 1
        on_nvdec = getattr(dec, "on_nvdec", False)   # a FallbackDecoder: NVDEC, or the CPU one it fell back to
        engine = "NvDecoder" if on_nvdec else type(dec).__name__ if not hasattr(dec, "on_nvdec") else "UploadDecoder"
        dec.close()
    where = "gpu (nvdec)" if on_nvdec else "cpu (pyav), frames uploaded"
    return {"frames": frames, "fps": round(best, 1), "runs": runs, "engine": engine, "decoded_on": where}


def _settings():
    from facestream.engines.effects.base import EffectSetting, EffectSettings

    return EffectSettings(effects=tuple(EffectSetting(k, v) for k, v in EFFECTS.items()))


def pipeline(packets, deadline: Deadline, clock: ModelClock, repeats: int = 2) -> dict[str, Any]:
    """The full pipeline back to back in one session, the best of `repeats` runs."""
    import cupy as cp

    from facestream.engines.codec.base import Codec, EncoderSettings
    from facestream.engines.gpu_backend import GpuBackend

    settings = _settings()
    best: dict[str, Any] | None = None
    for _ in range(repeats):
        if deadline.over:
            break
        b = GpuBackend("benchmark")
        dec = b.decoder(Codec.H264, 0, 0)
        vis = b.vision(2, FPS)
        fx = b.effects()
        enc = None
        times: dict[str, list[float]] = {"decode": [], "vision": [], "effects": [], "encode": []}
        ev = [cp.cuda.Event() for _ in range(4)]
        clock.reset()
        t0 = time.perf_counter()
        n = 0
        for data, pts in [*packets, (b"", 0)]:
            ev[0].record(b.stream)
            got = dec.decode(data, pts) if data else dec.flush()
            ev[1].record(b.stream)
            ev[1].synchronize()
            for frame in got:
                times["decode"].append(cp.cuda.get_elapsed_time(ev[0], ev[1]) / len(got))
                t = time.perf_counter()
                faces = vis.process(frame)
                b.stream.synchronize()
                times["vision"].append((time.perf_counter() - t) * 1000)
                ev[2].record(b.stream)
                fx.apply(frame, faces, settings)
                ev[3].record(b.stream)
                ev[3].synchronize()
                times["effects"].append(cp.cuda.get_elapsed_time(ev[2], ev[3]))
                if enc is None:
                    enc = b.encoder(EncoderSettings(Codec.H264, frame.width, frame.height, quality=80))
                t = time.perf_counter()
                enc.encode(frame)
                times["encode"].append((time.perf_counter() - t) * 1000)
                n += 1
            if deadline.over:
                break
        if enc is not None:
            enc.flush()
        wall = time.perf_counter() - t0
        placements = b.placements()
        where, label = _vision_label(placements)
        result = {
            "frames": n, "of_frames": len(packets), "seconds": round(wall, 2), "fps": round(n / wall, 1),
            "vision_ran": where, "fps_is": f"one session, end to end, {label}",
            "stage_ms_per_frame": {k: round(float(np.mean(v)), 3) for k, v in times.items() if v},
            "stage_ms_p95": {k: round(float(np.percentile(v, 95)), 3) for k, v in times.items() if v},
            "model_calls": clock.snapshot(wall), "vision_stats": dict(vis.stats),
            "placements": [vars(p) for p in placements],
        }
        vis.close()
        dec.close()
        if best is None or result["fps"] > best["fps"]:
            best = result
    if best is None:
        raise TimeoutError("no time was left for a pipeline run")
    best["model_engine"] = clock.engine()
    return best


def _stream_worker(packets, seconds: float, out: dict, key: int, ready: threading.Event,
                   start: threading.Event) -> None:
    """One paced 30 fps session; its result, or the error that ended it, goes into out[key]."""
    from facestream.engines.codec.base import Codec, EncoderSettings
    from facestream.engines.gpu_backend import GpuBackend

    dec = vis = enc = None
    try:
        settings = _settings()
        b = GpuBackend("benchmark")
        dec, vis, fx = b.decoder(Codec.H264, 0, 0), b.vision(2, FPS), b.effects()
        ready.set()
        start.wait()
        t0 = time.perf_counter()
        done, lag, i = 0, 0.0, 0
        while time.perf_counter() - t0 < seconds:
            due = t0 + done / FPS
            now = time.perf_counter()
            if now < due:
                time.sleep(due - now)
            if i and i % len(packets) == 0:    # loop the clip: restart the decoder at its first keyframe
                dec.close()
                dec = b.decoder(Codec.H264, 0, 0)
            data, pts = packets[i % len(packets)]
            i += 1
            for frame in dec.decode(data, pts):
                faces = vis.process(frame)
                fx.apply(frame, faces, settings)
                if enc is None:
                    enc = b.encoder(EncoderSettings(Codec.H264, frame.width, frame.height, quality=70))
                enc.encode(frame)
                done += 1
                lag = max(lag, time.perf_counter() - (t0 + done / FPS))
        elapsed = time.perf_counter() - t0
        out[key] = {"fps": done / elapsed, "max_lag_s": lag, "frames": done}
    except Exception as exc:
        out[key] = {"error": f"{type(exc).__name__}: {exc}"}
    finally:
        ready.set()
        for stage in (vis, dec, enc):
            if stage is not None:
                stage.close()


def sustained(packets, n: int, seconds: float, clock: ModelClock) -> dict[str, Any]:
    out: dict[int, dict[str, Any]] = {}
    start = threading.Event()
    ready = [threading.Event() for _ in range(n)]
    threads = [threading.Thread(target=_stream_worker, args=(packets, seconds, out, i, ready[i], start), daemon=True)
               for i in range(n)]
    for t in threads:
        t.start()
    set_up = time.perf_counter() + 15.0     # sessions set up (models load once, kernels compile once)
    for r in ready:
        r.wait(max(0.0, set_up - time.perf_counter()))
    clock.reset()
    t0 = time.perf_counter()
    start.set()
    for t in threads:
        t.join(max(0.0, t0 + seconds + 10.0 - time.perf_counter()))
    wall = time.perf_counter() - t0
    unfinished = [i for i, t in enumerate(threads) if t.is_alive()]
    errors = {i: r["error"] for i, r in out.items() if "error" in r}
    fps = [r["fps"] for r in out.values() if "fps" in r]
    lags = [r["max_lag_s"] for r in out.values() if "max_lag_s" in r]
    ok = not errors and not unfinished and len(fps) == n and min(fps) >= FPS - 1 and max(lags) < 1.0
    return {"streams": n, "ok": ok, "min_fps": round(min(fps), 1) if fps else None,
            "max_lag_s": round(max(lags), 3) if lags else None, "errors": errors, "unfinished": unfinished,
            "model_calls": clock.snapshot(wall)}


def concurrent(packets, deadline: Deadline, run_seconds: float, limit: int, clock: ModelClock) -> dict[str, Any]:
    """Most paced 1080p30 streams sustained: doubling, then bisecting, while a run still fits."""
    cost = run_seconds + 10.0      # one run, usually: set-up, the paced run, the joins (at most 25 s more)
    runs: list[dict[str, Any]] = []
    lo, hi, n = 0, None, 1
    while n <= limit and deadline.left() >= cost:
        r = sustained(packets, n, run_seconds, clock)
        runs.append(r)
        if not r["ok"]:
            hi = n
            break
        lo, n = n, n * 2
    if hi is None and n > limit:
        hi = limit + 1
    while hi is not None and hi - lo > 1 and deadline.left() >= cost:
        mid = (lo + hi) // 2
        r = sustained(packets, mid, run_seconds, clock)
        runs.append(r)
        lo, hi = (mid, hi) if r["ok"] else (lo, mid)
    exact = hi is not None and hi - lo <= 1
    from facestream.engines.gpu_backend import gpu_plan

    where, label = _vision_label(gpu_plan().placements())
    return {"sustained_1080p30_streams": lo, "exact": exact,
            "note": "" if exact else f"at least {lo}: the section's time ran out before a run failed",
            "vision_ran": where, "streams_are": label, "runs": runs, "batching": clock.models.stats()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="", help="JSON result (default: benchmarks/results/gpu-<device>.json)")
    ap.add_argument("--budget", type=float, default=150.0, help="seconds for the whole run")
    ap.add_argument("--frames", type=int, default=150, help="1080p frames made from the clip (0: all of it)")
    ap.add_argument("--input-seconds", type=float, default=25.0)
    ap.add_argument("--decode-seconds", type=float, default=15.0)
    ap.add_argument("--pipeline-seconds", type=float, default=40.0)
    ap.add_argument("--run-seconds", type=float, default=6.0, help="length of each concurrency run")
    ap.add_argument("--max-streams", type=int, default=32)
    ap.add_argument("--skip-concurrency", action="store_true")
    args = ap.parse_args(argv)
    deadline = Deadline(args.budget)

    from facestream.engines.backend import probe_gpu
    from facestream.engines.gpu_backend import gpu_plan

    gpu = probe_gpu()
    slug = "".join(c if c.isalnum() else "-" for c in gpu.name.lower()).strip("-")
    out = Path(args.out) if args.out else (REPO / "benchmarks" / "results" / f"gpu-{slug}.json" if gpu.available
                                           else None)
    report = Report(out)
    report.data.update(date=time.strftime("%Y-%m-%dT%H:%M:%S%z"), host=platform.node(), args=vars(args))
    if not gpu.available:
        report.data["skipped"] = f"no GPU: {gpu.detail}"
        report.save()
        print(report.data["skipped"])
        return NO_GPU
    report.data.update(versions=versions(), plan=[vars(p) for p in gpu_plan().placements()], effects=EFFECTS)
    report.save()

    packets: list[tuple[bytes, int]] = []

    def make_input() -> dict[str, Any]:
        packets.extend(make_1080p(CLIP, args.frames, deadline.part(args.input_seconds)))
        return {"width": 1920, "height": 1080, "packets": len(packets), "source": f"{CLIP.name} upscaled"}

    report.section("input", make_input)
    if not packets:
        return 1
    decode = report.section("decode_only", lambda: decode_only(packets, deadline.part(args.decode_seconds)))
    clocks: list[ModelClock] = []

    def run_pipeline() -> dict[str, Any]:
        clocks.append(ModelClock())
        return pipeline(packets, deadline.part(args.pipeline_seconds), clocks[0])

    pipe = report.section("pipeline", run_pipeline)
    if decode.get("fps") and pipe.get("fps"):
        report.data["pipeline_over_decode"] = round(pipe["fps"] / decode["fps"], 3)
        report.data["goal_pipeline_over_decode"] = 0.8
    if clocks and not args.skip_concurrency:
        # what is left of the budget, less a margin for writing the result
        part = deadline.part(max(0.0, deadline.left() - 5.0))
        report.section("concurrency", lambda: concurrent(packets, part, args.run_seconds, args.max_streams, clocks[0]))
    report.save()
    print(json.dumps({k: report.data.get(k) for k in ("decode_only", "pipeline_over_decode")}, indent=2, default=str))
    if "fps" in pipe:
        calls = pipe["model_calls"]
        detector, mesh = (calls[m]["calls_per_s_busy"] for m in MODELS)
        print(f"pipeline: {pipe['fps']} fps, {pipe['fps_is']}; model calls take "
              f"{calls['share_of_wall_all_models']:.0%} of its time (detector {detector}/s, mesh {mesh}/s while busy)")
    if "concurrency" in report.data and "error" not in report.data["concurrency"]:
        c = report.data["concurrency"]
        print(f"concurrent 1080p30 streams sustained: {c['sustained_1080p30_streams']}"
              f"{'' if c['exact'] else ' (at least)'}, {c['streams_are']}")
    print(f"results written to {out}")
    return 1 if report.failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
