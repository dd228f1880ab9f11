"""Shared fixtures: the test media and real servers on loopback ports.

The server is imported by the fixtures that start one, so tests that need no server (the GPU
codec and kernel tests) collect without its companions (health checking, reflection).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from support import CLIP, MEDIA, decode_clip, photo_frame

if TYPE_CHECKING:
    from facestream.server.app import FaceStreamServer


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
        if item.get_closest_marker("gpu") and not gpu.available:
            item.add_marker(pytest.mark.skip(reason=f"no GPU: {gpu.detail}"))
        if item.get_closest_marker("tensorrt") and not has_trt:
            item.add_marker(pytest.mark.skip(reason="TensorRT is not installed"))


@pytest.fixture(scope="session")
def media():
    if not CLIP.exists():
        pytest.fail(f"test media not found at {MEDIA}; set FACESTREAM_MEDIA or put shared/ beside the checkout")
    return MEDIA


@pytest.fixture(scope="session")
def clip_frames():
    """The shared clip decoded once per test run."""
    if not CLIP.exists():
        pytest.fail(f"test media missing: {CLIP}")
    return decode_clip()


@pytest.fixture(scope="session")
def photo():
    return photo_frame


@pytest.fixture
async def server_factory():
    """Starts real servers on free loopback ports; all are stopped at the end of the test.
    `resolve=` picks each session's backend (a slowed or stuck one, say) instead of the default."""
    from facestream.engines import backend as backends
    from facestream.server.app import FaceStreamServer
    from facestream.server.config import ServerConfig

    servers: list[FaceStreamServer] = []

    async def start(resolve=backends.resolve, **overrides) -> FaceStreamServer:
        # Stages in the server process unless a test asks otherwise: a `resolve` backend (hooked, slowed) runs
        # there, and the pipeline processes' own tests start them.
        overrides.setdefault("pipeline_processes", 0)
        srv = FaceStreamServer(ServerConfig(host="127.0.0.1", port=0, **overrides), resolve=resolve)
        await srv.start()
        servers.append(srv)
        return srv

    yield start
    for srv in servers:
        await srv.stop(0)


@pytest.fixture
async def server(server_factory) -> FaceStreamServer:
    return await server_factory()
