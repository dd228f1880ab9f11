"""Streams that survive a lost server: servers as separate processes on loopback, sessions spread
over them by the SDK, one server killed mid-stream (SIGKILL, as when its node dies). Its stream
resumes on another server at the next frame a new session can start with, and the caller is told
exactly which frames were lost."""
from __future__ import annotations

import asyncio

import grpc
import numpy as np
import pytest

from facestream.client import FaceStreamClient, FaceStreamError, FrameResult, VideoSource
from facestream.client.failover import Failover
from facestream.client.live import raw_config

from support import CLIP, CLIP_FRAMES, decode_file

OK_SESSIONS = 'facestream_sessions_total{code="OK"}'


def clip_packets() -> list[tuple[int, bool]]:
    """(pts, keyframe) of the clip's packets in decoding order, as PyAV's demuxer marks them."""
    import av

    with av.open(str(CLIP)) as container:
        stream = container.streams.video[0]
        return [(p.pts, p.is_keyframe) for p in container.demux(stream) if p.size]


async def test_sessions_spread_and_a_killed_server_s_stream_resumes_at_its_next_keyframe(serve, tmp_path):
    servers = serve(3)
    victim = servers[1]
    seen: list[list[FrameResult]] = [[], [], []]
    told: list[Failover] = []

    def on_frame(i: int):
        def keep(frame: FrameResult) -> None:
            seen[i].append(frame)
            if i == 1 and len(seen[1]) == 40:
                victim.kill()
        return keep

    async with FaceStreamClient([s.address for s in servers]) as client:
        results = await asyncio.gather(*[
            client.process(str(CLIP), output=str(tmp_path / f"out{i}.mp4"), effects={"smooth": 0.5},
                           pace=True, on_frame=on_frame(i), on_failover=told.append)
            for i in range(3)])

    # The streams on the other servers never noticed.
    for i in (0, 2):
        assert results[i].frames == CLIP_FRAMES and not results[i].failovers
    [move] = results[1].failovers
    assert told == [move]
    assert move.failed == victim.address and move.target in (servers[0].address, servers[2].address)
    assert move.error.code == grpc.StatusCode.UNAVAILABLE
    packets = clip_packets()
    keyframes = [pts for pts, key in packets if key]
    assert move.resumed_at in keyframes[1:], "it resumed at a keyframe after the kill"
    # Every frame either came back or was reported lost, none both.
    got = [f.packet.pts for f in seen[1]]
    assert move.lost and set(got).isdisjoint(move.lost)
    assert sorted(got + move.lost) == sorted(pts for pts, _ in packets)
    assert results[1].frames == len(got) == CLIP_FRAMES - len(move.lost) and results[1].lost == move.lost
    print(f"\nkilled after 40 frames back: {len(move.lost)} frames lost, resumed at keyframe "
          f"{keyframes.index(move.resumed_at)} of {len(keyframes)} on {move.target}")
    # Frames before and after the move are numbered as one stream; the file plays through the move.
    index = {pts: i for i, pts in enumerate(sorted(pts for pts, _ in packets))}
    assert [f.packet.frame_index for f in seen[1]] == [index[pts] for pts in got]
    assert len(decode_file(tmp_path / "out1.mp4")) == len(got)
    # One session on each server, the moved one on a survivor.
    assert sorted(s.metrics()[OK_SESSIONS] for s in (servers[0], servers[2])) == [1, 2]


def _nv12(frame) -> bytes:
    return np.ascontiguousarray(frame.y).tobytes() + np.ascontiguousarray(frame.uv).tobytes()


@pytest.mark.parametrize("form", ["targets", "one balanced target"])
async def test_a_live_session_of_raw_frames_moves_without_waiting(serve, clip_frames, form):
    """Raw pictures can all start a session: only the frames in flight on the killed server are lost.
    Settings changed before and after the move keep their versions. With one target that names both
    servers (as a DNS name of a headless Service does), the move happens within that target."""
    servers = serve(2)
    addresses = [s.address for s in servers]
    target = addresses if form == "targets" else "ipv4:" + ",".join(addresses)
    frames = clip_frames[:90]
    h, w = frames[0].y.shape
    pts = [3003 * i for i in range(len(frames))]
    results = []
    async with FaceStreamClient(target) as client:
        async with client.live(raw_config(w, h, effects={"smooth": 0.5}, realtime=False)) as live:
            victim = next(s for s in servers if s.metrics()["facestream_sessions_active"] == 1)
            survivor = next(s for s in servers if s is not victim)

            async def feed():
                for i, frame in enumerate(frames):
                    if i in (20, 60):
                        await live.update_effects({"smooth": 1.0 if i == 20 else 0.2})
                    await live.send(_nv12(frame), pts=pts[i])
                    await asyncio.sleep(1 / 30)
                await live.end()

            feeder = asyncio.create_task(feed())
            async for result in live.results():
                results.append(result)
                if len(results) == 30:
                    victim.kill()
            await feeder
    [move] = live.failovers
    assert move.failed == (victim.address if form == "targets" else target)
    resumed = pts.index(move.resumed_at)
    assert 30 <= resumed < 60
    assert move.lost == pts[resumed - len(move.lost):resumed], "only the frames in flight were lost"
    got = [r.packet.pts for r in results]
    assert sorted(got + move.lost) == pts
    assert [r.packet.frame_index for r in results] == [pts.index(p) for p in got]
    assert [r.packet.effects_version for r in results] == [
        0 if pts.index(p) < 20 else 1 if pts.index(p) < 60 else 2 for p in got]
    assert live.stats is not None and live.stats.frames_out == len(frames) - resumed
    assert survivor.metrics()[OK_SESSIONS] == 1


async def test_with_one_server_a_lost_server_ends_the_stream(serve):
    """Nowhere to move: the caller gets the error at once, as before."""
    [server] = serve(1)
    async with FaceStreamClient(server.address) as client:
        assert client.failover_seconds == 0

        def kill_early(frame: FrameResult) -> None:
            if frame.packet.frame_index == 10:
                server.kill()

        with pytest.raises(FaceStreamError) as err:
            await asyncio.wait_for(client.process(str(CLIP), pace=True, on_frame=kill_early), 60)
    assert err.value.code == grpc.StatusCode.UNAVAILABLE, err.value


@pytest.fixture(scope="module")
def hevc_clip(tmp_path_factory):
    """The clip's first 40 frames in HEVC with closed GOPs of 8 (IDR pictures, as live encoders send)."""
    import av

    path = tmp_path_factory.mktemp("media") / "closed_gop.mkv"
    with av.open(str(CLIP)) as src, av.open(str(path), "w") as dst:
        stream = src.streams.video[0]
        out = dst.add_stream("libx265", rate=stream.average_rate)
        out.width, out.height, out.pix_fmt = stream.width, stream.height, "yuv420p"
        out.codec_context.options = {"preset": "ultrafast",
                                     "x265-params": "log-level=error:keyint=8:min-keyint=8:open-gop=0:bframes=2"}
        for i, frame in enumerate(src.decode(stream)):
            if i == 40:
                break
            for p in out.encode(frame):
                dst.mux(p)
        for p in out.encode(None):
            dst.mux(p)
    return path


@pytest.mark.parametrize("clip", ["h264", "hevc"])
def test_the_sdk_finds_the_keyframes_the_demuxer_marks(clip, hevc_clip):
    """A resumed stream starts at a keyframe the SDK finds in the Annex-B data itself (it sees
    packets, not the demuxer's flags); raw pictures always qualify, VP9 and AV1 need the caller's word."""
    import av

    from facestream.client.keyframes import is_keyframe
    from facestream.proto import pb

    path = CLIP if clip == "h264" else hevc_clip
    with av.open(str(path)) as container:
        marked = [p.is_keyframe for p in container.demux(container.streams.video[0]) if p.size]
    source = VideoSource(str(path))
    try:
        found = [is_keyframe(source.codec, p.data) for p in source]
    finally:
        source.close()
    assert found == marked and found.count(True) > 1
    assert is_keyframe(pb.CODEC_RAW_NV12, b"\x00\x00\x01\x01") is True
    assert is_keyframe(pb.CODEC_VP9, b"\x82\x49\x83") is None
