"""One pipeline process as the server sees it: the process, its connection and the calls in flight on it."""
from __future__ import annotations

import asyncio
import itertools
import multiprocessing
import threading
from concurrent.futures import Future
from typing import Any, Callable

from . import pipeline_process
from .config import ServerConfig
from .errors import PipelineProcessLost

# Seconds a new pipeline process may take to load and warm up its models, and an ended one to exit.
_START_SECONDS = 120.0
_EXIT_SECONDS = 5.0


def exit_text(code: int | None) -> str:
    """How a process ended, from its exit code, in words for logs and clients."""
    if code is None:
        return "its connection closed"
    return f"killed by signal {-code}" if code < 0 else f"exit code {code}"


class PipelineLink:
    """One pipeline process and its connection. Calls go out in order from the event loop, whose reader
    resolves their Futures from the replies as they come, and fails those left when the process ends."""

    def __init__(self, slot: int, config: ServerConfig, threads: int, on_lost: Callable[[PipelineLink], None]) -> None:
        ctx = multiprocessing.get_context("spawn")  # a fresh interpreter: no copy of the server's threads and locks
        self.slot = slot
        self._on_lost = on_lost
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=pipeline_process.main, args=(child, config, threads),
                                name=f"facestream-pipeline-{slot}", daemon=True)
        self.proc.start()
        child.close()
        self.sessions = 0
        self.alive = False
        self._lock = threading.Lock()
        self._numbers = itertools.count()
        self._calls: dict[int, tuple[Future, Callable[[Any], Any] | None]] = {}

    @property
    def pid(self) -> int:
        return self.proc.pid or 0

    def wait_ready(self) -> None:
        """Blocks until the process has loaded its models; raises PipelineProcessLost when it cannot."""
        try:
            message = self.conn.recv() if self.conn.poll(_START_SECONDS) else ("failed", "no answer")
        except (EOFError, OSError):
            self.proc.join(_EXIT_SECONDS)
            message = ("failed", f"it exited ({exit_text(self.proc.exitcode)}; its error is in the log above)")
        if message[0] != "ready":
            self.stop()
            raise PipelineProcessLost(f"pipeline process {self.slot + 1} did not start: {message[1]}")

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Takes calls from now on, their replies read on `loop` (called on its thread). Reading there, not on
        a thread of its own, saves each reply a hand-over of the interpreter lock to the busy event loop."""
        self.alive = True
        loop.add_reader(self.conn.fileno(), self._replies, loop)

    def call(self, name: str, sid: str, *args: Any, then: Callable[[Any], Any] | None = None) -> Future:
        """Sends the call; its Future (already running: a sent call cannot be taken back) gets the reply,
        passed through `then`."""
        future: Future = Future()
        future.set_running_or_notify_cancel()
        with self._lock:
            if self.alive:
                number = next(self._numbers)
                self._calls[number] = (future, then)
                try:
                    self.conn.send((number, name, sid, args))
                    return future
                except (OSError, ValueError):
                    self._calls.pop(number)
        future.set_exception(self.lost_error())
        return future

    def lost_error(self) -> PipelineProcessLost:
        return PipelineProcessLost(
            f"the pipeline process running this session (pid {self.pid}) stopped ({exit_text(self.proc.exitcode)}); "
            "its frames in flight are lost: open a new session to continue, and report it with the stream's "
            "packets if it happens again with the same stream"
        )

    def _replies(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            while self.conn.poll():
                number, ok, value = self.conn.recv()
                future, then = self._calls.pop(number)
                try:
                    if not ok:
                        raise value
                    future.set_result(then(value) if then else value)
                except Exception as exc:
                    future.set_exception(exc)
        except (EOFError, OSError):
            loop.remove_reader(self.conn.fileno())
            with self._lock:
                self.alive = False
            loop.run_in_executor(None, self._ended)

    def _ended(self) -> None:
        """After the connection closed (on a thread: waiting for the exit code blocks): fails the calls left."""
        self.proc.join(_EXIT_SECONDS)
        error = self.lost_error()
        with self._lock:
            left = list(self._calls.values())
            self._calls.clear()
        for future, _ in left:
            future.set_exception(error)
        self._on_lost(self)

    def stop(self) -> None:
        """Asks the process to end, then kills it if it has not within a few seconds (a call stuck in it)."""
        with self._lock:
            self.alive = False
            try:
                self.conn.send(None)
            except (OSError, ValueError):
                pass
        self.proc.join(_EXIT_SECONDS)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join(_EXIT_SECONDS)
        self.conn.close()
