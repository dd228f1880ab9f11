"""Shared fixtures: the test media, a real server on a loopback port, and decoding helpers."""
from __future__ import annotations

import os
from pathlib import Path

import av
import numpy as np
import pytest

from facestream.server.app import FaceStreamServer
from facestream.server.config import ServerConfig

REPO = Path(__file__).resolve().parents[1]
MEDIA = Path(os.environ.get("FACESTREAM_MEDIA", REPO.parent / "shared" / "media"))
CLIP = MEDIA / "short_hamilton_clip.mp4"
CLIP_FRAMES = 275


def pytest_collection_modifyitems(config, items):
    """GPU and TensorRT tests skip cleanly where the hardware or library is missing."""
    from facestream.engines.backend import probe_gpu

    gpu = probe_gpu()
    try:
        import tensorrt  # noqa: F401

        has_trt = True
    except ImportError:
        has_trt = False
    for item in items:
        if "gpu" in item.keywords and not gpu.available:
            item.add_marker(pytest.mark.skip(reason=f"no GPU: {gpu.detail}"))
        if "tensorrt" in item.keywords and not has_trt:
            item.add_marker(pytest.mark.skip(reason="TensorRT is not installed"))


@pytest.fixture(scope="session")
def media() -> Path:
    if not CLIP.exists():
        pytest.fail(f"test media not found at {MEDIA}; the shared/ folder must sit beside the checkout")
    return MEDIA


@pytest.fixture
async def server_factory():
    """Starts real servers on free loopback ports; all are stopped at the end of the test."""
    servers: list[FaceStreamServer] = []

    async def start(**overrides) -> FaceStreamServer:
        cfg = ServerConfig(host="127.0.0.1", port=0, **overrides)
        srv = FaceStreamServer(cfg)
        await srv.start()
        servers.append(srv)
        return srv

    yield start
    for srv in servers:
        await srv.stop(0)


@pytest.fixture
async def server(server_factory) -> FaceStreamServer:
    return await server_factory()


def target(srv: FaceStreamServer) -> str:
    return f"127.0.0.1:{srv.port}"


def decode_file(path: str | Path) -> list[av.VideoFrame]:
    with av.open(str(path)) as c:
        return list(c.decode(c.streams.video[0]))


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def nv12(frame: av.VideoFrame) -> np.ndarray:
    """NV12 in video (limited) range; JPEG frames come in full range and are converted."""
    if frame.format.name.startswith("yuvj"):
        frame = frame.reformat(format="nv12", src_color_range="JPEG", dst_color_range="MPEG")
    return frame.to_ndarray(format="nv12")
