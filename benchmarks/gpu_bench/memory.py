"""GPU memory per session: what the first session and each further one cost, to size how many
sessions fit a device."""
from __future__ import annotations

import time
from typing import Any

from facestream.benchmarks.gpu_bench.environment import gpu_memory, release_memory
from facestream.benchmarks.gpu_bench.report import Deadline
from facestream.benchmarks.gpu_bench.session import Session, device_stream, synchronize
from facestream.benchmarks.gpu_bench.stats import rounded
from facestream.engines.codec.base import Codec


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
            synchronize(device_stream(s.backend))
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
    return {k: rounded((after[k] - v) / sessions) if v is not None and after[k] is not None else None
            for k, v in before.items() if k != "sessions"}
