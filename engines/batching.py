"""Cross-session batching of model calls on the GPU.

Every session's vision stage calls `Batcher.run(x, ready)` from its own worker thread with a
model input on the device (`x`, shape (1, 3, S, S)) and a CUDA event recorded on the session's
stream after the input was written. The first caller of a round becomes its leader: it waits up
to `budget_ms` (FACESTREAM_BATCH_BUDGET_MS, default 2 ms) for calls from the other active
sessions, but never longer than until every active session has a call in the round or the batch
is full. The leader then makes the model's stream wait on each input's event, gathers the inputs
into the runner's batch buffer, runs the model once per batch and hands each caller its rows of
the outputs (host NumPy arrays). A lone session never waits: with one active session a call runs
at once.

Runners (`engines.vision.gpu`) implement `max_batch`, `gather([(x, ready), ...])` (copy the
inputs into the batch buffer, ordered after each `ready` event) and `run(n) -> dict[name,
ndarray with n rows]`. The batcher itself touches no device API, so it is tested on the CPU.
"""
from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field

import numpy as np

DEFAULT_BUDGET_MS = float(os.environ.get("FACESTREAM_BATCH_BUDGET_MS", "2.0"))


@dataclass
class _Request:
    x: object
    ready: object
    done: threading.Event = field(default_factory=threading.Event)
    result: dict | None = None
    error: BaseException | None = None


@dataclass
class BatchStats:
    calls: int = 0
    batches: int = 0
    max_batch_seen: int = 0

    @property
    def mean_batch(self) -> float:
        return self.calls / self.batches if self.batches else 0.0


class Batcher:
    def __init__(self, runner, budget_ms: float = DEFAULT_BUDGET_MS) -> None:
        self.runner = runner
        self.budget = max(0.0, budget_ms) / 1000.0
        self._cond = threading.Condition()
        self._pending: list[_Request] = []
        self._leader = False
        self._active = 0
        self.stats = BatchStats()

    # sessions announce themselves so that a lone session is never held back
    def register(self) -> None:
        with self._cond:
            self._active += 1

    def unregister(self) -> None:
        with self._cond:
            self._active = max(0, self._active - 1)
            self._cond.notify_all()

    def run(self, x, ready=None) -> dict[str, np.ndarray]:
        """Outputs for one input (each with a leading batch dimension of 1); blocks until done."""
        req = _Request(x, ready)
        with self._cond:
            self._pending.append(req)
            self._cond.notify_all()
            while not req.done.is_set() and self._leader:
                self._cond.wait()
            if not req.done.is_set():
                self._leader = True
                try:
                    self._lead(req)
                finally:
                    self._leader = False
                    self._cond.notify_all()
        if req.error is not None:
            raise req.error
        return req.result

    def _lead(self, req: _Request) -> None:
        """Runs rounds (lock held while gathering, released while the model runs) until `req` is done."""
        deadline = time.perf_counter() + self.budget
        while not req.done.is_set():
            while True:
                want = min(max(self._active, 1), self.runner.max_batch)
                left = deadline - time.perf_counter()
                if len(self._pending) >= want or left <= 0:
                    break
                self._cond.wait(left)
            batch = self._pending[: self.runner.max_batch]
            del self._pending[: len(batch)]
            self._cond.release()
            try:
                self._execute(batch)
            except BaseException as exc:
                for r in batch:
                    r.error = exc
            finally:
                self._cond.acquire()
            for r in batch:
                r.done.set()
            self._cond.notify_all()
            deadline = time.perf_counter()      # overflow rounds go at once

    def _execute(self, batch: list[_Request]) -> None:
        n = len(batch)
        self.runner.gather([(r.x, r.ready) for r in batch])
        out = self.runner.run(n)
        self.stats.calls += n
        self.stats.batches += 1
        self.stats.max_batch_seen = max(self.stats.max_batch_seen, n)
        for i, r in enumerate(batch):
            r.result = {k: v[i:i + 1] for k, v in out.items()}
