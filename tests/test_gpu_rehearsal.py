"""A rehearsal, on a CPU machine, of the offline run on the GPU test machine (benchmarks/gpu/).

The GPU machine has no network and its own Python with a fixed set of packages; the run gets
one try. Here a venv holds what that image holds, less CUDA, CuPy and PyTorch (the image's
versions where known; for its unknown grpcio and protobuf, older ones than the generated stubs
need, which makes run.sh take the bundle's), prepare.sh gathers the bundle,
and run.sh runs with the venv's Python in a network namespace with only a loopback device. It
must get as far as "no GPU here" cleanly: every phase ends, the GPU tests are collected and
skip for want of a GPU, the CPU-side checks pass, and OUTDIR holds the eight files that come
back from a device call.

The venv and the bundle are cached (FACESTREAM_REHEARSAL_CACHE, default ~/.cache/facestream/
gpu-rehearsal) under keys made of the versions and of the bundle recipe, and `.gpu-bundle` is
used when it was made by the same recipe for the same Python. The first run needs PyPI.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
GPU_DIR = REPO / "benchmarks" / "gpu"
CACHE = Path(os.environ.get("FACESTREAM_REHEARSAL_CACHE", Path.home() / ".cache" / "facestream" / "gpu-rehearsal"))
# The GPU image's packages (device README), less CUDA, CuPy and PyTorch. Its OpenCV, grpcio and
# protobuf versions are unknown: OpenCV as the project's CI has it, grpcio and protobuf older.
IMAGE = ("onnxruntime==1.30.0", "onnx==1.23.1", "opencv-python-headless==5.0.0.93", "grpcio==1.80.0",
         "protobuf==6.33.6", "prometheus-client==0.26.0", "pytest==8.4.2", "pytest-timeout==2.4.0", "psutil==7.2.2",
         "tqdm==4.70.1", "numba==0.68.1")
NUMPY = {"3.12": "numpy==2.5.2"}          # the image's; NumPy 2.5 needs Python 3.12
OUTPUTS = {"run.log", "summary.txt", "env.json", "pytest-gpu.xml", "pytest-gpu.log", "pytest-cpu.log",
           "gpu_bench.json", "gpu_bench.log"}
NO_GPU_EXIT = 3

pytestmark = [pytest.mark.rehearsal, pytest.mark.timeout(600)]


def _python() -> tuple[str, str]:
    """The Python for the venv (3.12, the image's, where this machine has one that runs: a pyenv
    shim on the PATH may not) and its version; else the one running the tests."""
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates = [shutil.which("python3.12"), *map(str, sorted(pyenv.glob("versions/3.12*/bin/python3.12")))]
    for exe in [c for c in candidates if c] + [sys.executable]:
        out = subprocess.run([exe, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                             capture_output=True, text=True)
        if out.returncode == 0:
            return exe, out.stdout.strip()
    raise AssertionError("no Python runs here")  # sys.executable does


def _key(*parts: str) -> str:
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:12]


def image_venv(exe: str, version: str) -> Path:
    """A venv of the image's packages (no system site-packages), built once per set of versions."""
    pins = (NUMPY.get(version, "numpy==2.4.6"), *IMAGE)
    venv = CACHE / f"venv-{version}-{_key(os.path.realpath(exe), *pins)}"
    python = venv / "bin" / "python"
    done = venv / ".complete"
    if not done.exists():
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([exe, "-m", "venv", str(venv)], check=True, timeout=120)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *pins],
                       check=True, timeout=480)
        done.write_text("\n".join(pins) + "\n")
    return python


def bundle(version: str) -> Path:
    """`.gpu-bundle` when prepare.sh made it for this Python by the current recipe, else a cached one."""
    recipe = hashlib.sha256((GPU_DIR / "prepare.sh").read_bytes() + (GPU_DIR / "repack_wheels.py").read_bytes())
    recipe_id = recipe.hexdigest()[:16]
    for candidate in (REPO / ".gpu-bundle", CACHE / f"bundle-{version}-{recipe_id}"):
        try:
            made = json.loads((candidate / "bundle.json").read_text())
        except (OSError, ValueError):
            continue
        if made.get("python") == version and made.get("recipe") == recipe_id:
            return candidate
    target = CACHE / f"bundle-{version}-{recipe_id}"
    shutil.rmtree(target, ignore_errors=True)
    env = {**os.environ, "PYTHON": sys.executable, "FACESTREAM_BUNDLE_PYTHON": version}
    subprocess.run(["bash", str(GPU_DIR / "prepare.sh"), str(target)], check=True, env=env, timeout=480)
    return target


def offline(cmd: list[str], env: dict[str, str]) -> list[str]:
    """`cmd` in a network namespace with only loopback up, where this machine allows one; else
    with every proxy pointed at a closed port, so that any download fails."""
    isolate = ["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$0" "$@"']
    if shutil.which("unshare") and shutil.which("ip"):
        probe = subprocess.run([*isolate, "true"], capture_output=True, timeout=30)
        if probe.returncode == 0:
            return [*isolate, *cmd]
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        env[name] = "http://127.0.0.1:9"
    return cmd


def _summary(text: str) -> dict[str, str]:
    rows = [line.split() for line in text.splitlines()[2:] if line and not line.startswith("exit ")]
    return {row[0]: row[1] for row in rows}


def test_gpu_run_rehearsal(tmp_path):
    exe, version = _python()
    python = image_venv(exe, version)
    bundle_dir = bundle(version)
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "FACESTREAM_MEDIA", "VIRTUAL_ENV")}
    env["FACESTREAM_GPU_PYTHON"] = str(python)
    env["CPU_TESTS_S"] = "240"    # the budget is sized for the GPU machine's 16 cores, not for CI's 2
    cmd = offline(["bash", str(GPU_DIR / "run.sh"), str(bundle_dir), str(out)], env)
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=420)
    log = proc.stdout + proc.stderr
    assert proc.returncode == NO_GPU_EXIT, log[-6000:]

    # what a device call brings back: at most eight plainly named files
    names = {p.name for p in out.iterdir()}
    assert names == OUTPUTS
    assert all(re.fullmatch(r"[A-Za-z0-9._-]+", n) for n in names)

    summary = (out / "summary.txt").read_text()
    assert _summary(summary) == {"setup": "pass", "env": "pass", "gpu-tests": "skipped", "cpu-tests": "pass",
                                 "gpu-bench": "skipped"}, summary
    assert summary.rstrip().endswith(f"exit {NO_GPU_EXIT}")
    # the venv's grpcio/protobuf are older than the stubs need: the bundle's were put in front
    assert "grpcio and protobuf from the bundle" in summary

    report = json.loads((out / "env.json").read_text())
    assert all(result == "ok" for result in report["checks"].values()), report["checks"]
    engines = report["engines"]
    assert not engines["gpu"]["available"] and engines["pyav"][0]
    assert "pynvvideocodec" in report["versions"] and report["versions"]["grpcio"] == "1.85.1"
    assert [p["stage"] for p in engines["plan"]["h264"]] == ["decode", "vision", "effects", "encode"]
    assert engines["auto"]["backend"] == "cpu"

    # every GPU test was collected (no import error) and skipped for want of a GPU
    cases = list(ET.parse(out / "pytest-gpu.xml").getroot().iter("testcase"))
    assert len(cases) >= 20
    skips = [c.find("skipped") for c in cases]
    assert all(s is not None and "no GPU" in (s.get("message") or "") for s in skips)

    assert json.loads((out / "gpu_bench.json").read_text())["skipped"].startswith("no GPU")
    run_log = (out / "run.log").read_text()
    assert "Traceback" not in run_log and "ImportError while" not in run_log, run_log[-6000:]
