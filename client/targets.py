"""The servers a client opens sessions on, and opening a session on the first of them that takes it.

Each target gets its own channel, and each new session starts at the next target in turn, so
sessions spread over the servers; one refused (the server is loading, draining or full) is tried
on the others. A target may itself name several servers: a DNS name (`dns:///name:port`, a
Kubernetes headless Service) or an address list (`ipv4:10.0.0.1:50051,10.0.0.2:50051`); its
channel balances calls over them round robin. With health gating (used where a stream can move),
a channel sends no new session to a server whose health for the FaceStream service is not
SERVING, which it learns from the server's own health watch.
"""
from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import grpc

from facestream.proto import pb, rpc

from .protocol import SERVICE_NAME, FaceStreamError, start_session

# Codes of a start that another server may accept: loading, draining, full, unreachable.
REFUSED = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED)
# Schemes whose target names several addresses and may hold a comma.
_MULTI_ADDRESS = ("dns:", "ipv4:", "ipv6:")
_SINGLE_ADDRESS = ("unix:", "unix-abstract:", "vsock:")
# How gRPC words a pick refused because every server of the channel reported not SERVING.
_UNHEALTHY = "backend unhealthy"
_DEFAULT_OPTIONS: tuple[tuple[str, Any], ...] = (
    ("grpc.max_receive_message_length", 64 << 20),
    ("grpc.max_send_message_length", 64 << 20),
    # A server that vanishes without closing its connections (a lost node) is noticed within 30 s;
    # the server accepts pings every 10 s.
    ("grpc.keepalive_time_ms", 20_000),
    ("grpc.keepalive_timeout_ms", 10_000),
)


def split_targets(target: str | Sequence[str]) -> list[str]:
    """["a:1", "b:2"] from a list or from "a:1,b:2"; an address-list URI ("ipv4:a:1,b:2") stays whole."""
    items = [target] if isinstance(target, str) else list(target)
    out: list[str] = []
    for item in items:
        if item.startswith(_MULTI_ADDRESS + _SINGLE_ADDRESS):
            out.append(item.strip())
        else:
            out += [part.strip() for part in item.split(",") if part.strip()]
    if not out:
        raise ValueError("no server address given")
    return out


def names_several_servers(targets: Sequence[str]) -> bool:
    """Whether the targets may reach more than one server (so a stream has somewhere to move)."""
    return len(targets) > 1 or any(t.startswith("dns:") or ("," in t and t.startswith(_MULTI_ADDRESS))
                                   for t in targets)


def channel_options(options: Sequence[tuple[str, Any]], health_gated: bool) -> list[tuple[str, Any]]:
    """The caller's options, plus defaults for what they leave out: message sizes, keepalive, and a
    service config with round-robin balancing (and, `health_gated`, health checking)."""
    given = {name for name, _ in options}
    config: dict[str, Any] = {"loadBalancingConfig": [{"round_robin": {}}]}
    if health_gated:
        config["healthCheckConfig"] = {"serviceName": SERVICE_NAME}
    defaults = list(_DEFAULT_OPTIONS)
    if "grpc.lb_policy_name" not in given:  # else the caller picked the balancing
        defaults.append(("grpc.service_config", json.dumps(config)))
    return [*[opt for opt in defaults if opt[0] not in given], *options]


@dataclass
class Endpoint:
    """One target: its channel and stub."""

    target: str
    channel: grpc.aio.Channel
    stub: rpc.FaceStreamStub


@dataclass
class Opened:
    """A session a server took: where it runs, its call, and what the server started."""

    endpoint: Endpoint
    call: Any
    started: pb.SessionStarted


def _reason(error: FaceStreamError) -> str:
    if _UNHEALTHY in error.message:
        return "not ready for new sessions (loading, draining or full)"
    return error.message


def refused(attempts: list[tuple[str, FaceStreamError]]) -> FaceStreamError:
    """One server's refusal as it came; several summed up, each with its reason."""
    if len(attempts) == 1:
        return attempts[0][1]
    codes = {error.code for _, error in attempts}
    code = grpc.StatusCode.RESOURCE_EXHAUSTED if codes == {grpc.StatusCode.RESOURCE_EXHAUSTED} \
        else grpc.StatusCode.UNAVAILABLE
    return FaceStreamError(code, "no server took the session: " + "; ".join(
        f"{target}: {error.code.name} {_reason(error)}" for target, error in attempts))


class Endpoints:
    """The client's servers, tried in turn; `close()` closes their channels."""

    def __init__(self, targets: Sequence[str], credentials: grpc.ChannelCredentials | None,
                 options: Sequence[tuple[str, Any]]) -> None:
        self.endpoints: list[Endpoint] = []
        for target in targets:
            if credentials is None:
                channel = grpc.aio.insecure_channel(target, options=options)
            else:
                channel = grpc.aio.secure_channel(target, credentials, options=options)
            self.endpoints.append(Endpoint(target, channel, rpc.FaceStreamStub(channel)))
        self._next = 0

    def rotation(self, last: Endpoint | None = None) -> Iterator[Endpoint]:
        """Every endpoint once, from the next in turn; `last` (a server that just failed) comes last."""
        start, self._next = self._next, self._next + 1
        order = [self.endpoints[(start + i) % len(self.endpoints)] for i in range(len(self.endpoints))]
        if last is not None and last in order:
            order.remove(last)
            order.append(last)
        return iter(order)

    async def open(self, config: pb.SessionConfig, metadata: Sequence[tuple[str, str]],
                   last: Endpoint | None = None) -> Opened:
        """The session started on the first server that takes it; raises FaceStreamError with the
        reason at once for a config no server can take, else once every server has refused."""
        attempts: list[tuple[str, FaceStreamError]] = []
        for endpoint in self.rotation(last):
            call = endpoint.stub.Process(metadata=metadata)
            try:
                return Opened(endpoint, call, await start_session(call, config))
            except FaceStreamError as exc:
                call.cancel()
                if exc.code not in REFUSED:
                    raise
                attempts.append((endpoint.target, exc))
            except BaseException:  # cancelled while starting: the call goes with it
                call.cancel()
                raise
        raise refused(attempts)

    async def reopen(self, config: pb.SessionConfig, metadata: Sequence[tuple[str, str]], failed: Endpoint,
                     within: float) -> Opened:
        """Like `open`, for a stream whose server failed: retried until one server takes it or
        `within` seconds have passed."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        pause = 0.1
        while True:
            try:
                return await self.open(config, metadata, last=failed)
            except FaceStreamError as exc:
                if exc.code not in REFUSED or loop.time() + pause > deadline:
                    raise
            await asyncio.sleep(pause)
            pause = min(2 * pause, 1.0)

    async def close(self) -> None:
        await asyncio.gather(*(e.channel.close() for e in self.endpoints))
