"""The GPU backend's CPU-side behaviour: backend choice, reporting and lazy imports.

These run on every machine; on a host without a GPU they show that `auto` picks the CPU and
says why, and that nothing GPU-only is imported unless a GPU session is started.
"""
from __future__ import annotations

import subprocess
import sys

import pytest

from facestream.client import FaceStreamClient
from facestream.engines import backend as backends
from facestream.proto import pb

from support import CLIP, target

GPU_ONLY = ("cupy", "PyNvVideoCodec", "tensorrt")
no_gpu = pytest.mark.skipif(backends.probe_gpu().available, reason="this host has a GPU")


def test_importing_the_engines_needs_no_gpu_library():
    code = (
        "import sys\n"
        "import facestream.engines.backend, facestream.engines.gpu_backend, facestream.engines.pipeline\n"
        "import facestream.engines.codec.gpu, facestream.engines.vision.gpu, facestream.engines.vision.gpu_resample\n"
        "import facestream.engines.effects.gpu, facestream.engines.models.tensorrt, facestream.engines.batching\n"
        "facestream.engines.backend.resolve('cpu')\n"
        f"print(sorted(m for m in {GPU_ONLY!r} if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    if not backends.probe_gpu().available:
        assert out.stdout.strip() == "[]", out.stdout


def test_a_host_without_pyav_starts_and_says_pyav_missing():
    """PyAV is only the GPU backend's fallback: without it the server imports, the plan names
    what cannot run, and a CPU codec that needs it says so."""
    code = (
        "import sys\n"
        "sys.modules['av'] = None\n"  # `import av` raises ImportError
        "import facestream.server.app\n"
        "from facestream.engines import gpu_backend\n"
        "from facestream.engines.codec import cpu\n"
        "from facestream.engines.codec.base import Codec, CodecUnavailable, EncoderSettings\n"
        "plan = gpu_backend.gpu_plan()\n"
        "print(plan.encode['mjpeg'].engine)\n"
        "print(plan.encode['nv12'].engine)\n"
        "print(type(cpu.make_decoder(Codec.RAW_NV12, 64, 64)).__name__)\n"
        "try:\n"
        "    cpu.make_encoder(EncoderSettings(Codec.H264, 64, 64))\n"
        "except CodecUnavailable as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    mjpeg, raw, decoder, error = out.stdout.strip().splitlines()
    assert mjpeg == "unavailable: pyav missing"
    assert raw == "pinned-host copy" and decoder == "RawDecoder"
    assert error.startswith("pyav missing: the CPU codecs need PyAV")


@no_gpu
def test_auto_picks_the_cpu_and_says_why():
    backend = backends.resolve("auto")
    assert backend.name == "cpu"
    why = backends.probe_gpu().detail
    assert why
    for p in backend.placements():
        assert p.device == "cpu"
        assert p.reason.startswith("auto: no usable GPU") and why in p.reason


@no_gpu
def test_gpu_request_fails_with_the_reason():
    with pytest.raises(backends.BackendUnavailable, match="the gpu backend is not available on this host"):
        backends.resolve("gpu")


def test_backends_are_imported_only_when_picked():
    code = ("import sys\n"
            "import facestream.engines.backend as b\n"
            "print(sorted(m.rsplit('.', 1)[1] for m in sys.modules if m.endswith('_backend')))\n"
            "b.resolve('cpu')\n"
            "print(sorted(m.rsplit('.', 1)[1] for m in sys.modules if m.endswith('_backend')))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[:2] == ["[]", "['cpu_backend']"]


def test_cpu_backend_unchanged():
    backend = backends.resolve("cpu")
    assert backend.name == "cpu"
    assert [p.stage for p in backend.placements()] == ["decode", "vision", "effects", "encode"]
    assert all(p.reason == "cpu backend" for p in backend.placements())


def test_gpu_plan_describes_every_stage_without_loading_anything():
    from facestream.engines.gpu_backend import gpu_plan

    plan = gpu_plan()
    stages = [p.stage for p in plan.placements()]
    assert stages == ["decode", "vision", "effects", "encode"]
    assert set(plan.encode) == {"h264", "hevc", "mjpeg", "nv12"}
    for p in plan.placements():
        assert p.engine and p.reason


@no_gpu
async def test_server_with_auto_backend_runs_on_the_cpu_and_says_why(server_factory, tmp_path, media):
    srv = await server_factory(backend="auto")
    async with FaceStreamClient(target(srv)) as client:
        result = await client.process(str(CLIP), output=str(tmp_path / "out.mp4"))
    assert result.started.backend == pb.BACKEND_CPU
    reasons = [s.reason for s in result.started.stages]
    assert reasons and all(r.startswith("auto: no usable GPU") for r in reasons), reasons
