"""Authentication: API keys (stored as SHA-256 hashes) and JWTs, checked by a server interceptor.

Clients send `x-api-key: KEY` or `authorization: Bearer TOKEN` (a JWT, or an API key) as call
metadata. The interceptor guards every FaceStream method, streaming ones included; the gRPC
health and reflection services stay open so that load balancers and probes work without
credentials. API keys are random high-entropy tokens, so a single SHA-256 is the right hash
(the same practice as for other bearer tokens): it is not reversible and lookups stay constant time.
"""
from __future__ import annotations

import asyncio
import contextvars
import hashlib
import logging
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import AsyncIterator, Awaitable, Callable

import grpc

from .config import ServerConfig
from .text import MAX_MESSAGE, clip

log = logging.getLogger("facestream.auth")

KEY_PREFIX = "fs_"


@dataclass(frozen=True)
class Principal:
    """Who opened a call: `name` is the key's name or the JWT subject; `max_sessions` 0 means the default."""

    name: str
    method: str  # "api-key", "jwt", "tls" or "none"
    max_sessions: int = 0


ANONYMOUS = Principal("anonymous", "none")
# Reads and drops a refused stream's requests for at most the given seconds.
Drain = Callable[[AsyncIterator, float], Awaitable[None]]
principal: contextvars.ContextVar[Principal] = contextvars.ContextVar("facestream_principal", default=ANONYMOUS)


class AuthError(Exception):
    """Refused credentials; the message may quote what the client sent, cut short."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(clip(message, MAX_MESSAGE))
        self.reason = reason


def hash_key(key: str) -> str:
    return "sha256:" + hashlib.sha256(key.strip().encode()).hexdigest()


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def _parse_entry(name: str, digest: str, quota: str, where: str) -> tuple[str, Principal]:
    algo, _, hexdigest = digest.partition(":")
    if algo != "sha256" or len(hexdigest) != 64:
        raise ValueError(f"{where}: key {name!r} has hash {digest!r}; expected sha256:<64 hex digits> "
                         "(make one with `facestream keys hash`)")
    try:
        bytes.fromhex(hexdigest)
        limit = int(quota) if quota else 0
    except ValueError:
        raise ValueError(f"{where}: key {name!r}: bad hash or session quota") from None
    return hexdigest.lower(), Principal(name, "api-key", limit)


def load_keys(config: ServerConfig) -> dict[str, Principal]:
    """Hex SHA-256 digest -> principal, from --api-keys-file and --api-keys; ValueError names a bad entry."""
    keys: dict[str, Principal] = {}
    if config.api_keys_file:
        path = Path(config.api_keys_file)
        for n, line in enumerate(path.read_text().splitlines(), 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            parts = line.split()
            if len(parts) not in (2, 3):
                raise ValueError(f"{path}:{n}: expected 'NAME sha256:HEX [MAX_SESSIONS]'")
            digest, p = _parse_entry(parts[0], parts[1], parts[2] if len(parts) == 3 else "", f"{path}:{n}")
            keys[digest] = p
    for entry in filter(None, (e.strip() for e in config.api_keys.split(","))):
        parts = entry.split(":")
        if len(parts) not in (3, 4):
            raise ValueError(f"FACESTREAM_API_KEYS entry {entry!r}: expected NAME:sha256:HEX[:MAX_SESSIONS]")
        digest, p = _parse_entry(parts[0], f"{parts[1]}:{parts[2]}", parts[3] if len(parts) == 4 else "",
                                 "--api-keys")
        keys[digest] = p
    return keys


class Authenticator:
    """Checks call metadata against the configured keys and JWT settings."""

    def __init__(self, config: ServerConfig) -> None:
        self.keys = load_keys(config)
        self.jwt_keys: list[tuple[str, str]] = []  # (algorithm, secret or PEM public key)
        if config.jwt_secret:
            self.jwt_keys.append(("HS256", config.jwt_secret))
        if config.jwt_public_key_file:
            self.jwt_keys.append(("RS256", Path(config.jwt_public_key_file).read_text()))
        self.audience = config.jwt_audience or None
        self.issuer = config.jwt_issuer or None
        if self.jwt_keys:
            import jwt  # noqa: F401  (fail at start-up, not on the first call, when PyJWT is missing)

    @property
    def enabled(self) -> bool:
        return bool(self.keys or self.jwt_keys)

    def _key(self, key: str) -> Principal:
        p = self.keys.get(hashlib.sha256(key.strip().encode()).hexdigest())
        if p is None:
            raise AuthError("the API key is not valid; check the key or ask the operator for one", "bad_key")
        return p

    def _jwt(self, token: str) -> Principal:
        import jwt

        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise AuthError("the bearer token is neither a valid API key nor a JWT", "bad_token") from None
        alg = header.get("alg")
        accepted = next(((a, k) for a, k in self.jwt_keys if a == alg), None)
        if accepted is None:
            allowed = ", ".join(a for a, _ in self.jwt_keys) or "none (JWTs are not enabled)"
            raise AuthError(f"JWT algorithm {alg!r} is not accepted; accepted: {allowed}", "bad_token")
        alg_name, key = accepted
        try:
            claims = jwt.decode(token, key, algorithms=[alg_name], audience=self.audience, issuer=self.issuer,
                                options={"require": ["exp", "sub"]})
        except jwt.ExpiredSignatureError:
            raise AuthError("the JWT has expired; get a new token", "expired") from None
        except jwt.InvalidAudienceError:
            raise AuthError(f"the JWT audience is wrong; it must include {self.audience!r}", "bad_token") from None
        except jwt.PyJWTError as exc:
            raise AuthError(f"the JWT is not valid: {exc}", "bad_token") from None
        quota = claims.get("max_sessions", 0)
        return Principal(str(claims["sub"]), "jwt", quota if isinstance(quota, int) else 0)

    def check(self, metadata) -> Principal:
        md = {k.lower(): v for k, v in (metadata or ()) if isinstance(v, str)}
        if "x-api-key" in md:
            return self._key(md["x-api-key"])
        auth = md.get("authorization", "")
        if auth:
            scheme, _, token = auth.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise AuthError("the authorization header must be 'Bearer <token>'", "bad_token")
            token = token.strip()
            if token.count(".") == 2 and self.jwt_keys:
                return self._jwt(token)
            return self._key(token)
        raise AuthError("this server needs credentials: send 'x-api-key: KEY' or 'authorization: Bearer TOKEN' "
                        "metadata", "missing")


async def _written(context: grpc.aio.ServicerContext, response, seconds: float) -> bool:
    """Whether `response` was written within `seconds` (the client may not be reading)."""
    write = asyncio.ensure_future(context.write(response))
    await asyncio.wait([write], timeout=seconds)
    if not write.done():
        write.add_done_callback(lambda w: w.cancelled() or w.exception())
        return False
    return write.exception() is None


def _abort_handler(handler: grpc.RpcMethodHandler, message: str, in_band=None, write_seconds: float = 2.0,
                   drain: Drain | None = None) -> grpc.RpcMethodHandler:
    async def abort(request, context):
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, message)

    async def abort_stream(requests, context):
        # Like any other stream error: announce it in band, let a client that is still writing stop and
        # half-close (`drain` reads within the server's budget for refused streams: a flood of callers
        # without credentials is not read), then end with the status.
        if in_band is not None and not await _written(
                context, in_band(grpc.StatusCode.UNAUTHENTICATED, message), write_seconds):
            context.set_code(grpc.StatusCode.UNAUTHENTICATED)  # the write waits on the client: the status alone
            context.set_details(message)
            return
        if drain is not None:
            await drain(requests, write_seconds)
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, message)

    kw = dict(request_deserializer=handler.request_deserializer, response_serializer=handler.response_serializer)
    if handler.request_streaming and handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(abort_stream, **kw)
    if handler.request_streaming:
        return grpc.stream_unary_rpc_method_handler(abort, **kw)
    if handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(abort, **kw)
    return grpc.unary_unary_rpc_method_handler(abort, **kw)


def _with_principal(handler: grpc.RpcMethodHandler, who: Principal) -> grpc.RpcMethodHandler:
    """The same handler, run with `principal` set to `who`."""
    kw = dict(request_deserializer=handler.request_deserializer, response_serializer=handler.response_serializer)
    if handler.stream_stream:
        inner = handler.stream_stream

        async def stream_stream(requests, context):
            principal.set(who)
            return await inner(requests, context)

        return grpc.stream_stream_rpc_method_handler(stream_stream, **kw)
    if handler.unary_unary:
        inner_u = handler.unary_unary

        async def unary_unary(request, context):
            principal.set(who)
            return await inner_u(request, context)

        return grpc.unary_unary_rpc_method_handler(unary_unary, **kw)
    return handler


class AuthInterceptor(grpc.aio.ServerInterceptor):
    """Rejects calls to `protected` services without valid credentials (UNAUTHENTICATED)."""

    def __init__(self, auth: Authenticator, protected: tuple[str, ...], metrics=None,
                 in_band: dict | None = None, write_seconds: float = 2.0, drain: Drain | None = None) -> None:
        self.auth = auth
        self.prefixes = tuple(f"/{name}/" for name in protected)
        self.metrics = metrics
        # Method -> function(code, message) building the in-band error message of a streaming method.
        self.in_band = in_band or {}
        self.write_seconds = write_seconds
        # Reads and drops what a refused stream's client still sends, for at most the given seconds.
        self.drain = drain

    async def intercept_service(self, continuation, details: grpc.HandlerCallDetails):
        handler = await continuation(details)
        if handler is None or not details.method.startswith(self.prefixes):
            return handler
        try:
            who = self.auth.check(details.invocation_metadata)
        except AuthError as exc:
            log.info("rejected %s: %s", details.method, exc, extra={"reason": exc.reason})
            if self.metrics is not None:
                self.metrics.auth_failures.labels(exc.reason).inc()
                self.metrics.errors.labels("UNAUTHENTICATED").inc()
            return _abort_handler(handler, str(exc), self.in_band.get(details.method), self.write_seconds,
                                  self.drain)
        return _with_principal(handler, who)
