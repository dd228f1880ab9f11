"""Cross-session batching (engines/batching.py) with a host runner: runs on any machine."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from facestream.engines.batching import Batcher


class FakeRunner:
    """Doubles its inputs; each run costs a fixed time, like a kernel launch plus a sync."""

    def __init__(self, max_batch: int = 8, cost: float = 0.003):
        self.max_batch, self.cost = max_batch, cost
        self.sizes: list[int] = []

    def run(self, batch):
        time.sleep(self.cost)
        self.sizes.append(len(batch))
        return {"y": batch * 2}


def _sessions(batcher: Batcher, sessions: int, calls: int):
    results: dict[int, list] = {i: [] for i in range(sessions)}

    def worker(i):
        batcher.register()
        try:
            for k in range(calls):
                x = np.full((1, 3), i * 1000 + k, np.float32)
                results[i].append(batcher.run(x)["y"])
        finally:
            batcher.unregister()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(sessions)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return results


def test_each_caller_gets_its_own_rows():
    runner = FakeRunner()
    results = _sessions(Batcher(runner, budget_ms=5), sessions=6, calls=20)
    for i, outs in results.items():
        assert len(outs) == 20
        for k, y in enumerate(outs):
            assert y.shape == (1, 3) and np.all(y == 2 * (i * 1000 + k))


def test_concurrent_sessions_share_runs():
    runner = FakeRunner()
    b = Batcher(runner, budget_ms=5)
    _sessions(b, sessions=8, calls=10)
    assert sum(runner.sizes) == 80
    assert len(runner.sizes) < 40, runner.sizes          # far fewer runs than calls
    assert b.stats.max_batch_seen > 1


def test_lone_session_does_not_wait_for_the_budget():
    runner = FakeRunner(cost=0.0)
    b = Batcher(runner, budget_ms=200)
    t = time.perf_counter()
    _sessions(b, sessions=1, calls=5)
    assert time.perf_counter() - t < 0.5
    assert runner.sizes == [1] * 5


def test_batches_never_exceed_the_runner_limit():
    runner = FakeRunner(max_batch=3)
    _sessions(Batcher(runner, budget_ms=5), sessions=7, calls=6)
    assert max(runner.sizes) <= 3 and sum(runner.sizes) == 42


def test_errors_reach_every_caller_of_the_batch():
    class Broken(FakeRunner):
        def run(self, batch):
            raise RuntimeError("engine failed")

    b = Batcher(Broken(), budget_ms=1)
    b.register()
    try:
        b.run(np.zeros((1, 3), np.float32))
    except RuntimeError as exc:
        assert "engine failed" in str(exc)
    else:
        raise AssertionError("no error")


def test_calls_of_several_rows_get_their_rows():
    runner = FakeRunner(max_batch=4)
    b = Batcher(runner, budget_ms=5)
    results: list = [None] * 3

    def worker(i, rows):
        b.register()
        try:
            results[i] = b.run(np.arange(rows * 3, dtype=np.float32).reshape(rows, 3) + 100 * i)["y"]
        finally:
            b.unregister()

    threads = [threading.Thread(target=worker, args=(i, rows)) for i, rows in enumerate((3, 1, 2))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    for i, rows in enumerate((3, 1, 2)):
        assert np.array_equal(results[i], 2 * (np.arange(rows * 3).reshape(rows, 3) + 100 * i))
    assert max(runner.sizes) <= 4 and sum(runner.sizes) == 6
    with pytest.raises(ValueError, match="1 to 4 rows"):
        b.run(np.zeros((5, 3), np.float32))
