"""The server tests' `server_factory`: like the shared one, and `resolve=` picks each session's backend
(a slowed or stuck one, say) instead of facestream.engines.backend.resolve."""
from __future__ import annotations

import pytest


@pytest.fixture
async def server_factory():
    """Starts real servers on free loopback ports; all are stopped at the end of the test."""
    from facestream.engines import backend as backends
    from facestream.server.app import FaceStreamServer
    from facestream.server.config import ServerConfig

    servers: list[FaceStreamServer] = []

    async def start(resolve=backends.resolve, **overrides) -> FaceStreamServer:
        srv = FaceStreamServer(ServerConfig(host="127.0.0.1", port=0, **overrides), resolve=resolve)
        await srv.start()
        servers.append(srv)
        return srv

    yield start
    for srv in servers:
        await srv.stop(0)
