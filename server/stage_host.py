"""Where a session's stages run: on this process's worker threads, or in a pipeline process.

The session's loops ask for each stage call the same way, and get a Future their StageRunner watches
(stage timeout, stuck calls); `ThreadStages` runs the calls on the server's worker threads,
`pipeline_processes.ProcessStages` in one of the server's pipeline processes, where the frames'
pixels stay: the session then gets records of its frames without their pixels.
"""
from __future__ import annotations

import asyncio
import contextvars
from concurrent.futures import Executor, Future
from typing import Any, Callable, Protocol, TypeVar

from facestream.engines.backend import Backend
from facestream.engines.effects.base import EffectSettings
from facestream.engines.pipeline import DecodeStage, EffectsStage, EncodeStage, FrameInFlight

from .config import ServerConfig
from .plan import SessionPlan

T = TypeVar("T")


class SessionStages(Protocol):
    """One session's decode (with vision), effects and encode stages, called one call per stage at a time."""

    # Where they run, for the placements a client is told ("" for the server process).
    where: str

    @property
    def expected_vision_s(self) -> float:
        """What vision is expected to take on the next frame (seconds), for the real-time policy."""

    @property
    def just_skipped(self) -> bool:
        """Whether the last frame decoded skipped vision."""

    def update_effects(self, settings: EffectSettings) -> Future[None]: ...

    def push(self, data: bytes, pts: int, arrived: float, skip: bool) -> Future[list[FrameInFlight]]: ...

    def flush_decoder(self) -> Future[list[FrameInFlight]]: ...

    def apply_effects(self, item: FrameInFlight) -> Future[FrameInFlight]: ...

    def encode(self, item: FrameInFlight) -> Future[list[FrameInFlight]]: ...

    def flush_encoder(self) -> Future[list[FrameInFlight]]: ...

    async def close(self) -> None:
        """Releases the codecs; called once, when no call is running."""


def build_stages(backend: Backend, plan: SessionPlan, server: ServerConfig) -> tuple[DecodeStage, EffectsStage,
                                                                                       EncodeStage]:
    """The stages of a session on `backend`; raises ValueError when a codec rejects the plan."""
    decode = DecodeStage(
        backend.decoder(plan.input_codec, plan.width, plan.height),
        backend.vision(server.max_faces, plan.encoder.frame_rate[0] / plan.encoder.frame_rate[1]),
        plan.effects,
        plan.return_faces,
        server.max_width,
        server.max_height,
        (plan.width, plan.height),
    )
    return decode, EffectsStage(backend.effects()), EncodeStage(backend.encoder, plan.encoder)


class ThreadStages:
    """The stages in this process, their calls on the server's worker threads, each in a copy of the calling
    task's context (so log records carry the session ID)."""

    where = ""

    def __init__(self, backend: Backend, plan: SessionPlan, server: ServerConfig, executor: Executor,
                 closed: Callable[[], None] = lambda: None) -> None:
        self._decode, self._effects, self._encode = build_stages(backend, plan, server)
        self._executor = executor
        self._closed = closed  # told once the codecs are released

    @property
    def expected_vision_s(self) -> float:
        return self._decode.expected_vision_s

    @property
    def just_skipped(self) -> bool:
        return self._decode.just_skipped

    def _submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        return self._executor.submit(contextvars.copy_context().run, fn, *args)

    def update_effects(self, settings: EffectSettings) -> Future[None]:
        done: Future[None] = Future()
        self._decode.update_effects(settings)
        done.set_result(None)
        return done

    def push(self, data: bytes, pts: int, arrived: float, skip: bool) -> Future[list[FrameInFlight]]:
        return self._submit(self._decode.push, data, pts, arrived, skip)

    def flush_decoder(self) -> Future[list[FrameInFlight]]:
        return self._submit(self._decode.flush)

    def apply_effects(self, item: FrameInFlight) -> Future[FrameInFlight]:
        return self._submit(self._effects.apply, item)

    def encode(self, item: FrameInFlight) -> Future[list[FrameInFlight]]:
        return self._submit(self._encode.encode, item)

    def flush_encoder(self) -> Future[list[FrameInFlight]]:
        return self._submit(self._encode.flush)

    async def close(self) -> None:
        # In a thread of its own, not on the workers: when they are all busy or stuck, the session must still end.
        try:
            await asyncio.to_thread(self._release)
        finally:
            self._closed()

    def _release(self) -> None:
        self._decode.close()
        self._encode.close()
