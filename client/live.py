"""A live session: pictures pushed one at a time (a camera, a WebRTC track, a GStreamer pad), the
processed ones read back as they come, settings changed while it runs.

`FaceStreamClient.process` streams a whole source; integrations that receive frames from
elsewhere use this instead. One `LiveSession` is one stream: `start()` sends the config,
`send()` a frame, `update_effects()` new settings (acknowledged per frame by `effects_version`),
`results()` yields every output packet in order, `end()` flushes and returns the stats.

When the client has several servers and the session's server fails, the stream moves to another
one (see failover.py): `failovers` lists each move with the frames it lost, `on_failover` is told.
"""
from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from facestream.proto import pb

from .failover import Failover, OnFailover, ResumableStream
from .protocol import EffectsArg, effect_settings

if TYPE_CHECKING:
    from .api import FaceStreamClient


def raw_config(width: int, height: int, *, effects: EffectsArg = None, fps: float = 30.0,
               output: pb.Codec = pb.CODEC_RAW_NV12, realtime: bool = True, faces: bool = True,
               landmarks: bool = False, label: str = "") -> pb.SessionConfig:
    """A config for raw NV12 frames in (any size); by default raw NV12 out, real-time drop policy."""
    num, den = round(fps * 1000), 1000
    return pb.SessionConfig(
        input=pb.InputConfig(codec=pb.CODEC_RAW_NV12, width=width, height=height,
                             time_base=pb.Rational(num=den, den=num), frame_rate=pb.Rational(num=num, den=den)),
        output=pb.OutputConfig(codec=output),
        effects=effect_settings(effects),
        return_faces=faces or landmarks,
        return_landmarks=landmarks,
        drop_policy=pb.DROP_POLICY_REALTIME if realtime else pb.DROP_POLICY_LOSSLESS,
        label=label,
    )


@dataclass
class LiveResult:
    """One processed frame: its output packet and the time from `send` to its arrival."""

    packet: pb.OutputPacket
    latency_ms: float


class LiveSession:
    """One stream fed frame by frame; use as `async with client.live(config) as session`."""

    def __init__(self, client: FaceStreamClient, config: pb.SessionConfig, *,
                 on_failover: OnFailover | None = None) -> None:
        self._stream = ResumableStream(client.endpoints, client.metadata, config, client.failover_seconds,
                                       on_failover)

    async def __aenter__(self) -> LiveSession:
        await self.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    @property
    def started(self) -> pb.SessionStarted | None:
        """What the server running the session started (after a move, the new server's)."""
        return self._stream.started

    @property
    def stats(self) -> pb.SessionStats | None:
        """The final stats, once `results()` has ended (after a move, of the last server's part)."""
        return self._stream.stats

    @property
    def effects_version(self) -> int:
        """The version the last update_effects asked for."""
        return self._stream.effects_version

    @property
    def failovers(self) -> list[Failover]:
        """Each move to another server, with the frames it lost."""
        return self._stream.failovers

    @property
    def target(self) -> str:
        """The server the session runs on now."""
        return self._stream.target

    async def start(self) -> pb.SessionStarted:
        """Sends the config to the first server that takes it; returns what it started, or raises
        FaceStreamError (with every server's reason when several refused)."""
        return await self._stream.start()

    async def send(self, data: bytes, pts: int, keyframe: bool | None = None) -> None:
        """One raw frame (or access unit) with its pts; raises FaceStreamError once the session has ended.

        `keyframe` matters only after a move: the new session starts at the next frame it can start
        with, found from the data for raw, MJPEG, H.264 and HEVC input; say it for VP9 and AV1."""
        await self._stream.send(data, pts, keyframe)

    async def update_effects(self, effects: EffectsArg) -> int:
        """New settings from the next decoded frame on; returns the version frames will acknowledge."""
        return await self._stream.update_effects(effect_settings(effects))

    async def results(self) -> AsyncIterator[LiveResult]:
        """Every processed frame in order until the session ends; raises FaceStreamError on an error."""
        async for packet, sent in self._stream.packets():
            yield LiveResult(packet, (time.perf_counter() - sent) * 1000.0 if sent else float("nan"))

    async def end(self) -> None:
        """Tells the server the stream is over and half-closes; `results()` then ends after the stats."""
        await self._stream.end()

    async def close(self) -> None:
        """Ends the stream at once (frames still in flight are not delivered)."""
        self._stream.close()
