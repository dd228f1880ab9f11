"""Logging set-up: text or JSON lines, each record tagged with the session it belongs to."""
from __future__ import annotations

import contextvars
import json
import logging
import sys
import time

# The session whose work is running; set by the service for the session's tasks and the
# stage calls in worker threads (they run in a copy of the task's context).
session_id: contextvars.ContextVar[str] = contextvars.ContextVar("facestream_session_id", default="")

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName"}


class SessionFilter(logging.Filter):
    """Adds `session_id` to every record (empty outside a session)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "session_id", ""):
            record.session_id = session_id.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, session_id and any `extra` fields."""

    def format(self, record: logging.LogRecord) -> str:
        out = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if sid := getattr(record, "session_id", ""):
            out["session_id"] = sid
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in out and key != "session_id":
                out[key] = value
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        sid = getattr(record, "session_id", "")
        return f"{text} [session {sid}]" if sid and sid not in record.getMessage() else text


def configure(level: str = "INFO", fmt: str = "text", stream=None) -> None:
    """Replaces the root handlers with one writing to stderr in the chosen format."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(SessionFilter())
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(handler)
    root.setLevel(level.upper())
