"""`facestream-client relay --listen` as OBS uses it: the shared clip (H.264 and AAC) pushed over RTMP at its
own pace, the relay's output read back from a file; and a server that is not there yet."""
from __future__ import annotations

import asyncio
import time
from asyncio.subprocess import PIPE
from dataclasses import dataclass, field
from pathlib import Path

import av
import pytest

from facestream.client.health import wait_serving
from facestream.client.relay import Backoff, RelayError, output_format

from support import BIN, CLIP, CLIP_FRAMES, free_port, target

FRAME_MS = 1000 / 29.97


@dataclass
class Pushed:
    """What went over RTMP, in FLV's milliseconds."""

    video_pts: list[int] = field(default_factory=list)
    audio: list[tuple[int, bytes]] = field(default_factory=list)


def connect(url: str, src: av.container.InputContainer, deadline: float) -> av.container.OutputContainer:
    """An FLV publisher connected to `url` (retrying until the relay listens), with the clip's two streams."""
    give_up = time.monotonic() + deadline
    while True:
        out = av.open(url, "w", format="flv")
        for stream in (src.streams.video[0], src.streams.audio[0]):
            out.add_stream_from_template(stream)
        try:
            out.start_encoding()   # connects
            return out
        except OSError:
            if time.monotonic() > give_up:
                raise
            time.sleep(0.2)


def push(url: str, deadline: float = 20.0) -> Pushed:
    """Publishes the clip to `url` at its own pace, as an encoder would."""
    pushed = Pushed()
    with av.open(str(CLIP)) as src:
        out = connect(url, src, deadline)
        streams = dict(zip((src.streams.video[0].index, src.streams.audio[0].index), out.streams, strict=True))
        start, first = time.monotonic(), None
        for packet in src.demux():
            if packet.dts is None:
                continue
            at = float(packet.dts * packet.time_base)
            first = at if first is None else first
            time.sleep(max(0.0, start + at - first - time.monotonic()))
            kind = packet.stream.type
            data = bytes(packet)
            packet.stream = streams[packet.stream.index]
            out.mux(packet)   # rebases the timestamps to the FLV stream's milliseconds
            if kind == "video":
                pushed.video_pts.append(packet.pts)
            else:
                pushed.audio.append((packet.pts, data))
        out.close()
    return pushed


def read_back(path: Path) -> tuple[list[int], list[tuple[int, bytes]], int]:
    """Video pts, audio (pts, payload) and the number of decodable pictures of the relay's output."""
    video, audio, pictures = [], [], 0
    with av.open(str(path)) as c:
        for packet in c.demux():
            if not packet.size:
                continue
            if packet.stream.type == "video":
                video.append(packet.pts)
                pictures += len(packet.decode())
            else:
                audio.append((packet.pts, bytes(packet)))
    return video, audio, pictures


async def start_relay(server_address: str, url: str, out: Path, *flags: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        str(BIN / "facestream-client"), "--server", server_address, "relay", "--listen", url, str(out), *flags,
        stdout=PIPE, stderr=PIPE)


async def finished(proc: asyncio.subprocess.Process, timeout: float = 120) -> str:
    try:
        _, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        pytest.fail(f"the relay still ran {timeout:g} s after its input stopped")
    return err.decode()


async def test_relay_processes_every_frame_and_keeps_the_audio_in_sync(server, tmp_path):
    url, out = f"rtmp://127.0.0.1:{free_port()}/live/stream", tmp_path / "out.flv"
    proc = await start_relay(target(server), url, out, "--effects", "smooth=1.0,eyes=0.5", "--lossless")
    pushed = await asyncio.to_thread(push, url)
    log = await finished(proc)
    assert proc.returncode == 0, log
    assert f"{CLIP_FRAMES} video frames in: {CLIP_FRAMES} processed" in log
    video, audio, pictures = read_back(out)
    assert pictures == CLIP_FRAMES
    assert video == sorted(pushed.video_pts), "every frame, at the time it was pushed with"
    assert audio == pushed.audio, "every audio packet, untouched, at its time"
    offset_in = pushed.video_pts[0] - pushed.audio[0][0]
    offset_out = video[0] - audio[0][0]
    assert abs(offset_out - offset_in) <= FRAME_MS


async def test_relay_waits_for_a_server_that_is_not_there_yet(tmp_path):
    port = free_port()
    url, out = f"rtmp://127.0.0.1:{free_port()}/live/stream", tmp_path / "out.flv"
    proc = await start_relay(f"127.0.0.1:{port}", url, out)
    pushing = asyncio.create_task(asyncio.to_thread(push, url))
    await asyncio.sleep(3.0)   # the relay has taken the stream and found no server
    server = await asyncio.create_subprocess_exec(
        str(BIN / "facestream"), "serve", "--port", str(port), "--backend", "cpu", stdout=PIPE, stderr=PIPE)
    try:
        await asyncio.to_thread(wait_serving, f"127.0.0.1:{port}")
        pushed = await pushing
        log = await finished(proc)
    finally:
        server.kill()
        await server.wait()
    assert proc.returncode == 0, log
    assert f"the server at 127.0.0.1:{port} is unavailable (UNAVAILABLE" in log
    assert "trying again in 1 s" in log and "started on cpu" in log, log
    video, audio, pictures = read_back(out)
    assert 0 < pictures < CLIP_FRAMES and set(video) <= set(pushed.video_pts)
    assert audio[-1] == pushed.audio[-1], "the audio goes on to the end"


def test_backoff_doubles_to_its_longest_and_starts_over_after_a_success():
    backoff = Backoff(longest=5.0)
    assert backoff.ready
    assert [backoff.failed() for _ in range(5)] == [1.0, 2.0, 4.0, 5.0, 5.0]
    assert not backoff.ready
    backoff.succeeded()
    assert backoff.failed() == 1.0


def test_output_formats_and_the_srt_route():
    assert output_format("rtmp://live.example/app/key") == "flv"
    assert output_format("/tmp/out.ts") == "mpegts"
    assert output_format("/tmp/out", "matroska") == "matroska"
    with pytest.raises(RelayError, match="gst-launch-1.0 srtsrc"):
        output_format("srt://127.0.0.1:9000")
    with pytest.raises(RelayError, match="--format"):
        output_format("/tmp/out.unknown")
