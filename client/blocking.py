"""A blocking wrapper around the asyncio client, for scripts and code without an event loop."""
from __future__ import annotations

import asyncio
from typing import Any, Sequence

from facestream.proto import pb

from .api import FaceStreamClient, ProcessResult


class BlockingClient:
    """Same methods as FaceStreamClient, without `await`; use as a context manager. Takes the same
    arguments: one server or several (then a stream whose server fails moves to another)."""

    def __init__(self, target: str | Sequence[str] = "127.0.0.1:50051", **kwargs: Any) -> None:
        self._runner = asyncio.Runner()
        self._client = self._runner.run(self._make(target, kwargs))

    @staticmethod
    async def _make(target: str | Sequence[str], kwargs: dict[str, Any]) -> FaceStreamClient:
        return FaceStreamClient(target, **kwargs)

    def __enter__(self) -> "BlockingClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def capabilities(self) -> pb.Capabilities:
        return self._runner.run(self._client.capabilities())

    def process(self, source, **kwargs: Any) -> ProcessResult:
        return self._runner.run(self._client.process(source, **kwargs))

    def close(self) -> None:
        self._runner.run(self._client.close())
        self._runner.close()
