"""Server settings: one dataclass, filled from defaults, then FACESTREAM_* variables, then flags."""
from __future__ import annotations

import argparse
import os
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, Mapping

from facestream.engines.batching import DEFAULT_BUDGET_MS, check_budget


class ConfigurationError(Exception):
    """A setting the server cannot start with (a bad value, a bad key file, a missing certificate, ...)."""


@dataclass
class ServerConfig:
    host: str = field(default="127.0.0.1", metadata={"help": "address to listen on (0.0.0.0 for all)"})
    port: int = field(default=50051, metadata={"help": "gRPC port (0 picks a free one)"})
    backend: str = field(
        default="auto", metadata={"help": "auto, cpu or gpu: where sessions run unless they ask otherwise",
                                  "choices": ("auto", "cpu", "gpu")}
    )
    max_sessions: int = field(default=16, metadata={"help": "concurrent sessions before RESOURCE_EXHAUSTED"})
    max_width: int = field(default=1920, metadata={"help": "largest frame width accepted"})
    max_height: int = field(default=1088, metadata={"help": "largest frame height accepted"})
    max_packet_bytes: int = field(default=8 << 20, metadata={"help": "largest packet (or raw frame) accepted"})
    max_faces: int = field(default=4, metadata={"help": "faces tracked per frame"})
    workers: int = field(default=0, metadata={"help": "threads running pipeline stages (0: 2 x cores + 2)"})
    pipeline_processes: int = field(
        default=-1,
        metadata={"help": "pipeline processes: the stages of CPU sessions run spread over the server process and "
                          "this many processes of their own (a new session where the fewest run, the server process "
                          "while it has none or fewer than each of them), so that several streams use the cores "
                          "without contending for one interpreter lock and a crash in a codec ends only the sessions "
                          "of its process; 0: all in the server process; -1: one per usable core (within the CPU "
                          "quota, at most max-sessions) when sessions may run on the CPU (backend cpu, or auto on a "
                          "host without a usable GPU), else 0"},
    )
    queue_depth: int = field(default=4, metadata={"help": "frames buffered between stages of a session"})
    error_drain_seconds: float = field(
        default=2.0, metadata={"help": "after an error or the final stats, how long the server waits for the client "
                                       "to stop sending before closing the stream"}
    )
    stage_timeout_seconds: float = field(
        default=30.0, metadata={"help": "a stage call (decode, vision, effects or encode of one frame) not done after "
                                        "this ends its session: INTERNAL when it runs, UNAVAILABLE when it never got a "
                                        "worker (0: no limit)"}
    )
    grace_seconds: float = field(default=30.0, metadata={"help": "how long running sessions may finish on SIGTERM"})
    max_fps: float = field(
        default=120.0,
        metadata={"help": "highest input frame rate (declared in the config or measured from pts); 0: no limit"},
    )
    idle_timeout_seconds: float = field(
        default=60.0,
        metadata={"help": "a session that sends nothing, or reads none of its output, for this long is closed to "
                          "free its slot (0: never)"},
    )
    config_timeout_seconds: float = field(
        default=5.0,
        metadata={"help": "a stream that has not sent its session config this long after it opened is closed "
                          "(DEADLINE_EXCEEDED; 0: never)"},
    )
    max_session_seconds: float = field(
        default=4 * 3600.0, metadata={"help": "longest a session may run before RESOURCE_EXHAUSTED; 0: no limit"}
    )
    batch_budget_ms: float = field(
        default=DEFAULT_BUDGET_MS,
        metadata={"help": "gpu backend: how long a detector or mesh call waits for other streams' calls to batch with "
                          "(0: never wait)"},
    )
    realtime_latency_ms: float = field(
        default=200.0,
        metadata={"help": "real-time policy: a frame older than this when vision would start skips vision and "
                          "keeps its effects on the faces carried from earlier frames (passed through only with "
                          "none); one older than twice this when its effects or the encoder would start is dropped"},
    )
    # Connection management (long streams behind a load balancer).
    keepalive_seconds: float = field(
        default=60.0,
        metadata={"help": "send an HTTP/2 ping after this long without activity on a connection; 0: never"},
    )
    keepalive_timeout_seconds: float = field(
        default=20.0, metadata={"help": "close a connection whose keepalive ping is not answered within this"}
    )
    min_client_ping_seconds: float = field(
        default=10.0, metadata={"help": "shortest interval between client keepalive pings the server accepts"}
    )
    max_connection_idle_seconds: float = field(
        default=0.0, metadata={"help": "close connections idle (no RPCs) for this long; 0: never"}
    )
    max_connection_age_seconds: float = field(
        default=0.0,
        metadata={"help": "ask clients to reconnect (GOAWAY) after a connection is this old, so load balancers can "
                          "rebalance; running streams continue for the grace period; 0: never"},
    )
    max_connection_age_grace_seconds: float = field(
        default=0.0,
        metadata={"help": "how long streams may continue after max-connection-age (0: the session length limit)"},
    )
    # Security.
    api_keys_file: str = field(
        default="", metadata={"help": "file of API keys, one 'NAME sha256:HEX [MAX_SESSIONS]' per line "
                                      "(see `facestream keys`); enables authentication"}
    )
    api_keys: str = field(
        default="", metadata={"help": "API keys inline, entries 'NAME:sha256:HEX[:MAX_SESSIONS]' separated by commas"}
    )
    jwt_secret: str = field(
        default="", metadata={"help": "accept HS256 JWTs signed with this secret (prefer the environment variable: "
                                      "flags show in process listings)"}
    )
    jwt_public_key_file: str = field(
        default="", metadata={"help": "accept RS256 JWTs verified with this PEM public key"}
    )
    jwt_audience: str = field(default="facestream", metadata={"help": "required JWT audience (aud)"})
    jwt_issuer: str = field(default="", metadata={"help": "required JWT issuer (iss); empty: any"})
    max_sessions_per_key: int = field(
        default=0, metadata={"help": "concurrent sessions per API key, JWT subject or client certificate "
                                     "(0: no quota; unauthenticated callers are bounded by max-sessions only)"}
    )
    tls_cert_file: str = field(default="", metadata={"help": "PEM certificate chain; with tls-key-file, serve TLS"})
    tls_key_file: str = field(default="", metadata={"help": "PEM private key of the certificate"})
    tls_client_ca_file: str = field(
        default="", metadata={"help": "PEM CA bundle; when set, clients must present a certificate it signed (mTLS)"}
    )
    # Observability.
    reflection: bool = field(default=False, metadata={"help": "enable gRPC server reflection (for grpcurl)"})
    metrics_port: int = field(default=0, metadata={"help": "serve Prometheus metrics on this HTTP port (0: off)"})
    metrics_host: str = field(default="", metadata={"help": "address of the metrics endpoint (empty: same as host)"})
    log_level: str = field(default="INFO", metadata={"help": "DEBUG, INFO, WARNING or ERROR"})
    log_format: str = field(default="text", metadata={"help": "text or json (one object per line)",
                                                      "choices": ("text", "json")})

    def __post_init__(self) -> None:
        try:
            check_budget(self.batch_budget_ms)
        except (TypeError, ValueError) as exc:
            raise ConfigurationError(f"batch-budget-ms: {exc}") from None
        if self.pipeline_processes < -1:
            raise ConfigurationError(f"pipeline-processes: {self.pipeline_processes} is not a number of processes; "
                                     "give one, or 0 (none), or -1 (one per core on the CPU)")

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def worker_threads(self) -> int:
        return self.workers or 2 * (os.cpu_count() or 1) + 2


def _env_name(name: str) -> str:
    return "FACESTREAM_" + name.upper()


def _parse(kind: type, raw: str) -> Any:
    if kind is bool:
        return raw.strip().lower() in ("1", "true", "yes", "on")
    return kind(raw)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per setting; each help text names its environment variable."""
    for f in fields(ServerConfig):
        kind = type(f.default) if f.default is not MISSING else str
        flag = "--" + f.name.replace("_", "-")
        help_text = f"{f.metadata.get('help', '')} [env {_env_name(f.name)}, default {f.default!r}]"
        if kind is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=help_text)
        else:
            parser.add_argument(flag, type=kind, default=None, choices=f.metadata.get("choices"), help=help_text)


def load(args: argparse.Namespace | None = None, env: Mapping[str, str] | None = None) -> ServerConfig:
    """The settings from defaults, FACESTREAM_* variables (`env`, default os.environ) and flags; raises
    ConfigurationError for a variable that does not parse."""
    variables = os.environ if env is None else env
    values: dict[str, Any] = {}
    for f in fields(ServerConfig):
        kind = type(f.default)
        if _env_name(f.name) in variables:
            raw = variables[_env_name(f.name)]
            try:
                values[f.name] = _parse(kind, raw)
            except ValueError:
                raise ConfigurationError(f"{_env_name(f.name)}={raw!r} is not a valid {kind.__name__}") from None
            choices = f.metadata.get("choices")
            if choices and values[f.name] not in choices:
                raise ConfigurationError(f"{_env_name(f.name)}={raw!r}: choose one of {', '.join(choices)}")
        if args is not None and getattr(args, f.name, None) is not None:
            values[f.name] = getattr(args, f.name)
    return ServerConfig(**values)
