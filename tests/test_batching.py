"""Cross-session batching (engines/batching.py) with a host runner: runs on any machine."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from facestream.engines.batching import DEFAULT_BUDGET_MS, Batcher, padded_size, split_rows


class FakeRunner:
    """Doubles its inputs and records each batch it runs; each run costs a fixed time, like a
    kernel launch plus a sync. batch_sizes: the sizes it runs at (none: any)."""

    def __init__(self, max_batch: int = 8, cost: float = 0.003, batch_sizes: tuple[int, ...] = ()):
        self.max_batch, self.cost, self.batch_sizes = max_batch, cost, batch_sizes
        self.sizes: list[int] = []
        self.batches: list[np.ndarray] = []

    def run(self, batch):
        time.sleep(self.cost)
        self.sizes.append(len(batch))
        self.batches.append(batch.copy())
        return {"y": batch * 2}


def side_by_side(worker, calls: list[tuple]) -> None:
    """worker(*args) for each args in `calls`, each in its own thread, all at once; waits for them."""
    threads = [threading.Thread(target=worker, args=args) for args in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)

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

    side_by_side(worker, [(i,) for i in range(sessions)])
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

    side_by_side(worker, list(enumerate((3, 1, 2))))
    for i, rows in enumerate((3, 1, 2)):
        assert np.array_equal(results[i], 2 * (np.arange(rows * 3).reshape(rows, 3) + 100 * i))
    assert max(runner.sizes) <= 4 and sum(runner.sizes) == 6
    with pytest.raises(ValueError, match="1 to 4 rows"):
        b.run(np.zeros((5, 3), np.float32))


def _at_once(batcher: Batcher, sessions: int, rows: int = 1) -> dict[int, np.ndarray]:
    """Every session registers, then all call once together (as a detector or mesh call of the
    same frame time); returns each session's output. Session i's rows hold i + 1."""
    results: dict[int, np.ndarray] = {}
    registered = threading.Barrier(sessions)

    def worker(i):
        batcher.register()
        try:
            registered.wait(10)
            results[i] = batcher.run(np.full((rows, 3), i + 1, np.float32))["y"]
        finally:
            batcher.unregister()

    side_by_side(worker, [(i,) for i in range(sessions)])
    assert len(results) == sessions
    return results


def _sessions_in(batch: np.ndarray) -> list[int]:
    """The sessions whose rows a run held (padding rows are zeros)."""
    return sorted(int(v) - 1 for v in batch[:, 0] if v)


def test_concurrent_calls_share_one_run_padded_to_a_batch_size():
    # the mesh's runners run batches of 1 and 8: four sessions' calls are one run of 8 rows
    runner = FakeRunner(batch_sizes=(1, 8))
    b = Batcher(runner, budget_ms=2000)     # generous: the round is complete once all four called
    results = _at_once(b, sessions=4)
    assert runner.sizes == [8]
    assert _sessions_in(runner.batches[0]) == [0, 1, 2, 3]
    assert not runner.batches[0][4:].any()                  # padding rows
    for i, y in results.items():
        assert y.shape == (1, 3) and np.all(y == 2 * (i + 1))
    assert (b.stats.calls, b.stats.batches, b.stats.padding, b.stats.max_batch_seen) == (4, 1, 4, 4)


def test_more_calls_than_a_batch_run_full_batches_then_a_padded_one():
    runner = FakeRunner(batch_sizes=(1, 8))
    b = Batcher(runner, budget_ms=2000)
    results = _at_once(b, sessions=11)
    assert runner.sizes == [8, 8]
    first, second = (_sessions_in(x) for x in runner.batches)
    assert len(first) == 8 and len(second) == 3 and sorted(first + second) == list(range(11))
    assert all(np.all(y == 2 * (i + 1)) for i, y in results.items())
    assert b.stats.padding == 5


def test_a_runner_of_batch_1_only_gets_the_calls_unpadded():
    # the detectors: batch 1 only, larger batches run image by image inside the runner
    runner = FakeRunner(batch_sizes=(1,))
    b = Batcher(runner, budget_ms=2000)
    _at_once(b, sessions=3)
    assert runner.sizes == [3] and _sessions_in(runner.batches[0]) == [0, 1, 2]
    assert b.stats.padding == 0


def test_a_lone_call_runs_at_batch_size_1():
    runner = FakeRunner(batch_sizes=(1, 8))
    b = Batcher(runner, budget_ms=2000)
    _at_once(b, sessions=1)
    assert runner.sizes == [1] and b.stats.padding == 0


def test_calls_of_several_rows_are_padded_as_one_batch():
    runner = FakeRunner(batch_sizes=(1, 8))
    b = Batcher(runner, budget_ms=2000)
    results = _at_once(b, sessions=2, rows=2)
    assert runner.sizes == [8] and _sessions_in(runner.batches[0]) == [0, 0, 1, 1]
    assert all(y.shape == (2, 3) and np.all(y == 2 * (i + 1)) for i, y in results.items())


def test_padded_size_and_split_rows():
    assert [padded_size(n, (1, 8)) for n in (1, 2, 5, 8)] == [1, 8, 8, 8]
    assert padded_size(3, (1,)) == 3 and padded_size(3, ()) == 3
    assert split_rows(3, (1, 8)) == [(0, 3, 8)]
    assert split_rows(3, (1,)) == [(0, 1, 1), (1, 1, 1), (2, 1, 1)]
    assert split_rows(10, (1, 8)) == [(0, 8, 8), (8, 2, 8)]
    assert split_rows(1, (1, 8)) == [(0, 1, 1)]


def test_a_new_budget_applies_to_the_next_round():
    runner = FakeRunner(cost=0.0)
    b = Batcher(runner, budget_ms=60_000)
    b.register()
    b.register()            # a second session that does not call: the round waits for it...
    b.set_budget(0)         # ...unless the budget says not to wait
    t = time.perf_counter()
    b.run(np.zeros((1, 3), np.float32))
    assert time.perf_counter() - t < 10
    with pytest.raises(ValueError, match="milliseconds >= 0"):
        b.set_budget(-1)


def test_the_budget_comes_from_the_server_config():
    from facestream.engines.vision.gpu import shared_models
    from facestream.server.config import ConfigurationError, ServerConfig, load

    assert load(env={}).batch_budget_ms == DEFAULT_BUDGET_MS
    config = load(env={"FACESTREAM_BATCH_BUDGET_MS": "7.5"})
    assert config.batch_budget_ms == 7.5
    # the server hands its budget over whichever call made the process's models
    models = shared_models()
    assert shared_models(budget_ms=config.batch_budget_ms) is models and models.budget_ms == 7.5
    shared_models(budget_ms=DEFAULT_BUDGET_MS)
    with pytest.raises(ConfigurationError, match="batch-budget-ms: the batch budget must be"):
        ServerConfig(batch_budget_ms=-2.0)
    with pytest.raises(ConfigurationError, match="FACESTREAM_BATCH_BUDGET_MS"):
        load(env={"FACESTREAM_BATCH_BUDGET_MS": "soon"})
