"""The real-time policy under load: frames whose vision is skipped keep their effects, on faces carried
from the last frames vision ran on, so a viewer never sees the beauty effects switch off and on."""
from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from facestream.client import FaceStreamClient, VideoSource
from facestream.client.protocol import effect_settings
from facestream.engines.cpu_backend import CpuBackend
from facestream.engines.effects.cpu import CpuEffects
from facestream.engines.frame import Frame
from facestream.engines.vision.cpu import CpuVision
from facestream.engines.vision.face import MAX_CARRY_FRAMES, Face, FaceCarry
from facestream.engines.vision.tracking import OneEuro
from facestream.proto import pb
from facestream.server.plan import effect_settings as engine_settings

from support import CLIP, target

EFFECTS = {"smooth": 0.9, "whiten": 0.6, "lips": 0.5}
FPS = 30.0
FRAMES = 150          # five seconds of the clip, sent like a camera
STALL_S = 0.3         # vision stalls this long on one frame in STALL_EVERY ...
STALL_EVERY = 15
LATENCY_MS = 150      # ... so the frames behind it are past --realtime-latency-ms when vision would start


class StallingBackend(CpuBackend):
    """The CPU backend whose vision stalls on every STALL_EVERY-th frame: the frames that arrive meanwhile
    are late, so the real-time policy skips their vision (an overload that comes back the same way)."""

    def vision(self, max_faces, fps):
        inner = super().vision(max_faces, fps)

        class Stalling:
            def process(self, frame):
                if frame.index % STALL_EVERY == STALL_EVERY - 1:
                    time.sleep(STALL_S)
                return inner.process(frame)

            def close(self):
                inner.close()

        return Stalling()


async def stalling_server(server_factory):
    return await server_factory(resolve=lambda requested, output: StallingBackend("cpu, vision stalling"),
                                realtime_latency_ms=LATENCY_MS)


async def camera_session(srv, *, realtime: bool, output: pb.Codec) -> tuple[list[pb.OutputPacket], pb.SessionStats]:
    """The clip's first FRAMES packets through a live session, paced like a camera; the output packets and stats."""
    src = VideoSource(str(CLIP))
    try:
        config = pb.SessionConfig(
            input=src.input_config(), output=pb.OutputConfig(codec=output), effects=effect_settings(EFFECTS),
            return_faces=True, return_landmarks=True,
            drop_policy=pb.DROP_POLICY_REALTIME if realtime else pb.DROP_POLICY_LOSSLESS)
        packets = [p for p, _ in zip(src, range(FRAMES), strict=False)]
    finally:
        src.close()
    async with FaceStreamClient(target(srv)) as client, client.live(config) as live:
        async def send():
            start = time.perf_counter()
            for i, p in enumerate(packets):
                await asyncio.sleep(max(0.0, start + i / FPS - time.perf_counter()))
                await live.send(p.data, p.pts)
            await live.end()

        sender = asyncio.create_task(send())
        out = [r.packet async for r in live.results()]
        await sender
        assert live.stats is not None
        return out, live.stats


def fresh_faces(p: pb.OutputPacket) -> list[pb.Face]:
    return [f for f in p.faces if not f.carried]


def carried_faces(p: pb.OutputPacket) -> list[pb.Face]:
    return [f for f in p.faces if f.carried]


def face_was_tracked(out: list[pb.OutputPacket], i: int) -> bool:
    """Whether frame i had a face to carry: one measured within MAX_CARRY_FRAMES before it, by the last
    frame vision ran on (a frame with a fresh face, or one processed without any face)."""
    for p in reversed(out[max(0, i - MAX_CARRY_FRAMES):i]):
        if fresh_faces(p):
            return True
        if not p.faces and p.status != pb.FRAME_PASSED_THROUGH:
            return False
    return False


async def test_realtime_never_shows_a_tracked_face_unprocessed(server_factory):
    srv = await stalling_server(server_factory)
    out, stats = await camera_session(srv, realtime=True, output=pb.CODEC_H264)
    assert [p.frame_index for p in out] == list(range(FRAMES))
    carried = [f for p in out for f in carried_faces(p)]
    status = [p.status for p in out]
    print(f"\n{status.count(pb.FRAME_PROCESSED)} processed ({stats.frames_carried} with carried faces), "
          f"{status.count(pb.FRAME_PASSED_THROUGH)} passed through, {status.count(pb.FRAME_DROPPED)} dropped; "
          f"{len(carried)} faces carried, {stats.faces_fresh} fresh")
    assert len(carried) >= 10, "the stalls did not make the policy carry faces"
    for i, p in enumerate(out):
        if p.status == pb.FRAME_PASSED_THROUGH:
            assert not p.faces and not face_was_tracked(out, i), f"frame {i} had a tracked face but was passed through"
        elif p.status == pb.FRAME_PROCESSED and p.faces:
            assert p.data, f"frame {i} was processed but not encoded"
        for f in carried_faces(p):
            # carried from the last frame vision found it in, a few frames back
            assert 0 < p.frame_index - f.landmarks_frame <= MAX_CARRY_FRAMES
            source = {g.id: g for g in fresh_faces(out[f.landmarks_frame])}
            assert f.id in source
            assert len(f.landmarks) == len(source[f.id].landmarks)   # a mesh if it had one (not a detection only)
        for f in fresh_faces(p):
            assert f.landmarks_frame == p.frame_index
    # the stats count what the frames say
    processed_carrying = [p for p in out if p.status == pb.FRAME_PROCESSED and carried_faces(p)]
    assert stats.frames_carried == len(processed_carrying) > 0
    assert stats.faces_carried == len(carried)
    assert stats.faces_fresh == sum(len(fresh_faces(p)) for p in out)
    assert stats.faces_detected == stats.faces_fresh + stats.faces_carried
    assert stats.frames_passed_through == status.count(pb.FRAME_PASSED_THROUGH)
    assert stats.frames_dropped == status.count(pb.FRAME_DROPPED)
    # and so does Prometheus
    sample = srv.metrics.registry.get_sample_value
    assert sample("facestream_faces_total", {"landmarks": "carried"}) == stats.faces_carried
    assert sample("facestream_faces_total", {"landmarks": "fresh"}) == stats.faces_fresh
    assert sample("facestream_frames_carried_total") == stats.frames_carried


def _nv12(p: pb.OutputPacket) -> tuple[np.ndarray, np.ndarray]:
    a = np.frombuffer(p.data, np.uint8)
    y = a[: p.width * p.height].reshape(p.height, p.width)
    return y, a[p.width * p.height:].reshape(p.height // 2, p.width // 2, 2)


def _engine_face(f: pb.Face) -> Face:
    box = np.array([f.box.x, f.box.y, f.box.x + f.box.width, f.box.y + f.box.height], np.float32)
    landmarks = np.array(f.landmarks, np.float32).reshape(468, 3) if f.landmarks else None
    return Face(f.id, box, f.score, np.array(f.keypoints, np.float32).reshape(6, 2), landmarks)


async def test_carried_faces_get_their_effects_and_lossless_waits_for_vision(server_factory, clip_frames):
    srv = await stalling_server(server_factory)
    out, stats = await camera_session(srv, realtime=True, output=pb.CODEC_RAW_NV12)
    frames = clip_frames[:FRAMES]
    settings = engine_settings(effect_settings(EFFECTS), 0)
    carrying = [p for p in out if p.status == pb.FRAME_PROCESSED and carried_faces(p)]
    assert any(f.landmarks for p in carrying for f in carried_faces(p)), "no mesh was carried"
    for p in carrying:
        decoded = frames[p.frame_index]
        y, uv = _nv12(p)
        # the effects ran on the carried faces: what the output shows is the decoded picture with the
        # effects applied at the carried landmarks ...
        expected = Frame(decoded.y.copy(), decoded.uv.copy(), decoded.pts, decoded.index)
        CpuEffects().apply(expected, [_engine_face(f) for f in p.faces], settings)
        assert np.array_equal(y, expected.y) and np.array_equal(uv, expected.uv), p.frame_index
        # ... which a viewer sees: the faces do not look as decoded
        for f in (f for f in carried_faces(p) if f.landmarks):      # a detection alone gets no effects
            x0, y0 = int(f.box.x), int(f.box.y)
            region = (slice(max(0, y0), y0 + int(f.box.height)), slice(max(0, x0), x0 + int(f.box.width)))
            change = np.abs(y[region].astype(np.int16) - decoded.y[region]).mean()
            assert change > 0.5, (p.frame_index, f.id, change)
    for p in out:
        if p.status == pb.FRAME_PASSED_THROUGH:
            assert np.array_equal(_nv12(p)[0], frames[p.frame_index].y)
    assert stats.faces_carried > 0

    # The same overload in a lossless session: every frame waits for its own vision; the only faces
    # not measured in their frame are still ones, which keep their previous frame's mesh.
    out, stats = await camera_session(srv, realtime=False, output=pb.CODEC_RAW_NV12)
    assert [p.status for p in out] == [pb.FRAME_PROCESSED] * FRAMES
    assert all(f.landmarks_frame == p.frame_index - f.carried for p in out for f in p.faces)
    assert stats.faces_carried == sum(f.carried for p in out for f in p.faces)
    assert stats.faces_fresh > stats.faces_carried


# ---------------------------------------------------------------------------- the carry itself
def _face(track: int, x: float, landmarks: bool = True) -> Face:
    lm = np.stack([np.linspace(x, x + 100, 468), np.linspace(50, 150, 468), np.zeros(468)], 1).astype(np.float32)
    return Face(track, np.array([x, 50, x + 100, 150], np.float32), 0.9,
                np.tile(np.array([[x + 30, 80]], np.float32), (6, 1)), lm if landmarks else None)


def test_carry_moves_faces_by_their_velocity_scaled_by_the_frame_gap():
    carry = FaceCarry()
    carry.remember(10, [_face(1, 100.0), _face(2, 400.0)])
    carry.remember(12, [_face(1, 104.0), _face(2, 400.0)])    # track 1: 2 px per frame; track 2 still
    moved = {f.id: f for f in carry.carry(15)}
    assert moved[1].carried and moved[1].carried_from == 12
    # 3 frames after the last fresh one: 6 px on, box, keypoints and landmarks alike
    np.testing.assert_allclose(moved[1].box, [110, 50, 210, 150])
    np.testing.assert_allclose(moved[1].keypoints[:, 0], 140)
    np.testing.assert_allclose(moved[1].landmarks, _face(1, 110.0).landmarks, atol=1e-4)
    np.testing.assert_allclose(moved[2].box, [400, 50, 500, 150])
    # the fresh faces it remembers are not changed by carrying them
    np.testing.assert_allclose(carry.carry(13)[0].box, [106, 50, 206, 150])


def test_carry_is_bounded_and_follows_only_tracked_faces():
    carry = FaceCarry()
    carry.remember(0, [_face(1, 100.0), _face(3, 300.0, landmarks=False)])
    # one fresh frame: no velocity yet, the face stays where it was seen; a detection-only face keeps no landmarks
    first = {f.id: f for f in carry.carry(1)}
    np.testing.assert_allclose(first[1].box, [100, 50, 200, 150])
    assert first[3].landmarks is None and first[3].carried
    assert carry.carry(0) == []                                   # not into the frame it was measured in
    assert {f.id for f in carry.carry(MAX_CARRY_FRAMES)} == {1, 3}
    assert carry.carry(MAX_CARRY_FRAMES + 1) == []                # too old: the face counts as not tracked
    # a track the latest fresh frame lacks was lost: it is not carried
    carry.remember(2, [_face(1, 110.0)])
    assert [f.id for f in carry.carry(3)] == [1]
    np.testing.assert_allclose(carry.carry(3)[0].box[0], 115)     # 10 px over 2 frames: 5 px per frame
    # two fresh frames too far apart give no velocity to trust
    carry.remember(2 + MAX_CARRY_FRAMES + 1, [_face(1, 500.0)])
    np.testing.assert_allclose(carry.carry(2 + MAX_CARRY_FRAMES + 3)[0].box[0], 500)
    with pytest.raises(ValueError, match="max_age"):
        FaceCarry(0)


def test_tracking_after_skipped_frames_times_its_filters_by_the_gap(photo, monkeypatch):
    """Frames vision skipped count as the time they took: the One Euro filters of the next fresh frame
    step over the whole gap, and the smoothed face keeps up with a face that moved meanwhile."""
    steps: list[float] = []
    smooth = OneEuro.__call__

    def spy(self, x, dt, scale=1.0):
        steps.append(dt)
        return smooth(self, x, dt, scale)

    monkeypatch.setattr(OneEuro, "__call__", spy)
    base = photo("obama-720p.jpg")
    v = CpuVision(max_faces=1, fps=FPS)
    seen = list(range(0, 9)) + list(range(12, 60, 4))     # vision on every 4th frame after frame 8
    for i in seen:
        shift = 0 if i < 8 else 6 * (i - 7)               # 6 px per frame from frame 8 on
        y, uv = np.roll(base.y, shift, axis=1), np.roll(base.uv, shift // 2, axis=1)
        steps.clear()
        faces = v.process(Frame(y=y, uv=uv, pts=i, index=i))
        assert len(faces) == 1 and faces[0].id == 1
        assert steps and all(dt == pytest.approx((4 if i >= 12 else 1) / FPS) for dt in steps), (i, steps)
    ref = CpuVision(max_faces=1, smoothing=False).process(Frame(y=y, uv=uv, pts=0))
    lag = np.abs(faces[0].landmarks[:, 0] - ref[0].landmarks[:, 0]).mean()
    iod = np.linalg.norm(ref[0].landmarks[263, :2] - ref[0].landmarks[33, :2])
    assert lag < 0.05 * iod, (lag, iod)
    v.close()


def test_vision_is_skipped_when_late_or_expected_late_but_runs_on_every_other_frame_for_a_forecast():
    from facestream.server.realtime import RealtimePolicy

    policy = RealtimePolicy(True, latency_ms=20)
    queue: asyncio.Queue = asyncio.Queue(8)
    now = time.perf_counter()
    assert not policy.skip_vision(now, queue)                                # young, nothing expected
    assert policy.skip_vision(now - 0.025, queue, just_skipped=True)         # already late: always
    assert policy.skip_vision(now - 0.005, queue, vision_s=0.020)            # late by the end of its vision
    assert not policy.skip_vision(now - 0.005, queue, vision_s=0.020, just_skipped=True)  # ... not twice in a row
    assert not policy.skip_vision(now - 0.005, queue, vision_s=0.010)        # on time
    for _ in range(queue.maxsize - 1):
        queue.put_nowait(None)
    assert policy.skip_vision(now, queue, just_skipped=True)                 # the reader is about to stop
    assert not RealtimePolicy(False, latency_ms=20).skip_vision(now - 1.0, queue, vision_s=1.0)
