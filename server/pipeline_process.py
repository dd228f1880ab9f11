"""A pipeline process: runs the stages of the CPU sessions the server hands it (pipeline_processes.py).

It loads and warms up the models, says it is ready, then takes calls off its connection: each runs on
a thread of its own pool (so the stages of a session overlap as they do in the server), and its
reply goes back with the call's number. Decoded frames stay here, by session and frame index, until
encoded; the server gets their records without pixels once, then only what the effects and the
encoder change. It ends when the server closes the connection, or asks it to with None.
"""
from __future__ import annotations

import logging
import os
import signal
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from multiprocessing.connection import Connection
from typing import Any, Callable

from facestream.engines.codec.base import CodecError, EncodedPacket
from facestream.engines.cpu_backend import CpuBackend
from facestream.engines.effects.base import EffectSettings
from facestream.engines.pipeline import DecodeStage, EffectsStage, EncodeStage, FrameInFlight
from facestream.engines.stages import FrameStatus

from . import logs, memory
from .config import ServerConfig
from .plan import SessionPlan
from .stage_host import build_stages

log = logging.getLogger("facestream.pipeline")

# What a decode call returns: the frames' records, then the decoder's expected_vision_s and just_skipped.
Decoded = tuple[list[FrameInFlight], float, bool]
# What the effects and encode calls return of a frame the server already has the record of: what they changed.
Timings = dict[str, float]
Encoded = list[tuple[int, EncodedPacket | None, Timings]]  # (frame index, packet, timings), in output order


def _record(item: FrameInFlight) -> FrameInFlight:
    """The frame's record without its pixels, for the server."""
    return replace(item, frame=item.frame.without_pixels())


@dataclass
class _Session:
    decode: DecodeStage
    effects: EffectsStage
    encode: EncodeStage
    # Decoded frames not yet encoded, by frame index.
    frames: dict[int, FrameInFlight] = field(default_factory=dict)

    def decoded(self, items: list[FrameInFlight]) -> Decoded:
        for item in items:
            self.frames[item.frame.index] = item
        return [_record(i) for i in items], self.decode.expected_vision_s, self.decode.just_skipped

    def encoded(self, items: list[FrameInFlight]) -> Encoded:
        for item in items:
            self.frames.pop(item.frame.index, None)
        return [(i.frame.index, i.packet, i.timings) for i in items]


class _Host:
    """The sessions of this process and the calls on them, by the names the server sends."""

    def __init__(self, conn: Connection, config: ServerConfig) -> None:
        self._conn = conn
        self._config = config
        self._sessions: dict[str, _Session] = {}
        self._send = threading.Lock()
        self._calls: dict[str, Callable[..., Any]] = {
            "open": self.open, "update_effects": self.update_effects, "push": self.push,
            "flush_decoder": self.flush_decoder, "apply_effects": self.apply_effects, "encode": self.encode,
            "flush_encoder": self.flush_encoder, "close": self.close,
        }

    def open(self, sid: str, plan: SessionPlan, reason: str) -> None:
        self._sessions[sid] = _Session(*build_stages(CpuBackend(reason), plan, self._config))

    def update_effects(self, sid: str, settings: EffectSettings) -> None:
        self._sessions[sid].decode.update_effects(settings)

    def push(self, sid: str, data: bytes, pts: int, arrived: float, skip: bool) -> Decoded:
        s = self._sessions[sid]
        return s.decoded(s.decode.push(data, pts, arrived, skip))

    def flush_decoder(self, sid: str) -> Decoded:
        s = self._sessions[sid]
        return s.decoded(s.decode.flush())

    def apply_effects(self, sid: str, index: int) -> Timings:
        s = self._sessions[sid]
        return s.effects.apply(s.frames[index]).timings

    def encode(self, sid: str, index: int, status: FrameStatus) -> Encoded:
        s = self._sessions[sid]
        item = s.frames[index]
        item.status = status  # the server's real-time policy may have dropped it
        return s.encoded(s.encode.encode(item))

    def flush_encoder(self, sid: str) -> Encoded:
        s = self._sessions[sid]
        return s.encoded(s.encode.flush())

    def close(self, sid: str) -> None:
        s = self._sessions.pop(sid, None)
        if s is not None:
            s.decode.close()
            s.encode.close()
        if not self._sessions:
            memory.release()  # idle: freed frames and codec buffers back to the OS, as the server does

    def run(self, number: int, name: str, sid: str, args: tuple) -> None:
        """One call, on a pool thread; its result or error goes back with its number."""
        logs.session_id.set(sid)
        try:
            reply: tuple = (number, True, self._calls[name](sid, *args))
        except Exception as exc:
            if not (isinstance(exc, CodecError) or (name == "open" and isinstance(exc, ValueError))):
                log.exception("%s failed", name)  # a bug: its traceback is here, the server has only the error
            reply = (number, False, exc)
        with self._send:
            try:
                self._conn.send(reply)
            except (OSError, ValueError):
                pass  # the server is gone; the loop ends on the closed connection
            except Exception as exc:  # an error that does not pickle goes back as its text
                self._conn.send((number, False, RuntimeError(f"{reply[2]!r} ({exc})")))

    def serve(self, threads: int) -> None:
        pool = ThreadPoolExecutor(threads, thread_name_prefix="facestream-stage")
        while True:
            try:
                message = self._conn.recv()
            except (EOFError, OSError):
                break
            if message is None:
                break
            pool.submit(self.run, *message)
        pool.shutdown(wait=False, cancel_futures=True)


def main(conn: Connection, config: ServerConfig, threads: int) -> None:
    """The process's entry point: (`conn`, the server's settings, how many calls may run at once)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the server's to handle; it ends us by closing `conn`
    logs.configure(config.log_level, config.log_format)
    try:
        from facestream.engines.effects.jit import warm_up
        from facestream.engines.models.store import default_store

        default_store().load()
        warm_up()
        memory.settle()
    except Exception as exc:
        conn.send(("failed", f"{type(exc).__name__}: {exc}"))
        return
    conn.send(("ready", os.getpid()))
    _Host(conn, config).serve(threads)
