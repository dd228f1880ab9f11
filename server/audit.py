"""The audit log: one line per Process stream, whoever called and however it ended."""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import grpc

from facestream.proto import pb

from .auth import Principal
from .errors import SessionError
from .session import Session
from .text import clip
from .wire import Undecodable

audit = logging.getLogger("facestream.audit")
# Effects of a config named in its audit line (a config with more is refused anyway).
_MAX_EFFECTS = 16


def describe_request(first: pb.ProcessRequest | Undecodable) -> dict[str, Any]:
    """What a session asked for (no pixels, no secrets), its strings cut short."""
    if isinstance(first, Undecodable) or first.WhichOneof("msg") != "config":
        return {"first_message": "undecodable" if isinstance(first, Undecodable) else first.WhichOneof("msg")}
    c = first.config

    def enum(e, v: int) -> str:
        return e.Name(v) if v in e.values() else str(v)

    return {
        "input": enum(pb.Codec, c.input.codec),
        "size": f"{c.input.width}x{c.input.height}",
        "output": enum(pb.Codec, c.output.codec or pb.CODEC_H264),
        "effects": {clip(e.name): round(e.strength, 3) for e in c.effects.effects[:_MAX_EFFECTS]},
        "per_face": len(c.effects.per_face),
        "drop_policy": enum(pb.DropPolicy, c.drop_policy),
        "backend": enum(pb.Backend, c.backend),
        "return_faces": c.return_faces,
        "label": clip(c.label),
    }


@dataclass
class StreamRecord:
    """One Process stream as the audit log tells it, filled in as the stream goes."""

    session_id: str
    who: Principal
    began: float = field(default_factory=time.monotonic)
    wall: float = field(default_factory=time.time)
    first: pb.ProcessRequest | Undecodable | None = None
    session: Session | None = None
    code: grpc.StatusCode = grpc.StatusCode.OK
    message: str = ""

    def ended(self, error: SessionError) -> SessionError:
        """Notes how the stream ended; returns `error`."""
        self.code, self.message = error.code, error.message
        return error

    def write(self, peer: str) -> None:
        """The audit line, plain text and structured (JSON log format) alike."""
        sid, who = self.session_id, self.who
        duration = time.monotonic() - self.began
        asked = describe_request(self.first) if self.first is not None else {}
        stats = self.session.stats if self.session is not None else None
        counts = {
            "packets_in": stats.packets_in if stats else 0,
            "frames_out": stats.frames_out if stats else 0,
            "frames_passed_through": stats.passed_through if stats else 0,
            "frames_dropped": stats.dropped if stats else 0,
            "frames_carried": stats.frames_carried if stats else 0,
            "faces_carried": stats.faces_carried if stats else 0,
        }
        started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.wall))
        ended = {"code": self.code.name, "message": self.message}
        audit.info(
            "session %s who=%s auth=%s peer=%s started=%s duration=%.2fs asked=%s ended=%s%s frames_out=%d",
            sid, who.name, who.method, peer, started, duration, json.dumps(asked, sort_keys=True), self.code.name,
            f" ({self.message})" if self.message else "", counts["frames_out"],
            extra={"event": "session", "session_id": sid, "principal": who.name, "auth": who.method, "peer": peer,
                   "started": started, "duration_s": round(duration, 3), "asked": asked, "ended": ended, **counts},
        )
