"""Client-supplied text, bounded before it is logged or echoed in a status.

A status message travels as metadata (8 KiB by default for the whole of it), and a log line is
read by people and shipped by log collectors: neither may grow with what a client sent.
"""
from __future__ import annotations

# Characters of a client's string kept in a log line or a message.
MAX_ECHO = 200
# Characters of a status message: well inside gRPC's default metadata limit.
MAX_MESSAGE = 2000


def clip(text: str, limit: int = MAX_ECHO) -> str:
    """`text`, or its start and how long it was when it is over `limit` characters."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text)} characters)"
