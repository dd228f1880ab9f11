"""Cross-session batching of model calls on the GPU.

Every session's vision stage calls `Batcher.run(x, ready)` from its own worker thread with model
inputs on the device (`x`, shape (n, 3, S, S), usually n = 1) and a CUDA event recorded on the
session's stream after the inputs were written. The first caller of a round becomes its leader:
it waits up to `budget_ms` for calls from the other active sessions, but never longer than until
every active session has a call in the round or the batch is full. The leader then gathers the
round's inputs into one batch (`gather`: on the device, each input copied once its event has
passed), padded to the smallest of the runner's fixed batch sizes that holds them (a runner with
CUDA graphs or engines per batch size runs only those), runs the model once on it and hands each
caller its rows of the outputs (host NumPy arrays); the padding rows' outputs are dropped. A lone
session never waits: with one active session a call runs at once.

The budget is the server's --batch-budget-ms (server/config.py), handed over when the process's
models are made (vision/gpu.py: shared_models); nothing here reads the environment.

The runner is any model runner with a batch limit and batch sizes (`BatchRunner`); the batcher
itself touches no device API, so it is tested on the CPU with host arrays and the default `gather`.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

# How long a round's leader waits for the other sessions' calls, in milliseconds (a small share
# of the 33 ms a frame lasts at 30 fps).
DEFAULT_BUDGET_MS = 2.0


class BatchRunner(Protocol):
    """One model on a batch of inputs: (n, 3, S, S) with n <= max_batch in, every output with n rows out.

    batch_sizes: the sizes it runs a batch at in one go (CUDA graphs, engines); a batch of another
    size is padded up to the next one by the batcher, or, past the largest, split by the runner.
    """

    max_batch: int
    batch_sizes: tuple[int, ...]

    def run(self, batch: Any) -> dict[str, np.ndarray]: ...


# [(x, ready), ...] and the batch's rows (>= the inputs' rows: the rest is padding) -> the batch
Gather = Callable[[Sequence[tuple[Any, Any]], int], Any]


def padded_size(rows: int, sizes: Sequence[int]) -> int:
    """The batch `rows` rows run in: the smallest of `sizes` that holds them, else `rows` itself."""
    return min((s for s in sizes if s >= rows), default=rows)


def split_rows(rows: int, sizes: Sequence[int]) -> list[tuple[int, int, int]]:
    """(start, rows, batch size) pieces that run `rows` rows at the fixed batch `sizes`: the largest
    size while more rows are left than it holds, then the smallest size that holds the rest."""
    pieces = []
    start = 0
    while start < rows:
        size = min((s for s in sizes if s >= rows - start), default=max(sizes))
        take = min(size, rows - start)
        pieces.append((start, take, size))
        start += take
    return pieces


def check_budget(budget_ms: float) -> float:
    """`budget_ms`, or ValueError saying what a batching budget must be."""
    if not 0.0 <= budget_ms < float("inf"):
        raise ValueError(f"the batch budget must be a number of milliseconds >= 0 (e.g. {DEFAULT_BUDGET_MS}), "
                         f"not {budget_ms!r}")
    return budget_ms


def concatenate(items: Sequence[tuple[Any, Any]], rows: int) -> np.ndarray:
    """Host inputs in one batch of `rows` rows, zeros after the inputs (their ready events are
    None: host arrays are ready)."""
    batch = np.concatenate([x for x, _ in items])
    if rows > len(batch):
        batch = np.concatenate([batch, np.zeros((rows - len(batch), *batch.shape[1:]), batch.dtype)])
    return batch


@dataclass
class _Request:
    x: Any
    ready: Any
    done: threading.Event = field(default_factory=threading.Event)
    result: dict | None = None
    error: BaseException | None = None

    @property
    def rows(self) -> int:
        return len(self.x)


@dataclass
class BatchStats:
    calls: int = 0           # rows run
    batches: int = 0         # model runs
    max_batch_seen: int = 0  # most rows of calls in one run
    padding: int = 0         # rows run only to fill a batch size

    @property
    def mean_batch(self) -> float:
        return self.calls / self.batches if self.batches else 0.0


class Batcher:
    """Runs the calls of concurrent sessions on `runner` in shared batches.

    gather: builds a round's batch from its [(x, ready), ...] and the padded row count (default:
    host arrays concatenated). budget_ms: the most a round's leader waits for the other sessions
    (DEFAULT_BUDGET_MS).
    """

    def __init__(self, runner: BatchRunner, gather: Gather = concatenate,
                 budget_ms: float = DEFAULT_BUDGET_MS) -> None:
        self.runner = runner
        self.gather = gather
        self.budget = 0.0
        self.set_budget(budget_ms)
        self._cond = threading.Condition()
        self._pending: list[_Request] = []
        self._leader = False
        self._active = 0
        self.stats = BatchStats()

    def set_budget(self, budget_ms: float) -> None:
        """How long later rounds' leaders wait for the other sessions, in milliseconds."""
        self.budget = check_budget(budget_ms) / 1000.0

    # sessions announce themselves so that a lone session is never held back
    def register(self) -> None:
        with self._cond:
            self._active += 1

    def unregister(self) -> None:
        with self._cond:
            self._active = max(0, self._active - 1)
            self._cond.notify_all()

    def run(self, x, ready=None) -> dict[str, np.ndarray]:
        """Outputs for the rows of `x` (each output with len(x) rows); blocks until done."""
        req = _Request(x, ready)
        if not 0 < req.rows <= self.runner.max_batch:
            raise ValueError(f"a call takes 1 to {self.runner.max_batch} rows, not {req.rows}")
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
        assert req.result is not None
        return req.result

    def _round_ready(self) -> bool:
        """Every active session has a call in the round, or the batch is full."""
        return (len(self._pending) >= max(self._active, 1)
                or sum(r.rows for r in self._pending) >= self.runner.max_batch)

    def _take(self) -> list[_Request]:
        """The oldest pending calls that fit in one batch."""
        n = rows = 0
        while n < len(self._pending) and rows + self._pending[n].rows <= self.runner.max_batch:
            rows += self._pending[n].rows
            n += 1
        batch = self._pending[:n]
        del self._pending[:n]
        return batch

    def _lead(self, req: _Request) -> None:
        """Runs rounds (lock held while waiting, released while the model runs) until `req` is done."""
        deadline = time.perf_counter() + self.budget
        while not req.done.is_set():
            while not self._round_ready():
                left = deadline - time.perf_counter()
                if left <= 0:
                    break
                self._cond.wait(left)
            batch = self._take()
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
        n = sum(r.rows for r in batch)
        rows = padded_size(n, self.runner.batch_sizes)
        out = self.runner.run(self.gather([(r.x, r.ready) for r in batch], rows))
        self.stats.calls += n
        self.stats.batches += 1
        self.stats.max_batch_seen = max(self.stats.max_batch_seen, n)
        self.stats.padding += rows - n
        start = 0
        for r in batch:
            r.result = {k: v[start:start + r.rows] for k, v in out.items()}
            start += r.rows
