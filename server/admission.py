"""Which new streams the server takes, and the running sessions that count against its limits."""
from __future__ import annotations

import asyncio
from collections import Counter
from typing import Callable

import grpc

from facestream.proto import pb

from .auth import ANONYMOUS, Principal
from .config import ServerConfig
from .errors import SessionError
from .session import Session
from .stage_runner import StuckCalls
from .wire import Oversized, Undecodable


class SessionSlots:
    """The running sessions, by ID and by caller (for the per-key quotas); `idle` is set while there are none.

    New sessions are refused while the models load, while the server drains, while stuck stage calls
    hold half of the workers, and past the session limits."""

    def __init__(self, config: ServerConfig, stuck: StuckCalls) -> None:
        self.config = config
        self.stuck = stuck
        self.running: dict[str, Session] = {}
        self._per_caller: Counter[str] = Counter()
        # Set once the models are verified and warmed up; until then sessions get UNAVAILABLE.
        self.ready = False
        # Set on SIGTERM: running sessions finish, new ones get UNAVAILABLE.
        self.draining = False
        self.idle = asyncio.Event()
        self.idle.set()
        self._stuck_limit = max(1, config.worker_threads // 2)
        # Called when a session starts or ends (readiness follows `taking`).
        self.on_change: Callable[[], None] = lambda: None

    @property
    def taking(self) -> bool:
        """Whether a new session would be admitted now (quotas per caller aside)."""
        return (self.ready and not self.draining and len(self.running) < self.config.max_sessions
                and len(self.stuck) < self._stuck_limit)

    def _check_server(self) -> None:
        if self.draining:
            raise SessionError(
                grpc.StatusCode.UNAVAILABLE,
                "the server is shutting down and takes no new sessions; reconnect (to another instance) and retry",
            )
        if not self.ready:
            raise SessionError(
                grpc.StatusCode.UNAVAILABLE, "the server is still loading its models; retry in a few seconds"
            )

    def _check_capacity(self, who: Principal) -> None:
        if len(self.running) >= self.config.max_sessions:
            raise SessionError(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"this server is at its limit of {self.config.max_sessions} concurrent sessions; "
                "retry in a few seconds or use another server",
            )
        quota = 0 if who is ANONYMOUS else who.max_sessions or self.config.max_sessions_per_key
        if quota and self._per_caller[who.name] >= quota:
            raise SessionError(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"{who.name!r} is at its quota of {quota} concurrent sessions; end one first, "
                "or ask the operator for a higher quota",
            )

    def admit(self, first: pb.ProcessRequest | Undecodable, who: Principal) -> pb.SessionConfig:
        """The config of a stream the server takes now; raises SessionError saying why not."""
        self._check_server()
        if isinstance(first, Oversized):
            raise SessionError(grpc.StatusCode.INVALID_ARGUMENT, f"the first message is {first.error}; send a "
                               "SessionConfig first (with its effects, per-face entries and label it is a few KiB)")
        if isinstance(first, Undecodable):
            raise SessionError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"the first message ({first.size} bytes) is not a valid ProcessRequest protobuf ({first.error}); "
                "send a SessionConfig first",
            )
        if len(self.stuck) >= self._stuck_limit:
            raise SessionError(
                grpc.StatusCode.UNAVAILABLE,
                f"{len(self.stuck)} stage calls on this server are stuck (see its log) and hold half of its "
                "worker threads; it takes no new sessions until they return or it is restarted: use another server",
            )
        if first.WhichOneof("msg") != "config":
            raise SessionError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"the first message must be a SessionConfig (got {first.WhichOneof('msg') or 'an empty request'}); "
                "send config first, then packets",
            )
        self._check_capacity(who)
        return first.config

    def take(self, session: Session, who: Principal) -> None:
        self.running[session.id] = session
        self._per_caller[who.name] += 1
        self.idle.clear()
        self.on_change()

    def free(self, session: Session, who: Principal) -> None:
        self.running.pop(session.id, None)
        self._per_caller[who.name] -= 1
        if self._per_caller[who.name] <= 0:
            del self._per_caller[who.name]
        if not self.running:
            self.idle.set()
        self.on_change()
