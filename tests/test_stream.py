"""A real server on a loopback port, the real client, real decoding of what comes back."""
from __future__ import annotations

import asyncio

import av
import numpy as np
import pytest

from facestream.client import FaceStreamClient, FrameResult, VideoSource
from facestream.proto import pb

from support import CLIP, CLIP_FRAMES, decode_file, nv12, psnr, target


def assert_same_video(reference_path, output_path, min_psnr=35.0):
    ref = decode_file(reference_path)
    out = decode_file(output_path)
    assert len(out) == len(ref)
    assert (out[0].width, out[0].height) == (ref[0].width, ref[0].height)
    # Containers keep their own time bases (Matroska: ms), so compare presentation times.
    times = [round(float(f.time), 3) for f in out]
    assert times == [round(float(f.time), 3) for f in ref], "output timestamps differ from input"
    worst = min(psnr(nv12(a), nv12(b)) for a, b in zip(ref, out, strict=True))
    assert worst >= min_psnr, f"worst frame PSNR {worst:.1f} dB"
    return worst


async def test_h264_clip_round_trip(server, tmp_path, media):
    out = tmp_path / "out.mp4"
    async with FaceStreamClient(target(server)) as client:
        result = await client.process(str(CLIP), output=str(out))
    assert result.frames == CLIP_FRAMES
    assert result.stats.frames_out == CLIP_FRAMES and result.stats.packets_in == CLIP_FRAMES
    assert result.started.backend == pb.BACKEND_CPU
    negotiated = result.started.config  # defaults filled in
    assert negotiated.output.codec == pb.CODEC_H264
    assert negotiated.input.time_base.den == 11988 and negotiated.input.frame_rate.num > 0
    assert_same_video(CLIP, out)


@pytest.fixture(scope="module")
def hevc_clip(tmp_path_factory):
    """The clip re-encoded to HEVC (with B-frames, so the decoder has to reorder)."""
    path = tmp_path_factory.mktemp("media") / "clip_hevc.mkv"
    with av.open(str(CLIP)) as src, av.open(str(path), "w") as dst:
        s = src.streams.video[0]
        out = dst.add_stream("libx265", rate=s.average_rate)
        out.width, out.height, out.pix_fmt = s.width, s.height, "yuv420p"
        out.codec_context.options = {"preset": "ultrafast", "x265-params": "log-level=error:crf=16:bframes=2"}
        for frame in src.decode(s):
            for p in out.encode(frame):
                dst.mux(p)
        for p in out.encode(None):
            dst.mux(p)
    return path


async def test_hevc_input_round_trip(server, tmp_path, hevc_clip):
    out = tmp_path / "out.mkv"
    async with FaceStreamClient(target(server)) as client:
        source = VideoSource(str(hevc_clip))
        assert source.codec == pb.CODEC_HEVC
        result = await client.process(source, output=str(out))
    assert result.frames == CLIP_FRAMES
    assert_same_video(hevc_clip, out)


async def test_raw_nv12_input_round_trip(server, tmp_path):
    out = tmp_path / "out.mp4"
    async with FaceStreamClient(target(server)) as client:
        source = VideoSource(str(CLIP), raw=True)
        assert source.codec == pb.CODEC_RAW_NV12
        result = await client.process(source, output=str(out))
    assert result.frames == CLIP_FRAMES
    assert_same_video(CLIP, out)


@pytest.mark.parametrize(
    "codec,suffix,min_psnr",
    [(pb.CODEC_HEVC, ".mkv", 35.0), (pb.CODEC_MJPEG, ".mkv", 35.0), (pb.CODEC_RAW_NV12, ".mkv", 99.0)],
)
async def test_output_codecs(server, tmp_path, codec, suffix, min_psnr):
    out = tmp_path / f"out{suffix}"
    async with FaceStreamClient(target(server)) as client:
        result = await client.process(str(CLIP), output=str(out), output_codec=codec)
    assert result.frames == CLIP_FRAMES
    assert_same_video(CLIP, out, min_psnr=min_psnr)


async def test_frames_to_callback_in_order_with_metadata(server):
    seen = []
    async with FaceStreamClient(target(server)) as client:
        result = await client.process(
            str(CLIP), on_frame=lambda f: seen.append(f), decode_frames=True, return_faces=True
        )
    assert len(seen) == CLIP_FRAMES == result.frames
    assert [f.packet.frame_index for f in seen] == list(range(CLIP_FRAMES))
    ref_pts = [f.pts for f in decode_file(CLIP)]
    assert [f.packet.pts for f in seen] == ref_pts
    assert all(f.image is not None and f.image.shape == (360, 640, 3) for f in seen)
    t = seen[10].packet.timings
    assert t.decode_ms > 0 and t.encode_ms > 0 and t.total_ms >= t.decode_ms + t.encode_ms
    assert all(f.packet.effects_version == 0 and f.packet.status == pb.FRAME_PROCESSED for f in seen)


async def test_concurrent_sessions_are_independent(server, tmp_path):
    async with FaceStreamClient(target(server)) as client:
        results = await asyncio.gather(
            *[client.process(str(CLIP), output=str(tmp_path / f"o{i}.mp4")) for i in range(3)]
        )
    assert [r.frames for r in results] == [CLIP_FRAMES] * 3
    assert len({r.started.session_id for r in results}) == 3
    for i in range(3):
        assert len(decode_file(tmp_path / f"o{i}.mp4")) == CLIP_FRAMES


async def test_capabilities(server):
    async with FaceStreamClient(target(server)) as client:
        caps = await client.capabilities()
    assert {pb.CODEC_H264, pb.CODEC_HEVC, pb.CODEC_RAW_NV12, pb.CODEC_RAW_I420} <= set(caps.input_codecs)
    assert {pb.CODEC_H264, pb.CODEC_HEVC, pb.CODEC_MJPEG, pb.CODEC_RAW_NV12} <= set(caps.output_codecs)
    assert {e.name for e in caps.effects} >= {"smooth", "whiten", "slim", "eyes", "lips", "blush", "sharpen",
                                              "denoise", "debug"}
    cpu = next(b for b in caps.backends if b.backend == pb.BACKEND_CPU)
    assert cpu.available
    assert caps.default_backend == pb.BACKEND_CPU
    # On a host without a GPU, auto runs on the CPU and every stage says why.
    assert all("auto: no usable GPU" in st.reason for st in cpu.stages)
    gpu = next(b for b in caps.backends if b.backend == pb.BACKEND_GPU)
    assert not gpu.available and gpu.detail
    assert caps.limits.max_width == 1920
    models = {(m.name, m.precision): m for m in caps.models}
    assert {("face_landmark", "fp32"), ("face_landmark", "int8"), ("face_detection_full_range", "fp32")} <= set(models)
    landmark = models["face_landmark", "fp32"]
    assert len(landmark.sha256) == 64 and landmark.runtime == "onnxruntime"


async def test_faces_reported_across_the_clip(server):
    frames: list[FrameResult] = []
    async with FaceStreamClient(target(server)) as client:
        result = await client.process(str(CLIP), return_landmarks=True, on_frame=frames.append)
    with_face = [f for f in frames if f.packet.faces]
    assert len(with_face) >= 226, f"a face in only {len(with_face)} of {CLIP_FRAMES} frames"
    face = with_face[0].packet.faces[0]
    assert len(face.keypoints) == 12 and len(face.landmarks) == 468 * 3
    assert 0 < face.box.x < 640 and 0 < face.box.y < 360 and face.box.width > 20
    # While the face is tracked from frame to frame, its ID stays the same.
    pairs = [(a.packet.faces[0].id, b.packet.faces[0].id) for a, b in zip(frames, frames[1:], strict=False)
             if len(a.packet.faces) == len(b.packet.faces) == 1]
    assert sum(x == y for x, y in pairs) >= 0.9 * len(pairs)
    assert result.stats.faces_detected == sum(len(f.packet.faces) for f in frames)


async def test_effects_update_mid_stream_applies_from_next_frame(server):
    """Lossless NV12 output: before the update frames are bit-identical to the input, after it faces change."""
    switch_at = 100
    frames: list[FrameResult] = []
    async with FaceStreamClient(target(server)) as client:
        await client.process(
            str(CLIP), output_codec=pb.CODEC_RAW_NV12, return_landmarks=True, on_frame=frames.append,
            effect_updates={switch_at: {"smooth": 1.0, "lips": 1.0}},
        )
    reference = [nv12(f) for f in decode_file(CLIP)]
    assert len(frames) == CLIP_FRAMES
    changed_with_face = 0
    for i, fr in enumerate(frames):
        out = np.frombuffer(fr.packet.data, np.uint8).reshape(reference[i].shape)
        if i < switch_at:
            assert fr.packet.effects_version == 0
            assert np.array_equal(out, reference[i]), f"frame {i} changed before the update"
        else:
            assert fr.packet.effects_version == 1
            if fr.packet.faces:
                diff = np.argwhere(out != reference[i])
                assert diff.size, f"frame {i} has a face but did not change"
                # Only pixels around the faces' meshes (plus the feathering) change.
                ys = np.concatenate([np.asarray(f.landmarks).reshape(-1, 3)[:, 1] for f in fr.packet.faces])
                margin = 0.3 * (ys.max() - ys.min())
                rows = diff[:, 0][diff[:, 0] < 360]
                assert ys.min() - margin <= rows.min() and rows.max() <= ys.max() + margin
                changed_with_face += 1
    assert changed_with_face > 100


class FailingSource(VideoSource):
    """The clip, until reading it fails after a few packets (a stream that drops, a corrupt file)."""

    def __iter__(self):
        for i, packet in enumerate(super().__iter__()):
            if i == 5:
                raise OSError("connection reset while reading the stream")
            yield packet


async def test_source_failure_ends_the_session(server):
    from facestream.client import SourceError

    async with FaceStreamClient(target(server)) as client:
        with pytest.raises(SourceError, match="connection reset while reading the stream"):
            await asyncio.wait_for(client.process(FailingSource(str(CLIP))), 30)
    for _ in range(50):  # the server frees the session as soon as the call is cancelled
        if not server.service.sessions:
            break
        await asyncio.sleep(0.1)
    assert not server.service.sessions


@pytest.mark.parametrize("codec", [pb.CODEC_H264, pb.CODEC_MJPEG])
async def test_output_quality_changes_the_size(server, codec):
    sizes = {}
    async with FaceStreamClient(target(server)) as client:
        for quality in (20, 90):
            frames: list[FrameResult] = []
            await client.process(str(CLIP), output_codec=codec, quality=quality, on_frame=frames.append)
            sizes[quality] = sum(len(f.packet.data) for f in frames)
    assert sizes[90] > 1.5 * sizes[20], sizes
