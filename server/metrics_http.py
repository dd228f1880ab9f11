"""The Prometheus endpoint: one thread running an event loop of its own, never a thread per connection.

Its own loop keeps scrapes answered while the server's loop is busy, and lets code on that loop
scrape synchronously. A scrape is one GET on a fresh connection. A connection must send its request within a few
seconds and gets one response. At most MAX_CONNECTIONS are open at a time; past that, the one
that has waited longest without sending its request is closed to make room, so connections left
idle (or half-open) cost a socket for a few seconds and cannot keep a scraper out.
"""
from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import Future

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

log = logging.getLogger("facestream.metrics")

MAX_CONNECTIONS = 256
# Seconds a connection has to send its request, and to take the response.
REQUEST_SECONDS = 5.0
_MAX_REQUEST_BYTES = 16 << 10
_PATHS = ("/metrics", "/")


def _response(status: str, body: bytes = b"", content_type: str = "text/plain; charset=utf-8",
              head: bool = False) -> bytes:
    lines = [f"HTTP/1.1 {status}", f"Content-Type: {content_type}", f"Content-Length: {len(body)}",
             "Connection: close", "", ""]
    return "\r\n".join(lines).encode() + (b"" if head else body)


class MetricsEndpoint:
    """GET /metrics (or /) answers with the registry in the Prometheus text format."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._open = 0
        # Connections still waiting for their request, oldest first (dicts keep insertion order).
        self._waiting: dict[asyncio.StreamWriter, None] = {}

    def start(self, host: str, port: int) -> int:
        """Listens on host:port; returns the bound port (OSError when it cannot listen)."""
        bound: Future[int] = Future()
        self._thread = threading.Thread(target=self._run, args=(host, port, bound), name="facestream-metrics",
                                        daemon=True)
        self._thread.start()
        return bound.result()

    def _run(self, host: str, port: int, bound: Future[int]) -> None:
        loop = self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            server = loop.run_until_complete(
                asyncio.start_server(self._serve, host, port, limit=_MAX_REQUEST_BYTES))
        except BaseException as exc:
            loop.close()
            bound.set_exception(exc)
            return
        bound.set_result(server.sockets[0].getsockname()[1])
        try:
            loop.run_forever()
        finally:
            server.close()
            connections = asyncio.all_tasks(loop)
            for task in connections:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*connections, return_exceptions=True))
            loop.close()

    def _answer(self, head: bytes) -> bytes:
        method, _, rest = head.decode("latin-1").partition(" ")
        path = rest.split(" ", 1)[0].split("?", 1)[0]
        if method not in ("GET", "HEAD"):
            return _response("405 Method Not Allowed")
        if path not in _PATHS:
            return _response("404 Not Found", b"metrics are at /metrics\n")
        return _response("200 OK", generate_latest(self._registry), CONTENT_TYPE_LATEST, head=method == "HEAD")

    def _make_room(self) -> bool:
        """Whether another connection may open, closing the longest idle one when all are taken."""
        if self._open < MAX_CONNECTIONS:
            return True
        if not self._waiting:
            return False
        oldest = next(iter(self._waiting))
        del self._waiting[oldest]
        oldest.transport.abort()
        return True

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self._make_room():
            writer.transport.abort()
            return
        self._open += 1
        self._waiting[writer] = None
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), REQUEST_SECONDS)
            self._waiting.pop(writer, None)
            writer.write(self._answer(head))
            writer.close()  # once the response is out
            await asyncio.wait_for(writer.wait_closed(), REQUEST_SECONDS)
        except (asyncio.TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        except Exception:
            log.exception("the metrics endpoint failed to answer a request")
        finally:
            self._open -= 1
            self._waiting.pop(writer, None)
            writer.transport.abort()  # a connection that did not take its response in time

    def close(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(REQUEST_SECONDS)
            self._loop = self._thread = None
