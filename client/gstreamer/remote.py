"""A live session fed from threads that do not run asyncio: GStreamer's streaming threads.

The session runs on an event loop in a thread of its own. Frames, settings and the end are queued
to it in the order they are given, so an update applies from the next frame sent; each result, and
how the session ended, is handed to a callback on that thread (callbacks must not call `close`).
"""
from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Mapping

import grpc

from facestream.proto import pb

from ..api import FaceStreamClient, FaceStreamError
from ..live import LiveResult, LiveSession

Request = Callable[[LiveSession], Awaitable[object]]


class RemoteSession:
    """One `LiveSession` on its own event loop thread; `start` it, `send` frames, `end`, then `close`."""

    def __init__(self, target: str, config: pb.SessionConfig, *, on_result: Callable[[LiveResult], None],
                 on_end: Callable[[FaceStreamError | None], None], api_key: str = "") -> None:
        self.target = target
        self._config = config
        self._metadata = (("x-api-key", api_key),) if api_key else ()
        self._on_result = on_result
        self._on_end = on_end
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="facestream-session", daemon=True)
        self._queue: asyncio.Queue[Request] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._client: FaceStreamClient | None = None
        self._live: LiveSession | None = None
        self._closed = False
        self.ended = threading.Event()   # set once the session is over (results all handed on, or failed)
        self.stats: pb.SessionStats | None = None   # the server's account of the session, once it has ended

    def start(self, timeout: float) -> pb.SessionStarted:
        """Connects and starts the session; raises FaceStreamError with the server's reason, or
        DEADLINE_EXCEEDED when it does not answer within `timeout` seconds."""
        self._thread.start()
        return asyncio.run_coroutine_threadsafe(self._open(timeout), self._loop).result()

    async def _open(self, timeout: float) -> pb.SessionStarted:
        self._client = FaceStreamClient(self.target, metadata=self._metadata)
        self._live = self._client.live(self._config)
        try:
            started = await asyncio.wait_for(self._live.start(), timeout)
        except TimeoutError:
            raise FaceStreamError(grpc.StatusCode.DEADLINE_EXCEEDED, f"no answer within {timeout:g} s") from None
        self._tasks = [asyncio.create_task(self._write(self._live)), asyncio.create_task(self._read(self._live))]
        return started

    def _put(self, request: Request) -> None:
        if not self._closed:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, request)

    def send(self, data: bytes, pts: int) -> None:
        self._put(lambda live: live.send(data, pts))

    def update_effects(self, effects: Mapping[str, float]) -> None:
        """New settings from the next frame sent on; frames acknowledge them in `effects_version`."""
        self._put(lambda live: live.update_effects(effects))

    def end(self) -> None:
        """No more frames: the results still due arrive, then `on_end(None)`."""
        self._put(lambda live: live.end())

    async def _write(self, live: LiveSession) -> None:
        try:
            while True:
                request = await self._queue.get()
                await request(live)
        except FaceStreamError:
            pass  # the stream has ended; the reader reports why

    async def _read(self, live: LiveSession) -> None:
        try:
            async for result in live.results():
                self._on_result(result)
        except FaceStreamError as exc:
            self.ended.set()
            self._on_end(exc)
            return
        self.stats = live.stats
        self.ended.set()
        self._on_end(None)

    async def _shutdown(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._live is not None:
            await self._live.close()
        if self._client is not None:
            await self._client.close()
        # what gRPC left behind on this loop (the call's status watcher) ends with it
        rest = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in rest:
            task.cancel()
        await asyncio.gather(*rest, return_exceptions=True)

    def close(self, timeout: float = 10.0) -> None:
        """Ends the session at once (results still due are not handed on) and stops its thread."""
        if self._closed:
            return
        self._closed = True
        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(timeout)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout)
        if not self._thread.is_alive():
            self._loop.close()
