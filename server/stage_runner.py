"""Blocking stage calls (on the server's worker threads or in a pipeline process), each watched by the
stage timeout.

A running call cannot be stopped: a call past --stage-timeout-seconds ends its session and is left to
finish on its own, with the session's codecs (closing them under a running call could crash the
process). `StuckCalls` counts such calls server-wide, since each one holds a worker.
"""
from __future__ import annotations

import asyncio
from concurrent.futures import Future
from typing import Callable, Iterable, TypeVar

from .errors import NoFreeWorker, StageStuck
from .metrics import Metrics

T = TypeVar("T")


class StuckCalls:
    """The server's stage calls past --stage-timeout-seconds that have not returned yet."""

    def __init__(self, metrics: Metrics | None = None) -> None:
        self._metrics = metrics
        self._calls: set[Future] = set()
        # Called when a call is counted or returns (on its worker thread then).
        self.on_change: Callable[[], None] = lambda: None

    def __len__(self) -> int:
        return len(self._calls)

    def add(self, call: Future) -> None:
        """Counts `call` (once) until it returns."""
        if call in self._calls or call.done():
            return
        self._calls.add(call)
        call.add_done_callback(self._returned)
        if self._metrics is not None:
            self._metrics.stuck_calls.inc()
        self.on_change()

    def _returned(self, call: Future) -> None:
        self._calls.discard(call)
        self.on_change()


class StageRunner:
    """Runs one session's stage calls and keeps track of them until they return."""

    def __init__(self, timeout: float, stuck: StuckCalls) -> None:
        # Seconds a call may take, from its submission; None: no limit.
        self._timeout = timeout if timeout > 0 else None
        self._stuck = stuck
        self._inflight: set[Future] = set()
        self.abandoned = False

    async def watch(self, what: str, future: Future[T]) -> T:
        """The result of a stage call already submitted (to a worker thread or a pipeline process).
        Cancelling the caller does not stop the call: calls are tracked until they return, and
        `settle` waits for them.

        A call not done in time ends the session instead of holding it, and the client, until their
        deadline: NoFreeWorker when it never got a worker, StageStuck when it is running. `what` names
        the call for the client."""
        self._inflight.add(future)
        future.add_done_callback(self._inflight.discard)
        result = asyncio.wrap_future(future)
        # asyncio.wait, not wait_for: wait_for (3.11) can swallow a cancellation that arrives as
        # the call finishes, and a stage task that misses its cancellation keeps the session open.
        try:
            done, _ = await asyncio.wait([result], timeout=self._timeout)
        except asyncio.CancelledError:
            future.cancel()  # a call still queued never runs for a session that is gone
            raise
        if done:
            return result.result()
        limit = self._timeout or 0.0
        if future.cancel():
            raise NoFreeWorker(what, limit)
        self._abandon([future])
        raise StageStuck(what, limit)

    def _abandon(self, calls: Iterable[Future]) -> None:
        self.abandoned = True
        for call in calls:
            self._stuck.add(call)

    async def settle(self) -> bool:
        """Waits (within the stage timeout) for the calls still running. Returns False when calls are left
        running past the timeout: the session's codecs are theirs then, and must not be closed."""
        if self._inflight and not self.abandoned:
            _, running = await asyncio.wait([asyncio.wrap_future(f) for f in list(self._inflight)],
                                            timeout=self._timeout)
            if running:
                self._abandon([f for f in list(self._inflight) if not f.done()])
        return not self.abandoned
