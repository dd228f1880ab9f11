"""Servers for the failover tests: `facestream serve` processes on loopback ports, one of which a
test kills the way a node dies (SIGKILL: no drain, connections reset)."""
from __future__ import annotations

import re
import subprocess
import urllib.request

import pytest

from facestream.client.health import wait_serving

from support import BIN, free_port

_SAMPLE = re.compile(r"^(\S+) (\S+)$", re.MULTILINE)


class ServerProcess:
    """A CPU `facestream serve` with metrics on."""

    def __init__(self, *flags: str) -> None:
        self.port, self.metrics_port = free_port(), free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [str(BIN / "facestream"), "serve", "--port", str(self.port), "--metrics-port", str(self.metrics_port),
             "--backend", "cpu", *flags],
            env={"PATH": str(BIN), "MALLOC_ARENA_MAX": "2"}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def kill(self) -> None:
        self.proc.kill()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()

    def metrics(self) -> dict[str, float]:
        """Sample (with its labels) -> value."""
        text = urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=10).read().decode()
        return {name: float(value) for name, value in _SAMPLE.findall(text) if not name.startswith("#")}


@pytest.fixture
def serve():
    """`serve(n, *flags)` starts n servers (loading their models side by side) and waits until they serve."""
    started: list[ServerProcess] = []

    def start(count: int, *flags: str) -> list[ServerProcess]:
        servers = [ServerProcess(*flags) for _ in range(count)]
        started.extend(servers)
        for server in servers:
            wait_serving(server.address, timeout=120)
        return servers

    yield start
    for server in started:
        server.close()
