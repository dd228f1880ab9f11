"""How a stream ends when something goes wrong: every internal error's gRPC status, in one table.

Code that finds a problem raises the error that names it (a codec's CodecError, the plan's
ConfigError, the stage runner's StageStuck, ...); `as_session_error` turns it into the status and
message the client gets. A SessionError is already a status: the checks of the protocol and of the
limits raise it directly.
"""
from __future__ import annotations

import asyncio
import logging

import grpc

from facestream.engines.backend import BackendUnavailable
from facestream.engines.codec.base import CodecError
from facestream.engines.pipeline import FrameTooLarge

from .plan import ConfigError, OverLimit
from .text import MAX_MESSAGE, clip

log = logging.getLogger("facestream.session")


class SessionError(Exception):
    """Ends the stream with `code` and a message for the client (cut to text.MAX_MESSAGE characters: it
    travels as metadata, and may echo what the client sent)."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        message = clip(message, MAX_MESSAGE)
        super().__init__(message)
        self.code = code
        self.message = message


class CallEnded(Exception):
    """A response could not be written because the call is over: the client cancelled or went away."""


class StageStuck(Exception):
    """A stage call still running after --stage-timeout-seconds (a codec stuck on a crafted stream, say)."""

    def __init__(self, what: str, limit: float) -> None:
        super().__init__(
            f"{what} took longer than {limit:g} seconds (this server's --stage-timeout-seconds) and the "
            "session was ended; if the stream plays elsewhere, report it together with its packets"
        )


class NoFreeWorker(Exception):
    """A stage call that waited --stage-timeout-seconds without getting a worker: the server is overloaded."""

    def __init__(self, what: str, limit: float) -> None:
        super().__init__(
            f"{what} waited {limit:g} seconds for a free worker: this server is overloaded; "
            "retry later or use another server"
        )


class PipelineProcessLost(Exception):
    """The pipeline process running a session stopped (killed, or crashed in a codec or a model)."""


# Each internal error, most specific first, and the status it ends the stream with; the message is the error's own.
STATUS: tuple[tuple[type[Exception], grpc.StatusCode], ...] = (
    (OverLimit, grpc.StatusCode.RESOURCE_EXHAUSTED),          # a config over this server's limits
    (ConfigError, grpc.StatusCode.INVALID_ARGUMENT),          # a config or effects update it cannot serve
    (FrameTooLarge, grpc.StatusCode.RESOURCE_EXHAUSTED),      # a decoded frame over the size limit
    (CodecError, grpc.StatusCode.INVALID_ARGUMENT),           # a stream the codecs reject
    (BackendUnavailable, grpc.StatusCode.FAILED_PRECONDITION),  # a backend this host cannot run
    (NoFreeWorker, grpc.StatusCode.UNAVAILABLE),
    (PipelineProcessLost, grpc.StatusCode.INTERNAL),
    (StageStuck, grpc.StatusCode.INTERNAL),
)


def as_session_error(exc: BaseException, call_ended: bool = False) -> SessionError:
    """The status and message a stream ends with because of `exc`.

    `call_ended`: the call was already over when `exc` came (a write failed under a client that went away).
    Errors that are not in the table are bugs: they are logged with their traceback and end the stream
    with INTERNAL.
    """
    if call_ended or isinstance(exc, CallEnded):
        return SessionError(grpc.StatusCode.CANCELLED, f"the call ended: {exc!r}")
    if isinstance(exc, SessionError):
        return exc
    if isinstance(exc, asyncio.CancelledError):
        return SessionError(grpc.StatusCode.CANCELLED, "the client went away")
    for kind, code in STATUS:
        if isinstance(exc, kind):
            return SessionError(code, str(exc))
    log.error("session failed", exc_info=exc)
    return SessionError(grpc.StatusCode.INTERNAL, f"internal error while processing the stream: {exc!r}")
