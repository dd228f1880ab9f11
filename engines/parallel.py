"""One pool for per-face work inside a frame (meshes, effects), shared by all sessions.

ONNX Runtime, OpenCV, NumPy's array loops and the compiled effects release the GIL, so the faces of
one frame can be worked on side by side: a frame with several faces comes out sooner for the same
total work. That pays only while cores are idle. When other frames' faces already hold the pool's
threads, queueing behind them would make every frame wait for the others (and time-slicing the
cores among more threads than there are makes them all later): the caller then works through its
faces itself, one after the other.
"""
from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


class FacePool:
    """`map` over the faces of a frame: the caller takes one share, idle pool threads the others."""

    def __init__(self, workers: int) -> None:
        self._workers = workers
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="face")
        self._lock = threading.Lock()
        self._busy = 0

    def map(self, fn: Callable[[Any], T], items: Iterable[Any]) -> list[T]:
        """[fn(x) for x in items], in order; as many items as there are idle pool threads run beside the
        caller, which runs the rest."""
        work = list(items)
        with self._lock:
            aside = max(0, min(self._workers - self._busy, len(work) - 1))
            self._busy += aside
        futures = [self._executor.submit(self._run, fn, x) for x in work[:aside]]
        here = [fn(x) for x in work[aside:]]
        return [f.result() for f in futures] + here

    def _run(self, fn: Callable[[Any], T], x: Any) -> T:
        try:
            return fn(x)
        finally:
            with self._lock:
                self._busy -= 1


@functools.cache
def face_pool() -> FacePool:
    return FacePool(os.cpu_count() or 1)
