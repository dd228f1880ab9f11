"""A live session: pictures pushed one at a time (a camera, a WebRTC track, a GStreamer pad), the
processed ones read back as they come, settings changed while it runs.

`FaceStreamClient.process` streams a whole source; integrations that receive frames from
elsewhere use this instead. One `LiveSession` is one `Process` stream: `start()` sends the config,
`send()` a frame, `update_effects()` new settings (acknowledged per frame by `effects_version`),
`results()` yields every output packet in order, `end()` flushes and returns the stats.
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc

from facestream.proto import pb

from .api import EffectsArg, FaceStreamClient, FaceStreamError, _start, _stream_error, effect_settings


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
    """One Process stream fed frame by frame; use as `async with client.live(config) as session`."""

    def __init__(self, client: FaceStreamClient, config: pb.SessionConfig) -> None:
        self._call = client.stub.Process(metadata=client.metadata)
        self._config = config
        self._sent_at: dict[int, float] = {}
        self.started: pb.SessionStarted | None = None
        self.stats: pb.SessionStats | None = None
        self.effects_version = 0   # the version the last update_effects asked for

    async def __aenter__(self) -> LiveSession:
        await self.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def start(self) -> pb.SessionStarted:
        """Sends the config; returns what the server started, or raises FaceStreamError."""
        try:
            self.started = await _start(self._call, self._config)
        except grpc.aio.AioRpcError as exc:
            raise FaceStreamError(exc.code(), exc.details() or "") from None
        return self.started

    async def _write(self, request: pb.ProcessRequest) -> None:
        try:
            await self._call.write(request)
        except (grpc.aio.AioRpcError, asyncio.InvalidStateError):
            # the stream has ended: its status says why (results() reports the in-band error too)
            raise FaceStreamError(await self._call.code(),
                                  await self._call.details() or "the session has ended") from None

    async def send(self, data: bytes, pts: int) -> None:
        """One raw frame (or access unit) with its pts; raises FaceStreamError once the session has ended."""
        self._sent_at[pts] = time.perf_counter()
        await self._write(pb.ProcessRequest(packet=pb.Packet(data=data, pts=pts)))

    async def update_effects(self, effects: EffectsArg) -> int:
        """New settings from the next decoded frame on; returns the version frames will acknowledge."""
        await self._write(pb.ProcessRequest(effects_update=pb.EffectsUpdate(effects=effect_settings(effects))))
        self.effects_version += 1
        return self.effects_version

    async def results(self) -> AsyncIterator[LiveResult]:
        """Every processed frame in order until the session ends; raises FaceStreamError on an error."""
        try:
            while (resp := await self._call.read()) is not grpc.aio.EOF:
                kind = resp.WhichOneof("msg")
                if kind == "error":
                    raise _stream_error(resp.error)
                if kind == "stats":
                    self.stats = resp.stats
                    continue
                sent = self._sent_at.pop(resp.packet.pts, None)
                yield LiveResult(resp.packet, (time.perf_counter() - sent) * 1000.0 if sent else float("nan"))
        except grpc.aio.AioRpcError as exc:
            raise FaceStreamError(exc.code(), exc.details() or "") from None

    async def end(self) -> None:
        """Tells the server the stream is over and half-closes; `results()` then ends after the stats."""
        await self._write(pb.ProcessRequest(end=pb.EndOfStream()))
        await self._call.done_writing()

    async def close(self) -> None:
        """Ends the stream at once (frames still in flight are not delivered)."""
        self._call.cancel()
