"""Streams through the engine's stages as the server runs them, and what every section shares to
run them: the backend by name, its device stream, threads started at once."""
from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any, Callable

from facestream.benchmarks.gpu_bench.config import EFFECTS, FPS, MAX_FACES, MAX_SIZE
from facestream.engines.codec.base import Codec, EncoderSettings
from facestream.engines.effects.base import EffectSetting, EffectSettings

if TYPE_CHECKING:
    from facestream.engines.backend import Backend


def effect_settings() -> EffectSettings:
    """Every effect the server offers except `debug`, each at 0.5: what a session of each section applies."""
    return EffectSettings(effects=tuple(EffectSetting(k, v) for k, v in EFFECTS.items()))


def make_backend(name: str, output: Codec) -> Backend:
    """The backend as the server resolves it for a session's output codec."""
    from facestream.engines.backend import resolve

    return resolve(name, output.value)


class Session:
    """One stream through the engine's stages as the server runs them (engines/pipeline.py), no gRPC."""

    def __init__(self, backend: str, output: Codec) -> None:
        from facestream.engines.pipeline import DecodeStage, EffectsStage, EncodeStage

        self.backend = make_backend(backend, output)
        b = self.backend
        self.decode = DecodeStage(b.decoder(Codec.H264, 0, 0), b.vision(MAX_FACES, FPS), effect_settings(),
                                  True, *MAX_SIZE)
        self.effects = EffectsStage(b.effects())
        self.encode = EncodeStage(b.encoder, EncoderSettings(output, 0, 0))

    def push(self, data: bytes, pts: int, arrived: float) -> list:
        """Decode, vision, effects and encode of what the packet completes, one after the other."""
        out = []
        for item in self.decode.push(data, pts, arrived):
            out += self.encode.encode(self.effects.apply(item))
        return out

    def flush(self) -> list:
        out = []
        for item in self.decode.flush():
            out += self.encode.encode(self.effects.apply(item))
        return out + self.encode.flush()

    def close(self) -> None:
        self.decode.close()
        self.encode.close()


def device_stream(backend: Backend) -> Any:
    """The backend's CUDA stream, or None on the cpu backend (nothing to synchronise or time there)."""
    return getattr(backend, "stream", None)


def run_threads(target: Callable[[], Any], n: int) -> float:
    """Runs `target` in n threads at once and returns the wall time; the first error raised in
    any of them is raised here."""
    errors: list[BaseException] = []

    def guarded() -> None:
        try:
            target()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=guarded) for _ in range(n)]
    t = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    if errors:
        raise errors[0]
    return time.perf_counter() - t


def synchronize(stream: Any) -> None:
    """Waits for the device stream's work, so a clock read after it covers that work."""
    if stream is not None:
        stream.synchronize()
