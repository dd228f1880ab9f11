"""A live session fed frame by frame, as the WebRTC and GStreamer integrations use it: a real
server, the clip's frames pushed one at a time while results are read, settings changed mid-stream."""
from __future__ import annotations

import asyncio

import grpc
import numpy as np
import pytest

from facestream.client import FaceStreamClient, FaceStreamError
from facestream.client.live import raw_config

from support import target


def _nv12(frame) -> bytes:
    return np.ascontiguousarray(frame.y).tobytes() + np.ascontiguousarray(frame.uv).tobytes()


async def test_frames_pushed_one_at_a_time_come_back_in_order_with_updates(server, clip_frames):
    frames = clip_frames[:60]
    h, w = frames[0].y.shape
    async with FaceStreamClient(target(server)) as client:
        async with client.live(raw_config(w, h, effects={"smooth": 0.5}, realtime=False)) as live:
            assert live.started.output_width == w and live.started.output_height == h

            async def feed():
                for i, f in enumerate(frames):
                    if i == 30:
                        assert await live.update_effects({"smooth": 1.0, "eyes": 0.4}) == 1
                    await live.send(_nv12(f), pts=1000 + 3003 * i)
                await live.end()

            feeder = asyncio.create_task(feed())
            results = [r async for r in live.results()]
            await feeder
    assert [r.packet.pts for r in results] == [1000 + 3003 * i for i in range(60)]
    versions = [r.packet.effects_version for r in results]
    assert versions[:30] == [0] * 30 and versions[-1] == 1 and versions == sorted(versions)
    assert sum(1 for r in results if r.packet.faces) >= 30
    assert all(r.latency_ms > 0 for r in results)
    assert live.stats is not None and live.stats.frames_out == 60
    first = np.frombuffer(results[0].packet.data, np.uint8)[: w * h].reshape(h, w)
    assert not np.array_equal(first, frames[0].y), "the effects changed the picture"


async def test_a_bad_frame_ends_the_session_with_the_reason(server, clip_frames):
    h, w = clip_frames[0].y.shape
    async with FaceStreamClient(target(server)) as client:
        async with client.live(raw_config(w, h)) as live:
            await live.send(b"too short", pts=0)
            with pytest.raises(FaceStreamError) as err:
                async for _ in live.results():
                    pass
    assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT and "bytes" in err.value.message
