"""`facestream-client relay IN_URL OUT_URL`: a live stream through a facestream session to where it was going.

OBS (or any RTMP encoder) pushes to the relay (`--listen`: the relay is the RTMP server) or the
relay pulls IN_URL; the video goes through one facestream session and the result is published to
OUT_URL (an rtmp:// ingest, or a file), with the audio packets copied untouched.

- H.264 and HEVC go to the server as they came (Annex-B access units); other codecs are decoded
  here and sent as raw NV12. The server's H.264 is muxed as it comes back, never re-encoded here.
- Every packet keeps its timestamps, so audio and video stay where the source put them: FFmpeg's
  interleaving muxer holds the audio until the video of the same time, which comes back later.
- The real-time drop policy (the default) keeps the delay bounded: a frame the server cannot
  process in time goes on unprocessed or is left out, and the stream goes on.
- When the server is unreachable or full, the relay says so and tries again with back-off; the
  video resumes at the next keyframe, the audio goes on once the output is open.
- When the input stops, the session is ended, its last pictures written and the output closed.
"""
from __future__ import annotations

import asyncio
import io
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Callable, Iterator

import av
import grpc

from facestream.proto import pb

from .api import EffectsArg, FaceStreamClient, FaceStreamError, effect_settings
from .live import LiveSession
from .sink import VIDEO_CONTAINERS
from .source import nv12_bytes

# Errors worth trying again: the server is down, restarting, draining or full.
RETRY = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.DEADLINE_EXCEEDED,
         grpc.StatusCode.ABORTED}
_ANNEXB = {"h264": (pb.CODEC_H264, "h264_mp4toannexb"), "hevc": (pb.CODEC_HEVC, "hevc_mp4toannexb")}
_STATUS = {pb.FRAME_PROCESSED: "processed", pb.FRAME_PASSED_THROUGH: "passed_through", pb.FRAME_DROPPED: "dropped"}
SRT_ROUTE = ("this FFmpeg has no SRT; bridge SRT to the relay with FFmpeg built with libsrt "
             "(ffmpeg -i 'srt://:9000?mode=listener' -c copy -f flv rtmp://127.0.0.1:1935/live/stream) or GStreamer "
             "(gst-launch-1.0 srtsrc uri='srt://:9000?mode=listener' ! tsdemux ! ... ! flvmux ! rtmpsink)")


class RelayError(RuntimeError):
    """The relay cannot go on: the input or output cannot be opened, or the server refused the session."""


def output_format(url: str, fmt: str | None = None) -> str:
    """The container to write: `fmt`, FLV for RTMP, else the file extension's."""
    if fmt:
        return fmt
    if url.startswith(("rtmp://", "rtmps://")):
        return "flv"
    if url.startswith("srt://"):
        raise RelayError(f"cannot publish to {url}: {SRT_ROUTE}")
    suffix = Path(url).suffix.lower()
    if suffix not in VIDEO_CONTAINERS:
        raise RelayError(f"cannot tell the output format of {url!r}; give --format (flv for RTMP, mpegts, ...)")
    return VIDEO_CONTAINERS[suffix]


def open_input(url: str, listen: bool) -> av.container.InputContainer:
    """Opens the live input; with `listen`, waits for a publisher to connect to `url`."""
    try:
        return av.open(url, options={"listen": "1"} if listen else {})
    except av.error.ProtocolNotFoundError:
        hint = f": {SRT_ROUTE}" if url.startswith("srt://") else ""
        raise RelayError(f"cannot open {url}: this FFmpeg does not have its protocol{hint}") from None
    except (av.error.FFmpegError, OSError) as exc:
        raise RelayError(f"cannot open {url}: {exc}") from None


@dataclass
class RelayStats:
    frames_in: int = 0
    processed: int = 0
    passed_through: int = 0
    dropped: int = 0
    audio_packets: int = 0
    sessions: int = 0

    def __str__(self) -> str:
        return (f"{self.frames_in} video frames in: {self.processed} processed, {self.passed_through} passed through, "
                f"{self.dropped} dropped, {self.frames_in - self.processed - self.passed_through - self.dropped} lost "
                f"while no session ran; {self.audio_packets} audio packets; {self.sessions} session(s)")


class Backoff:
    """1 s, 2 s, 4 s ... up to `longest` between tries; back to 1 s after a success."""

    def __init__(self, longest: float = 30.0) -> None:
        self.longest = longest
        self.delay = 1.0
        self.next_try = 0.0

    def failed(self) -> float:
        wait = self.delay
        self.next_try = time.monotonic() + wait
        self.delay = min(self.longest, self.delay * 2)
        return wait

    def succeeded(self) -> None:
        self.delay = 1.0

    @property
    def ready(self) -> bool:
        return time.monotonic() >= self.next_try


class Output:
    """The published stream: opened on the first processed picture (whose H.264 headers the container
    needs), with the input's audio stream copied."""

    HOLD_SECONDS = 10.0   # audio kept while no picture has come back yet

    def __init__(self, url: str, fmt: str, video_time_base: Fraction, audio: av.audio.AudioStream | None) -> None:
        self.url, self.format = url, fmt
        self._time_base = video_time_base
        self._audio_template = audio
        self._container: av.container.OutputContainer | None = None
        self._video: av.video.VideoStream | None = None
        self._audio: av.audio.AudioStream | None = None
        self._held: deque[av.Packet] = deque()
        self.video_packets = 0

    def _open(self, keyframe: bytes) -> None:
        # A one-picture H.264 stream read back gives the stream parameters with the server's SPS/PPS.
        with av.open(io.BytesIO(keyframe), format="h264") as probe:
            try:
                self._container = av.open(self.url, "w", format=self.format)
            except (av.error.FFmpegError, OSError) as exc:
                raise RelayError(f"cannot open the output {self.url}: {exc}") from None
            self._video = self._container.add_stream_from_template(probe.streams.video[0])
        self._video.time_base = self._time_base
        if self._audio_template is not None:
            self._audio = self._container.add_stream_from_template(self._audio_template)
        while self._held:
            self.audio(self._held.popleft())

    def video(self, packet: pb.OutputPacket) -> None:
        if self._container is None:
            self._open(packet.data)
        assert self._video is not None   # made with the container
        out = av.Packet(packet.data)
        out.pts = out.dts = packet.pts
        out.time_base = self._time_base
        out.is_keyframe = packet.keyframe
        out.stream = self._video
        self._mux(out)
        self.video_packets += 1

    def audio(self, packet: av.Packet) -> None:
        if self._container is None:
            self._held.append(packet)
            while self._held and _seconds(packet) - _seconds(self._held[0]) > self.HOLD_SECONDS:
                self._held.popleft()
            return
        packet.stream = self._audio
        self._mux(packet)

    def _mux(self, packet: av.Packet) -> None:
        assert self._container is not None
        try:
            self._container.mux(packet)
        except (av.error.FFmpegError, OSError) as exc:
            raise RelayError(f"writing to {self.url} failed: {exc}") from None

    def close(self) -> None:
        if self._container is not None:
            self._container.close()


def _seconds(packet: av.Packet) -> float:
    return float((packet.pts or 0) * packet.time_base) if packet.time_base else 0.0


class Relay:
    """One live input through facestream sessions (one at a time, a new one after a failure) to one output."""

    def __init__(self, client: FaceStreamClient, target: str, source: av.container.InputContainer, output: Output,
                 *, effects: EffectsArg = None, bitrate_kbps: int = 0, realtime: bool = True,
                 log: Callable[[str], None] = print) -> None:
        self._client, self._target = client, target
        self._source = source
        self._video = source.streams.video[0]
        self._audio = source.streams.audio[0] if source.streams.audio else None
        self._output = output
        self._effects, self._bitrate, self._realtime = effects, bitrate_kbps, realtime
        self._log = log
        name = self._video.codec_context.name
        self._codec, bsf = _ANNEXB.get(name, (pb.CODEC_RAW_NV12, ""))
        self._bsf = av.BitStreamFilterContext(bsf, self._video) if bsf else None
        self._live: LiveSession | None = None
        self._reader: asyncio.Task[None] | None = None
        self._backoff = Backoff()
        self._fatal: RelayError | None = None
        self.stats = RelayStats()

    def config(self) -> pb.SessionConfig:
        ctx, stream = self._video.codec_context, self._video
        tb = stream.time_base or Fraction(1, 1000)
        rate = Fraction(stream.average_rate or stream.guessed_rate or 30).limit_denominator(1001)
        return pb.SessionConfig(
            input=pb.InputConfig(codec=self._codec, width=ctx.width, height=ctx.height,
                                 time_base=pb.Rational(num=tb.numerator, den=tb.denominator),
                                 frame_rate=pb.Rational(num=rate.numerator, den=rate.denominator)),
            output=pb.OutputConfig(codec=pb.CODEC_H264, bitrate_kbps=self._bitrate),
            effects=effect_settings(self._effects),
            drop_policy=pb.DROP_POLICY_REALTIME if self._realtime else pb.DROP_POLICY_LOSSLESS,
            label="relay",
        )

    # -- input ------------------------------------------------------------------------------------

    def _demux(self, loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[av.Packet | None]) -> None:
        streams = [s for s in (self._video, self._audio) if s is not None]
        try:
            for packet in self._source.demux(*streams):
                if packet.size:
                    loop.call_soon_threadsafe(queue.put_nowait, packet)
        except (av.error.FFmpegError, OSError) as exc:
            # FFmpeg's RTMP server reports a publisher that stops as an I/O error
            loop.call_soon_threadsafe(self._log, f"the input stopped: {exc}")
        finally:
            loop.call_soon_threadsafe(queue.put_nowait, None)

    def _pictures(self, packet: av.Packet) -> Iterator[tuple[bytes, int]]:
        """What the session takes for one input packet: Annex-B access units, or decoded NV12 frames."""
        if self._bsf is not None:
            for out in self._bsf.filter(packet):
                yield bytes(out), out.pts if out.pts is not None else out.dts or 0
            return
        ctx = self._video.codec_context
        for frame in self._video.decode(packet):
            yield nv12_bytes(frame, ctx.width, ctx.height), frame.pts or 0

    # -- sessions --------------------------------------------------------------------------------------

    def _failed(self, exc: FaceStreamError) -> None:
        if exc.code not in RETRY:
            self._fatal = RelayError(f"the server at {self._target} refused the session: {exc}")
            return
        wait = self._backoff.failed()
        self._log(f"the server at {self._target} is unavailable ({exc}); trying again in {wait:g} s")

    async def _session(self, keyframe: bool) -> LiveSession | None:
        """The running session, or a new one when a keyframe can start it and it is time to try."""
        if self._live is not None:
            return self._live
        if not self._backoff.ready or (self._codec != pb.CODEC_RAW_NV12 and not keyframe):
            return None
        live = self._client.live(self.config())
        try:
            started = await asyncio.wait_for(live.start(), 10.0)
        except (FaceStreamError, TimeoutError) as exc:
            await live.close()
            self._failed(exc if isinstance(exc, FaceStreamError)
                         else FaceStreamError(grpc.StatusCode.DEADLINE_EXCEEDED, "no answer within 10 s"))
            return None
        self._backoff.succeeded()
        self.stats.sessions += 1
        backend = pb.Backend.Name(started.backend).removeprefix("BACKEND_").lower()
        self._log(f"session {started.session_id} started on {backend}")
        self._live = live
        self._reader = asyncio.create_task(self._read(live))
        return live

    async def _read(self, live: LiveSession) -> None:
        try:
            async for result in live.results():
                packet = result.packet
                field = _STATUS.get(packet.status, "processed")
                setattr(self.stats, field, getattr(self.stats, field) + 1)
                if packet.data:
                    self._output.video(packet)
        except FaceStreamError as exc:
            self._failed(exc)
        except RelayError as exc:
            self._fatal = exc
        finally:
            if self._live is live:
                self._live = None
            await live.close()

    async def _on_video(self, packet: av.Packet) -> None:
        self.stats.frames_in += 1
        live = await self._session(bool(packet.is_keyframe))
        if live is None:
            return
        try:
            for data, pts in self._pictures(packet):
                await live.send(data, pts)
        except FaceStreamError:
            pass   # the session has ended: its reader says why and a new one starts

    # -- the whole run -------------------------------------------------------------------------------

    async def run(self) -> RelayStats:
        """Relays until the input stops; raises RelayError when it cannot go on."""
        queue: asyncio.Queue[av.Packet | None] = asyncio.Queue()
        demuxer = threading.Thread(target=self._demux, args=(asyncio.get_running_loop(), queue),
                                   name="relay-input", daemon=True)
        demuxer.start()
        try:
            while (packet := await queue.get()) is not None:
                if self._fatal is not None:
                    raise self._fatal
                if packet.stream is self._video:
                    await self._on_video(packet)
                else:
                    self.stats.audio_packets += 1
                    self._output.audio(packet)
            await self._finish()
        finally:
            if self._reader is not None:
                self._reader.cancel()
                await asyncio.gather(self._reader, return_exceptions=True)
            self._output.close()
        if self._fatal is not None:
            raise self._fatal
        if not self._output.video_packets:
            raise RelayError(f"no picture came back from the server, so nothing was published to {self._output.url}")
        return self.stats

    async def _finish(self, timeout: float = 30.0) -> None:
        """The input has stopped: the session's last pictures are written before the output closes."""
        live, reader = self._live, self._reader
        if live is None or reader is None:
            return
        try:
            await live.end()
            await asyncio.wait_for(asyncio.shield(reader), timeout)
        except FaceStreamError:
            pass   # it had ended already; its reader said why
        except TimeoutError:
            self._log(f"the server did not finish the session within {timeout:g} s; closing the output")


async def relay(input_url: str, output_url: str, *, target: str, listen: bool = False, effects: EffectsArg = None,
                bitrate_kbps: int = 0, realtime: bool = True, fmt: str | None = None, api_key: str = "",
                log: Callable[[str], None] = print) -> RelayStats:
    """Runs one relay until its input stops; raises RelayError when it cannot (bad URL, refused session)."""
    out_format = output_format(output_url, fmt)
    if listen:
        log(f"listening on {input_url}; publish to it (OBS: Settings > Stream > Custom)")
    source = await asyncio.to_thread(open_input, input_url, listen)
    try:
        if not source.streams.video:
            raise RelayError(f"{input_url} has no video stream")
        audio = source.streams.audio[0] if source.streams.audio else None
        output = Output(output_url, out_format, source.streams.video[0].time_base or Fraction(1, 1000), audio)
        metadata = (("x-api-key", api_key),) if api_key else ()
        async with FaceStreamClient(target, metadata=metadata) as client:
            return await Relay(client, target, source, output, effects=effects, bitrate_kbps=bitrate_kbps,
                               realtime=realtime, log=log).run()
    finally:
        source.close()


def stderr_log(message: str) -> None:
    print(f"facestream-client relay: {message}", file=sys.stderr, flush=True)
