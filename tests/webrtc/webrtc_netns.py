"""Runs a command in a new network namespace that has only loopback, so whatever WebRTC finds to
connect over is 127.0.0.1 and nothing can leave the machine."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def isolated(argv: list[str]) -> list[str]:
    """`argv` under `unshare --net` with loopback up (as root; elsewhere in a user namespace too)."""
    unshare = ["unshare", "--net"] if os.geteuid() == 0 else ["unshare", "--net", "--map-root-user"]
    return [*unshare, "sh", "-c", 'ip link set lo up && exec "$@"', "sh", *argv]


def run_scenario(script: str, *args: str, timeout: float) -> str:
    """Runs tests/webrtc/`script` with this Python in its own loopback-only namespace; returns its
    output, or fails the test with it when the script fails or outlives `timeout` (the whole
    process group is killed then: browser, gateway and all)."""
    command = isolated([sys.executable, str(HERE / script), *args])
    proc = subprocess.Popen(command, cwd=HERE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        output, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        output, _ = proc.communicate()
        raise AssertionError(f"{script} did not finish in {timeout:g} s:\n{output[-6000:]}") from None
    assert proc.returncode == 0, f"{script} failed (exit {proc.returncode}):\n{output[-6000:]}"
    return output
