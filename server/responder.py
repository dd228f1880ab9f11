"""A stream's responses on their way to the client, none of them waiting on it without end.

A write waits while HTTP/2 flow control holds it back: the client is not reading. A write that
waits longer than its limit ends the session, and so does a session failure that comes while a
write waits (the idle limit on requests, the session length limit), so that a client that stops
reading cannot hold its slot. Such a write cannot be taken back: gRPC keeps it queued until the
client reads or goes away, and nothing can be written after it. The session's error then goes
out as the status alone, which the client gets once it reads.
"""
from __future__ import annotations

import asyncio

import grpc

from facestream.proto import pb

from .errors import CallEnded, SessionError


def _settled(write: asyncio.Future) -> None:
    """Takes the outcome of an abandoned write (it fails once the call ends)."""
    if not write.cancelled():
        write.exception()


class Responder:
    """Writes one stream's responses; `limit` is how long one write may wait on the client (0: no limit)."""

    def __init__(self, context: grpc.aio.ServicerContext, limit: float) -> None:
        self._context = context
        self._limit = limit if limit > 0 else None
        # A write still waits on the client: nothing more can be written.
        self.blocked = False

    async def send(self, response: pb.ProcessResponse, interrupt: asyncio.Future | None = None,
                   limit: float | None = None) -> None:
        """Writes `response` within `limit` seconds (default: the stream's limit).

        Raises CallEnded when the call is over, `interrupt`'s result (a SessionError) when it comes while
        the write waits, and SessionError (DEADLINE_EXCEEDED) when the write waits past the limit."""
        limit = self._limit if limit is None else limit
        write = asyncio.ensure_future(self._context.write(response))
        waits = [write] if interrupt is None else [write, interrupt]
        try:
            await asyncio.wait(waits, timeout=limit, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            write.cancel()
            raise
        if write.done():
            if (exc := write.exception()) is not None:
                raise CallEnded(repr(exc)) from exc
            return
        self.blocked = True
        write.add_done_callback(_settled)
        if interrupt is not None and interrupt.done():
            raise interrupt.result()
        raise SessionError(
            grpc.StatusCode.DEADLINE_EXCEEDED,
            f"the client read none of the server's responses for {limit:g} seconds (this server's idle limit); "
            "the session was ended to free its slot: read the responses as they come",
        )
