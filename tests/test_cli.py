"""The console scripts as a user runs them: `facestream serve` and `facestream-client process`."""
from __future__ import annotations

import json
import signal
import subprocess

import pytest

from facestream.client import BlockingClient
from facestream.client.health import wait_serving
from facestream.proto import pb

from support import BIN, CLIP, CLIP_FRAMES, decode_file, free_port


@pytest.fixture
def served():
    """A `facestream serve` process configured through an environment variable and flags."""
    port = free_port()
    proc = subprocess.Popen(
        [str(BIN / "facestream"), "serve", "--port", str(port), "--backend", "cpu"],
        env={"FACESTREAM_MAX_SESSIONS": "3", "PATH": str(BIN)},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    address = f"127.0.0.1:{port}"
    try:
        wait_serving(address)
        yield proc, address
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_cli_end_to_end(served, tmp_path):
    proc, address = served
    out, faces = tmp_path / "out.mp4", tmp_path / "faces.jsonl"
    result = subprocess.run(
        [str(BIN / "facestream-client"), "--server", address, "process", str(CLIP), "-o", str(out),
         "--faces-json", str(faces)],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert f"{CLIP_FRAMES} frames -> {out}" in result.stderr
    assert len(decode_file(out)) == CLIP_FRAMES
    lines = [json.loads(line) for line in faces.read_text().splitlines()]
    assert len(lines) == CLIP_FRAMES
    assert [rec["frame_index"] for rec in lines] == list(range(CLIP_FRAMES))
    assert [rec["pts"] for rec in lines] == [f.pts for f in decode_file(CLIP)]

    # The blocking client against the same server; the limit comes from FACESTREAM_MAX_SESSIONS.
    with BlockingClient(address) as client:
        caps = client.capabilities()
        assert caps.limits.max_sessions == 3
        assert client.process(str(CLIP), output_codec=pb.CODEC_MJPEG).frames == CLIP_FRAMES

    # SIGTERM: graceful stop, exit code 0.
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0


def test_cli_reports_bad_input(served, tmp_path):
    _, address = served
    result = subprocess.run(
        [str(BIN / "facestream-client"), "--server", address, "process", str(CLIP), "--effects", "smooth=2", "-q"],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 1
    assert "INVALID_ARGUMENT" in result.stderr and "valid range is 0..1" in result.stderr
    missing = subprocess.run(
        [str(BIN / "facestream-client"), "--server", address, "process", str(tmp_path / "nope.mp4")],
        capture_output=True, text=True, timeout=60,
    )
    assert missing.returncode == 2 and "cannot open video source" in missing.stderr


def test_serve_gpu_backend_without_gpu_says_why():
    result = subprocess.run(
        [str(BIN / "facestream"), "serve", "--port", str(free_port()), "--backend", "gpu"],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 1
    assert "--backend gpu: no usable GPU on this host" in result.stderr and "use --backend cpu or auto" in result.stderr
