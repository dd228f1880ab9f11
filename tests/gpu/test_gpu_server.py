"""The full GPU pipeline serves the shared clip end to end over gRPC.

The client reads and writes MP4 files with PyAV: without it these tests skip with "pyav missing".
"""
from __future__ import annotations

import asyncio

import pytest

pytest.importorskip("av", reason="pyav missing: the client's file source and sink need PyAV")

from facestream.client import FaceStreamClient  # noqa: E402
from facestream.proto import pb  # noqa: E402

from support import CLIP, CLIP_FRAMES, decode_file, nv12, psnr, target  # noqa: E402

pytestmark = pytest.mark.gpu

EFFECTS = {"smooth": 0.7, "whiten": 0.4, "lips": 0.5, "blush": 0.4, "eyes": 0.4, "slim": 0.4, "sharpen": 0.3}


async def test_gpu_backend_serves_the_clip(server_factory, tmp_path, media):
    srv = await server_factory(backend="gpu")
    out = tmp_path / "out.mp4"
    async with FaceStreamClient(target(srv)) as client:
        caps = await client.capabilities()
        result = await client.process(str(CLIP), output=str(out), effects=EFFECTS, return_faces=True,
                                      backend=pb.BACKEND_GPU)
    assert result.started.backend == pb.BACKEND_GPU
    stages = {s.stage: s for s in result.started.stages}
    assert set(stages) == {"decode", "vision", "effects", "encode"}
    assert stages["effects"].device.startswith("gpu")
    assert result.frames == CLIP_FRAMES and result.stats.frames_out == CLIP_FRAMES
    ref, got = decode_file(CLIP), decode_file(out)
    assert len(got) == len(ref)
    # effects change faces only: the frame as a whole stays close to the input
    worst = min(psnr(nv12(a), nv12(b)) for a, b in zip(ref, got, strict=True))
    assert worst > 25, f"worst frame PSNR {worst:.1f} dB"
    gpu = next(b for b in caps.backends if b.backend == pb.BACKEND_GPU)
    assert gpu.available


async def test_gpu_without_effects_is_transparent(server_factory, tmp_path, media):
    srv = await server_factory(backend="gpu")
    out = tmp_path / "out.mp4"
    async with FaceStreamClient(target(srv)) as client:
        result = await client.process(str(CLIP), output=str(out), quality=95, backend=pb.BACKEND_GPU)
    assert result.frames == CLIP_FRAMES
    ref, got = decode_file(CLIP), decode_file(out)
    assert len(got) == len(ref)
    worst = min(psnr(nv12(a), nv12(b)) for a, b in zip(ref, got, strict=True))
    assert worst >= 35, f"worst frame PSNR {worst:.1f} dB"


async def test_auto_picks_the_gpu(server_factory, tmp_path, media):
    srv = await server_factory(backend="auto")
    async with FaceStreamClient(target(srv)) as client:
        result = await client.process(str(CLIP), output=str(tmp_path / "o.mp4"))
    assert result.started.backend == pb.BACKEND_GPU
    assert all(s.reason.startswith("auto: gpu:0") for s in result.started.stages)


async def test_concurrent_gpu_sessions(server_factory, tmp_path, media):
    srv = await server_factory(backend="gpu")
    async with FaceStreamClient(target(srv)) as client:
        results = await asyncio.gather(*[
            client.process(str(CLIP), output=str(tmp_path / f"o{i}.mp4"), effects={"smooth": 0.5},
                           backend=pb.BACKEND_GPU)
            for i in range(4)
        ])
    assert all(r.frames == CLIP_FRAMES for r in results)
