"""The asyncio client: open sessions, stream a source through the server, collect the result.

A client may have several servers (a list of targets, "host1:50051,host2:50051", or a DNS name
that resolves to several, `dns:///facestream-headless:50051`): sessions spread over them, a
refused start is tried on the others, and a stream whose server fails moves to another one and
resumes at its next keyframe (see failover.py), reporting which frames were lost.
"""
from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Mapping, Sequence, TextIO

import grpc

from facestream.proto import pb

from .failover import Failover, OnFailover
from .live import LiveSession
from .protocol import EffectsArg, FaceStreamError, SourceError, effect_settings, face_dict, parse_effects

if TYPE_CHECKING:
    # PyAV and OpenCV are imported only by what reads or writes files: an application that only
    # streams frames (a GStreamer element, a WebRTC track) loads no second copy of FFmpeg
    from .sink import FileSink, FrameDecoder, ImageSink
    from .source import VideoSource

from .targets import REFUSED, Endpoints, channel_options, names_several_servers, refused, split_targets

__all__ = ["EffectsArg", "FaceStreamClient", "FaceStreamError", "Failover", "FrameResult", "ProcessResult",
           "effect_settings", "face_dict", "parse_effects"]

# How long a stream whose server failed looks for another, where the client has several servers.
DEFAULT_FAILOVER_SECONDS = 10.0


@dataclass
class FrameResult:
    """One processed frame as it came back."""

    packet: pb.OutputPacket
    latency_ms: float
    image: Any = None  # decoded picture when the callback asked for images


@dataclass
class ProcessResult:
    """`stats` are the server's (after a move, the last server's part); `failovers` lists each move
    to another server with the frames it lost."""

    started: pb.SessionStarted
    stats: pb.SessionStats
    frames: int
    latencies_ms: list[float] = field(default_factory=list)
    failovers: list[Failover] = field(default_factory=list)

    @property
    def lost(self) -> list[int]:
        """The pts of every frame lost to failed servers."""
        return [pts for move in self.failovers for pts in move.lost]


async def _next(iterator):
    """The source's next packet, read on a worker thread. A cancelled caller still waits for the
    read to finish, so the source is never closed while FFmpeg is inside it."""
    read = asyncio.ensure_future(asyncio.to_thread(next, iterator, None))
    try:
        return await asyncio.shield(read)
    except asyncio.CancelledError:
        await asyncio.wait([read])
        raise


def _open_sink(output: str, codec: pb.Codec, quality: int, started: pb.SessionStarted,
               src: VideoSource) -> FileSink | ImageSink:
    from .sink import FileSink, ImageSink, is_image_path

    if is_image_path(output):
        return ImageSink(output, quality)
    width, height = started.output_width or src.width, started.output_height or src.height
    return FileSink(output, codec, width, height, src.time_base, src.frame_rate)


def _output_codec(output: str | None, codec: pb.Codec, src: VideoSource, owned: bool) -> pb.Codec:
    from .sink import check_output, is_image_path

    """The codec to ask for: raw NV12 for a still image, which is encoded here.

    Raises ValueError before the session starts when `output` cannot be written, closing the
    source when it was opened here (`owned`)."""
    if not output:
        return codec
    if is_image_path(output):
        codec = pb.CODEC_RAW_NV12  # exact pictures; the image is encoded here
    try:
        check_output(output, codec, src.still)
    except ValueError:
        if owned:
            src.close()
        raise
    return codec


def _session_config(src: VideoSource, output: pb.OutputConfig, effects: EffectsArg, *, faces: bool,
                    landmarks: bool, realtime: bool, backend: pb.Backend) -> pb.SessionConfig:
    return pb.SessionConfig(
        input=src.input_config(),
        output=output,
        effects=effect_settings(effects),
        return_faces=faces or landmarks,  # landmarks come with their faces
        return_landmarks=landmarks,
        drop_policy=pb.DROP_POLICY_REALTIME if realtime else pb.DROP_POLICY_LOSSLESS,
        backend=backend,
    )


def _source_failure(sender: asyncio.Task[None] | None) -> BaseException | None:
    """What the packet sender failed with, when reading the source ended the session."""
    if sender is None or not sender.done() or sender.cancelled():
        return None
    return sender.exception()


@dataclass
class _Outputs:
    """Where each processed frame goes: the output file, the faces file and the callbacks."""

    on_frame: Callable[[FrameResult], Awaitable[None] | None] | None = None
    progress: Callable[[FrameResult], None] | None = None
    sink: FileSink | ImageSink | None = None
    faces_file: TextIO | None = None
    decoder: FrameDecoder | None = None

    async def deliver(self, frame: FrameResult) -> None:
        packet = frame.packet
        if self.sink:
            self.sink.write(packet)
        if self.faces_file:
            self.faces_file.write(json.dumps({"pts": packet.pts, "frame_index": packet.frame_index,
                                              "faces": [face_dict(f) for f in packet.faces]}) + "\n")
        if self.on_frame:
            if self.decoder:
                images = self.decoder.decode(packet)
                frame.image = images[0] if images else None
            ret = self.on_frame(frame)
            if asyncio.iscoroutine(ret):
                await ret
        if self.progress:
            self.progress(frame)

    def close(self) -> None:
        if self.sink:
            self.sink.close()
        if self.faces_file:
            self.faces_file.close()


class FaceStreamClient:
    """Talks to one server or several; use as `async with FaceStreamClient("host:port") as client`.

    `target`: an address, several (a list, or "host1:50051,host2:50051"), or a name that resolves to
    several (`dns:///name:port`). `failover_seconds`: how long a stream whose server failed looks for
    another server to resume on; by default 10 where the targets name several servers, else 0 (the
    error is raised). While it is above 0, a server that reports itself not ready through the gRPC
    health service (loading, draining, full) is sent no new sessions."""

    def __init__(
        self,
        target: str | Sequence[str] = "127.0.0.1:50051",
        *,
        credentials: grpc.ChannelCredentials | None = None,
        metadata: Sequence[tuple[str, str]] = (),
        options: Sequence[tuple[str, Any]] = (),
        failover_seconds: float | None = None,
    ) -> None:
        targets = split_targets(target)
        if failover_seconds is None:
            failover_seconds = DEFAULT_FAILOVER_SECONDS if names_several_servers(targets) else 0.0
        self.failover_seconds = failover_seconds
        self.endpoints = Endpoints(targets, credentials, channel_options(options, health_gated=failover_seconds > 0))
        first = self.endpoints.endpoints[0]
        self.channel, self.stub = first.channel, first.stub  # the first server's
        self.metadata = tuple(metadata)

    async def __aenter__(self) -> "FaceStreamClient":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def close(self) -> None:
        await self.endpoints.close()

    def live(self, config: pb.SessionConfig, *, on_failover: OnFailover | None = None) -> LiveSession:
        """A session fed frame by frame (see client/live.py); `async with client.live(cfg) as s:`.
        `on_failover` is called with each move to another server once the stream has resumed."""
        return LiveSession(self, config, on_failover=on_failover)

    async def capabilities(self) -> pb.Capabilities:
        """What the servers support (asked of the first that answers)."""
        attempts: list[tuple[str, FaceStreamError]] = []
        for endpoint in self.endpoints.rotation():
            try:
                return await endpoint.stub.GetCapabilities(pb.GetCapabilitiesRequest(), metadata=self.metadata)
            except grpc.aio.AioRpcError as exc:
                error = FaceStreamError(exc.code(), exc.details() or "")
            if error.code not in REFUSED:
                raise error
            attempts.append((endpoint.target, error))
        raise refused(attempts)

    async def process(
        self,
        source: VideoSource | str,
        *,
        output: str | None = None,
        output_codec: pb.Codec = pb.CODEC_H264,
        quality: int = 0,
        effects: EffectsArg = None,
        effect_updates: Mapping[int, EffectsArg] | None = None,
        return_faces: bool = False,
        return_landmarks: bool = False,
        faces_json: str | None = None,
        on_frame: Callable[[FrameResult], Awaitable[None] | None] | None = None,
        decode_frames: bool = False,
        realtime: bool = False,
        pace: bool = False,
        raw: bool = False,
        backend: pb.Backend = pb.BACKEND_AUTO,
        progress: Callable[[FrameResult], None] | None = None,
        on_failover: OnFailover | None = None,
    ) -> ProcessResult:
        """Streams `source` through a session and writes/hands over the result.

        `effect_updates` maps an input packet index to the effects to switch to just before that
        packet is sent. An `output` ending in an image extension (.jpg, .png, ...) takes a still
        image in and writes the processed picture; an output that cannot be written raises
        ValueError before the session starts. `pace` sends at the source frame rate, like a camera; otherwise as fast
        as the server takes packets. Raises FaceStreamError with the server's status. When the
        server fails mid-stream and the stream moves to another, `on_failover` is told and
        `ProcessResult.failovers` lists the frames lost.
        """
        from .source import VideoSource

        src = source if isinstance(source, VideoSource) else VideoSource(source, raw=raw)
        output_codec = _output_codec(output, output_codec, src, owned=src is not source)
        config = _session_config(src, pb.OutputConfig(codec=output_codec, quality=quality), effects,
                                 faces=return_faces or faces_json is not None, landmarks=return_landmarks,
                                 realtime=realtime, backend=backend)
        session = LiveSession(self, config, on_failover=on_failover)
        outputs = _Outputs(on_frame, progress)
        sender: asyncio.Task[None] | None = None
        try:
            started = await session.start()
            sender = asyncio.create_task(_send(session, src, effect_updates or {}, pace))
            if output:
                outputs.sink = _open_sink(output, output_codec, quality, started, src)
            if faces_json:
                outputs.faces_file = open(faces_json, "w")
            if on_frame and decode_frames:
                from .sink import FrameDecoder

                outputs.decoder = FrameDecoder(output_codec, src.width, src.height)
            result = ProcessResult(started, pb.SessionStats(), 0, failovers=session.failovers)
            async for live in session.results():
                frame = FrameResult(live.packet, live.latency_ms)
                result.frames += 1
                result.latencies_ms.append(frame.latency_ms)
                await outputs.deliver(frame)
            await sender
            result.stats = session.stats or result.stats
            return result
        except asyncio.CancelledError:
            failed = _source_failure(sender)
            if failed:
                raise SourceError(f"reading the video source {src.url!r} failed: {failed}") from failed
            raise
        finally:
            await session.close()
            if sender is not None:
                sender.cancel()
                await asyncio.gather(sender, return_exceptions=True)
            outputs.close()
            if src is not source:
                src.close()


async def _send(session: LiveSession, src: VideoSource, updates: Mapping[int, EffectsArg], pace: bool) -> None:
    interval = float(1 / src.frame_rate) if pace else 0.0
    start = time.perf_counter()
    packets = iter(src)
    index = 0
    try:
        while (packet := await _next(packets)) is not None:
            if index in updates:
                await session.update_effects(updates[index])
            if interval:
                await asyncio.sleep(max(0.0, start + index * interval - time.perf_counter()))
            await session.send(packet.data, packet.pts)
            index += 1
        await session.end()
    except FaceStreamError:
        pass  # the session ended with an error (the server failed it): the reader reports why
    except Exception:
        await session.close()  # the source failed: end the session instead of leaving it waiting for packets
        raise
