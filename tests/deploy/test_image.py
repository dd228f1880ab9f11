"""The CPU image as deploy/build-image.sh builds it, run with podman the way a cluster would run it:
it serves the shared clip, runs as a non-root user with nothing to build with, and drains on SIGTERM."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request

import pytest

from facestream.client import FaceStreamClient
from facestream.client.health import wait_serving

from support import CLIP, CLIP_FRAMES, REPO, free_port

pytestmark = pytest.mark.slow

DEPLOY = REPO / "deploy"
PODMAN_ENV = {**os.environ, "CONTAINERS_CONF": os.environ.get("CONTAINERS_CONF", str(DEPLOY / "containers.conf"))}


def podman(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(["podman", *args], env=PODMAN_ENV, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def image() -> str:
    """The CPU image (built, or found up to date); prints how long that took and its size."""
    if shutil.which("podman") is None:
        pytest.skip("podman is not installed (Debian: apt-get install podman runc mmdebstrap)")
    started = time.monotonic()
    build = subprocess.run(["bash", str(DEPLOY / "build-image.sh"), "cpu"], capture_output=True, text=True,
                           env={**PODMAN_ENV, "PYTHON": sys.executable}, timeout=1800)
    assert build.returncode == 0, f"build-image.sh failed:\n{build.stderr[-6000:]}"
    name = build.stdout.split()[-1]
    size = int(podman("image", "inspect", "--format", "{{.Size}}", name).stdout)
    print(f"\n{name}: built (or found up to date) in {time.monotonic() - started:.0f} s, {size / 1e6:.0f} MB")
    return name


def test_image_runs_as_a_user_with_nothing_to_build_with(image):
    config = podman("image", "inspect", "--format", "{{.Config.User}} {{json .Config.Env}}", image).stdout
    assert config.startswith("10001:10001 ")
    assert '"MALLOC_ARENA_MAX=2"' in config
    found = podman("run", "--rm", "--network", "none", "--entrypoint", "sh", image, "-c",
                   "command -v gcc cc c++ make pip pip3 python3-config; id -u")
    assert found.stdout.split() == ["10001"], f"build tools in the final image: {found.stdout}"


def _metric(port: int, sample: str) -> float:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    match = re.search(rf"^{re.escape(sample)} (\S+)$", text, re.MULTILINE)
    assert match, f"{sample} not among the metrics"
    return float(match.group(1))


async def test_image_serves_the_clip_and_drains_on_sigterm(image):
    port, metrics_port = free_port(), free_port()
    name = f"facestream-test-{os.getpid()}"
    run = podman("run", "--detach", "--network", "host", "--name", name, image,
                 "serve", "--host", "127.0.0.1", "--port", str(port), "--metrics-port", str(metrics_port))
    assert run.returncode == 0, run.stderr
    try:
        try:
            wait_serving(f"127.0.0.1:{port}", timeout=120)
        except TimeoutError:
            pytest.fail(f"the container did not serve:\n{podman('logs', name).stderr[-4000:]}")
        async with FaceStreamClient(f"127.0.0.1:{port}") as client:
            result = await client.process(str(CLIP), effects={"smooth": 0.6})
        assert result.frames == CLIP_FRAMES
        assert result.stats.frames_out == CLIP_FRAMES
        assert _metric(metrics_port, 'facestream_sessions_total{code="OK"}') == 1
        stop = podman("stop", "--time", "40", name, timeout=60)
        assert stop.returncode == 0, stop.stderr
        state = podman("inspect", "--format", "{{.State.ExitCode}}", name).stdout.strip()
        logs = podman("logs", name).stderr
        assert state == "0", f"exit code {state} after SIGTERM:\n{logs[-4000:]}"
        assert "draining" in logs and "stopped" in logs
    finally:
        podman("rm", "--force", name)
