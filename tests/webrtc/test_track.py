"""The bot kit's track on its own, fed by a plain track of the clip's frames (no network beyond the
gRPC loopback the other tests use): sizes that change mid-call, odd sizes, the H.264 wire, and
sessions the server refuses or cannot start."""
from __future__ import annotations

import asyncio

import grpc
import numpy as np
import pytest
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from facestream.client import FaceStreamClient
from facestream.client.webrtc import BeautifiedTrack

from support import CLIP, decode_file, free_port, target


class FramesTrack(MediaStreamTrack):
    """Plays the given frames at 60 fps, then ends."""

    kind = "video"

    def __init__(self, frames) -> None:
        super().__init__()
        self._frames = iter(frames)

    async def recv(self):
        await asyncio.sleep(1 / 60)
        frame = next(self._frames, None)
        if frame is None:
            self.stop()
            raise MediaStreamError
        return frame


@pytest.fixture(scope="module")
def clip():
    return decode_file(CLIP)[85:145]   # a face in every frame


async def play(track: BeautifiedTrack) -> list:
    frames = []
    try:
        while True:
            frames.append(await track.recv())
    except MediaStreamError:
        return frames


def sized(frames, width, height):
    return [f.reformat(width=width, height=height) for f in frames]


async def test_a_size_change_starts_a_new_session_and_keeps_the_settings(server, clip):
    async with FaceStreamClient(target(server)) as client:
        source = FramesTrack(sized(clip[:30], 640, 360) + sized(clip[30:], 480, 270))
        track = BeautifiedTrack(source, client, effects={"smooth": 0.8}, max_in_flight=4)
        first = asyncio.create_task(track.recv())
        await asyncio.sleep(0.1)
        assert await track.update_effects({"smooth": 1.0, "lips": 0.5}) == 1
        frames = [await first, *await play(track)]
    sizes = [(f.width, f.height) for f in frames]
    assert sizes[0] == (640, 360) and sizes[-1] == (480, 270) and sizes == sorted(sizes, reverse=True)
    assert track.stats.effects_version == 1   # the new session started with the settings in force
    assert track.error is None and track.session_stats is not None
    assert track.stats.frames_with_faces >= 0.8 * track.stats.frames_out >= 0.8 * 50


async def test_odd_sizes_come_back_at_their_size(server, clip):
    async with FaceStreamClient(target(server)) as client:
        track = BeautifiedTrack(FramesTrack(sized(clip[:10], 321, 181)), client, effects={"smooth": 0.8})
        frames = await play(track)
    assert frames and {(f.width, f.height) for f in frames} == {(321, 181)}
    assert track.faces   # the last frame's faces are at hand


async def test_the_h264_wire_gives_the_same_pictures_as_raw_nv12(server, clip):
    pictures = {}
    async with FaceStreamClient(target(server)) as client:
        for wire in ("nv12", "h264"):
            track = BeautifiedTrack(FramesTrack(clip[:20]), client, effects={"smooth": 0.8}, wire=wire,
                                    max_in_flight=20)
            frames = await play(track)
            assert len(frames) == 20 and track.stats.frames_with_faces >= 15
            pictures[wire] = frames[-1].to_ndarray(format="gray").astype(np.float64)
    assert np.mean(np.abs(pictures["h264"] - pictures["nv12"])) < 3


async def test_settings_the_server_refuses_end_the_track_with_the_reason(server, clip):
    async with FaceStreamClient(target(server)) as client:
        track = BeautifiedTrack(FramesTrack(clip), client, effects={"glow": 0.5})
        with pytest.raises(MediaStreamError):
            await track.recv()
    assert track.error is not None and track.error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "glow" in track.error.message and track.readyState == "ended"


async def test_no_server_ends_the_track_with_the_reason(clip):
    async with FaceStreamClient(f"127.0.0.1:{free_port()}") as client:
        track = BeautifiedTrack(FramesTrack(clip), client)
        with pytest.raises(MediaStreamError):
            await track.recv()
    assert track.error is not None and track.error.code == grpc.StatusCode.UNAVAILABLE


def test_an_unknown_wire_is_refused_at_once():
    with pytest.raises(ValueError, match="nv12, h264"):
        BeautifiedTrack(FramesTrack([]), None, wire="vp8")  # type: ignore[arg-type]
