"""Server settings: one dataclass, filled from defaults, then FACESTREAM_* variables, then flags."""
from __future__ import annotations

import argparse
import os
from dataclasses import MISSING, dataclass, field, fields
from typing import Any


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
    queue_depth: int = field(default=4, metadata={"help": "frames buffered between stages of a session"})
    error_drain_seconds: float = field(
        default=2.0, metadata={"help": "after an error, how long a client may keep sending before the stream is closed"}
    )
    grace_seconds: float = field(default=30.0, metadata={"help": "how long running sessions may finish on SIGTERM"})
    log_level: str = field(default="INFO", metadata={"help": "DEBUG, INFO, WARNING or ERROR"})

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


def load(args: argparse.Namespace | None = None, env: dict[str, str] | None = None) -> ServerConfig:
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    for f in fields(ServerConfig):
        kind = type(f.default)
        if _env_name(f.name) in env:
            raw = env[_env_name(f.name)]
            try:
                values[f.name] = _parse(kind, raw)
            except ValueError:
                raise SystemExit(f"{_env_name(f.name)}={raw!r} is not a valid {kind.__name__}") from None
            choices = f.metadata.get("choices")
            if choices and values[f.name] not in choices:
                raise SystemExit(f"{_env_name(f.name)}={raw!r}: choose one of {', '.join(choices)}")
        if args is not None and getattr(args, f.name, None) is not None:
            values[f.name] = getattr(args, f.name)
    return ServerConfig(**values)
