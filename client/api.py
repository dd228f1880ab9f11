"""The asyncio client: open sessions, stream a source through the server, collect the result."""
from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Mapping, Sequence, TextIO

import grpc

from facestream.proto import pb, rpc

from .sink import FileSink, FrameDecoder, ImageSink, check_output, is_image_path
from .source import SourceError, VideoSource

if TYPE_CHECKING:
    from .live import LiveSession

EffectsArg = Mapping[str, float] | Sequence[pb.Effect] | pb.EffectSettings | None


_STATUS_BY_NUMBER = {code.value[0]: code for code in grpc.StatusCode}


class FaceStreamError(Exception):
    """The server ended the session with an error status; `code` is the gRPC status code."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message


def _stream_error(error: pb.StreamError) -> FaceStreamError:
    return FaceStreamError(_STATUS_BY_NUMBER.get(error.code, grpc.StatusCode.UNKNOWN), error.message)


def effect_settings(effects: EffectsArg) -> pb.EffectSettings:
    """Accepts {"smooth": 0.6}, a list of pb.Effect, or pb.EffectSettings (for per-face settings)."""
    if effects is None:
        return pb.EffectSettings()
    if isinstance(effects, pb.EffectSettings):
        return effects
    if isinstance(effects, Mapping):
        return pb.EffectSettings(effects=[pb.Effect(name=k, strength=v) for k, v in effects.items()])
    return pb.EffectSettings(effects=list(effects))


def parse_effects(text: str) -> dict[str, float]:
    """"smooth=0.6,eyes=0.3" -> {"smooth": 0.6, "eyes": 0.3}."""
    out: dict[str, float] = {}
    for item in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"effect {item!r} needs a strength, for example {item}=0.5")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            raise ValueError(f"effect {name!r}: strength {value!r} is not a number") from None
    return out


def face_dict(face: pb.Face) -> dict[str, Any]:
    d: dict[str, Any] = {
        "id": face.id,
        "box": [face.box.x, face.box.y, face.box.width, face.box.height],
        "score": round(face.score, 4),
        "keypoints": [list(face.keypoints[i : i + 2]) for i in range(0, len(face.keypoints), 2)],
    }
    if face.landmarks:
        d["landmarks"] = [list(face.landmarks[i : i + 3]) for i in range(0, len(face.landmarks), 3)]
    return d


@dataclass
class FrameResult:
    """One processed frame as it came back."""

    packet: pb.OutputPacket
    latency_ms: float
    image: Any = None  # decoded picture when the callback asked for images


@dataclass
class ProcessResult:
    started: pb.SessionStarted
    stats: pb.SessionStats
    frames: int
    latencies_ms: list[float] = field(default_factory=list)


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
    if is_image_path(output):
        return ImageSink(output, quality)
    width, height = started.output_width or src.width, started.output_height or src.height
    return FileSink(output, codec, width, height, src.time_base, src.frame_rate)


def _output_codec(output: str | None, codec: pb.Codec, src: VideoSource, owned: bool) -> pb.Codec:
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


async def _start(call, config: pb.SessionConfig) -> pb.SessionStarted:
    """Sends the configuration; the server's first message either starts the session or says why not."""
    await call.write(pb.ProcessRequest(config=config))
    first = await call.read()
    if first is not grpc.aio.EOF and first.WhichOneof("msg") == "error":
        raise _stream_error(first.error)
    if first is grpc.aio.EOF or first.WhichOneof("msg") != "started":
        raise FaceStreamError(grpc.StatusCode.INTERNAL, "the server did not start the session")
    return first.started


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


async def _receive(call, sent_at: dict[int, float], outputs: _Outputs, result: ProcessResult) -> None:
    """Reads the processed packets and the final stats until the server ends the stream."""
    while (resp := await call.read()) is not grpc.aio.EOF:
        kind = resp.WhichOneof("msg")
        if kind == "error":
            raise _stream_error(resp.error)
        if kind == "stats":
            result.stats = resp.stats
            continue
        packet = resp.packet
        sent = sent_at.pop(packet.pts, None)
        frame = FrameResult(packet, (time.perf_counter() - sent) * 1000.0 if sent else float("nan"))
        result.frames += 1
        result.latencies_ms.append(frame.latency_ms)
        await outputs.deliver(frame)


class FaceStreamClient:
    """Talks to one server; use as `async with FaceStreamClient("host:port") as client`."""

    def __init__(
        self,
        target: str = "127.0.0.1:50051",
        *,
        credentials: grpc.ChannelCredentials | None = None,
        metadata: Sequence[tuple[str, str]] = (),
        options: Sequence[tuple[str, Any]] = (),
    ) -> None:
        opts = [("grpc.max_receive_message_length", 64 << 20), ("grpc.max_send_message_length", 64 << 20), *options]
        if credentials is None:
            self.channel = grpc.aio.insecure_channel(target, options=opts)
        else:
            self.channel = grpc.aio.secure_channel(target, credentials, options=opts)
        self.stub = rpc.FaceStreamStub(self.channel)
        self.metadata = tuple(metadata)

    async def __aenter__(self) -> "FaceStreamClient":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def close(self) -> None:
        await self.channel.close()

    def live(self, config: pb.SessionConfig) -> LiveSession:
        """A session fed frame by frame (see client/live.py); `async with client.live(cfg) as s:`."""
        from .live import LiveSession

        return LiveSession(self, config)

    async def capabilities(self) -> pb.Capabilities:
        try:
            return await self.stub.GetCapabilities(pb.GetCapabilitiesRequest(), metadata=self.metadata)
        except grpc.aio.AioRpcError as exc:
            raise FaceStreamError(exc.code(), exc.details() or "") from None

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
    ) -> ProcessResult:
        """Streams `source` through a session and writes/hands over the result.

        `effect_updates` maps an input packet index to the effects to switch to just before that
        packet is sent. An `output` ending in an image extension (.jpg, .png, ...) takes a still
        image in and writes the processed picture; an output that cannot be written raises
        ValueError before the session starts. `pace` sends at the source frame rate, like a camera; otherwise as fast
        as the server takes packets. Raises FaceStreamError with the server's status.
        """
        src = source if isinstance(source, VideoSource) else VideoSource(source, raw=raw)
        output_codec = _output_codec(output, output_codec, src, owned=src is not source)
        config = _session_config(src, pb.OutputConfig(codec=output_codec, quality=quality), effects,
                                 faces=return_faces or faces_json is not None, landmarks=return_landmarks,
                                 realtime=realtime, backend=backend)
        call = self.stub.Process(metadata=self.metadata)
        sent_at: dict[int, float] = {}
        outputs = _Outputs(on_frame, progress)
        sender: asyncio.Task[None] | None = None
        try:
            started = await _start(call, config)
            sender = asyncio.create_task(self._send(call, src, sent_at, effect_updates or {}, pace))
            if output:
                outputs.sink = _open_sink(output, output_codec, quality, started, src)
            if faces_json:
                outputs.faces_file = open(faces_json, "w")
            if on_frame and decode_frames:
                outputs.decoder = FrameDecoder(output_codec, src.width, src.height)
            result = ProcessResult(started, pb.SessionStats(), 0)
            await _receive(call, sent_at, outputs, result)
            await sender
            return result
        except grpc.aio.AioRpcError as exc:
            raise FaceStreamError(exc.code(), exc.details() or "") from None
        except asyncio.CancelledError:
            failed = _source_failure(sender)
            if failed:
                raise SourceError(f"reading the video source {src.url!r} failed: {failed}") from failed
            raise
        finally:
            call.cancel()
            if sender is not None:
                sender.cancel()
                await asyncio.gather(sender, return_exceptions=True)
            outputs.close()
            if src is not source:
                src.close()

    async def _send(self, call, src: VideoSource, sent_at: dict[int, float],
                    updates: Mapping[int, EffectsArg], pace: bool) -> None:
        interval = float(1 / src.frame_rate) if pace else 0.0
        start = time.perf_counter()
        packets = iter(src)
        index = 0
        try:
            while (packet := await _next(packets)) is not None:
                if index in updates:
                    update = pb.EffectsUpdate(effects=effect_settings(updates[index]))
                    await call.write(pb.ProcessRequest(effects_update=update))
                if interval:
                    await asyncio.sleep(max(0.0, start + index * interval - time.perf_counter()))
                sent_at[packet.pts] = time.perf_counter()
                await call.write(pb.ProcessRequest(packet=pb.Packet(data=packet.data, pts=packet.pts)))
                index += 1
            await call.write(pb.ProcessRequest(end=pb.EndOfStream()))
            await call.done_writing()
        except (grpc.aio.AioRpcError, asyncio.InvalidStateError):
            pass  # the call already ended (the server failed the session); the reader reports why
        except Exception:
            call.cancel()  # the source failed: end the session instead of leaving it waiting for packets
            raise
