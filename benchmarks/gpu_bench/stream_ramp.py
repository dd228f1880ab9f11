"""How many paced 1080p30 sessions hold the latency goal: steps of N camera-like sessions at once,
N doubled and then bisected until the answer is within an eighth."""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from facestream.benchmarks.gpu_bench.config import FPS, P99_GOAL_MS, Scale
from facestream.benchmarks.gpu_bench.environment import gpu_load, gpu_memory, release_memory
from facestream.benchmarks.gpu_bench.report import Deadline
from facestream.benchmarks.gpu_bench.session import Session
from facestream.benchmarks.gpu_bench.stats import ms_summary, rounded
from facestream.engines.codec.base import Codec


@dataclass
class StreamRun:
    """What one paced session measured, filled in by its own thread."""

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
    """One step's figures over all its sessions; it holds when every frame was processed within the p99 goal."""
    latencies = [x for r in runs for x in r.latencies]
    expected = sum(r.expected for r in runs)
    processed = sum(r.processed for r in runs)
    errors = {i: r.error for i, r in enumerate(runs) if r.error}
    lat = ms_summary(latencies)
    holds = (not errors and not unfinished and processed == expected and lat["p99"] is not None
             and lat["p99"] <= P99_GOAL_MS)
    stages: dict[str, list[float]] = {}
    for r in runs:
        for k, v in r.stages.items():
            stages.setdefault(k, []).extend(v)
    return {"streams": n, "holds": holds, "latency_ms": lat, "frames_expected": expected,
            "frames_processed": processed, "frames_missing": expected - processed, "errors": errors,
            "unfinished": unfinished, "setup_s": rounded(setup, 2), "wall_s": rounded(wall, 2),
            "cpu_cores_busy": rounded(cores, 2), "gpu_sample": load, "memory_sample": memory,
            "stage_call_ms_mean": {k: rounded(float(np.mean(v)), 3) for k, v in sorted(stages.items())}}


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
