"""What a host offers the GPU backend: driver libraries, package versions, the backend plan.

    python benchmarks/gpu/env_report.py --out OUTDIR/env.json

run.sh runs this first, so that a later phase that fails or runs out of time still leaves the
facts needed to read its failure. Exit status: 0 with a usable GPU, 3 without one (the report
says why), 1 when something the report needs does not import.
"""
from __future__ import annotations

import argparse
import ctypes
import importlib
import importlib.metadata as metadata
import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

DRIVER_DIR = Path("/usr/local/nvidia/lib64")
# NVDEC (libnvcuvid) and NVENC (libnvidia-encode) come with the driver, not with CUDA: a container
# without the driver's video capability has CUDA but neither of them.
DRIVER_LIBS = ("libcuda.so.1", "libnvcuvid.so.1", "libnvidia-encode.so.1")
DISTRIBUTIONS = (
    "cupy-cuda13x", "cupy-cuda12x", "pynvvideocodec", "tensorrt", "tensorrt-cu13", "tensorrt-cu12", "torch",
    "torchvision", "onnxruntime", "onnx", "numpy", "opencv-python-headless", "opencv-contrib-python-headless", "av",
    "grpcio", "grpcio-health-checking", "grpcio-reflection", "protobuf", "prometheus-client", "pyjwt",
    "pytest", "pytest-asyncio", "pytest-timeout", "psutil", "tqdm",
)
# Modules whose origin (the carried bundle or the image) matters when versions shadow each other.
ORIGINS = ("grpc", "google.protobuf", "av", "PyNvVideoCodec", "pytest_asyncio", "cupy", "numpy")
NO_GPU_EXIT = 3


def _run(cmd: list[str], timeout: float = 20) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"not run: {exc}"
    return (out.stdout + out.stderr).strip()


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", text)[:3])


def nvidia_smi() -> dict[str, Any]:
    query = _run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total,compute_cap", "--format=csv,noheader"])
    return {"query": query, "full": _run(["nvidia-smi"])}


def driver_libs() -> dict[str, Any]:
    """Where the loader finds each driver library (ldconfig's cache, the driver folder) and whether it loads."""
    cache = _run(["ldconfig", "-p"])
    found: dict[str, Any] = {}
    for name in DRIVER_LIBS:
        in_cache = sorted({line.split("=>")[-1].strip() for line in cache.splitlines() if name in line})
        in_dir = (DRIVER_DIR / name).exists()
        try:
            ctypes.CDLL(name)
            loads = "yes"
        except OSError as exc:
            loads = f"no: {exc}"
        found[name] = {"ldconfig": in_cache, "driver_dir": in_dir, "loads": loads}
    return {"driver_dir": str(DRIVER_DIR), "driver_dir_exists": DRIVER_DIR.is_dir(),
            "ld_library_path": os.environ.get("LD_LIBRARY_PATH", ""), "libs": found}


def versions() -> dict[str, str]:
    out = {"python": platform.python_version(), "python_executable": sys.executable}
    for name in DISTRIBUTIONS:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def origins() -> dict[str, str]:
    out = {}
    for mod in ORIGINS:
        try:
            out[mod] = str(Path(importlib.import_module(mod).__file__ or "?").parent)
        except Exception as exc:  # any import failure is a finding, written down as it is
            out[mod] = f"not importable: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    return out


def _imports(*modules: str) -> str:
    try:
        for m in modules:
            importlib.import_module(m)
    except Exception as exc:
        return f"fails: {type(exc).__name__}: {exc}"
    return "ok"


def checks(vers: dict[str, str]) -> dict[str, str]:
    """Compatibility of the carried packages with the image's own, reported rather than enforced."""
    out = {
        "facestream.proto (stubs need grpcio and protobuf as new as their generator)": _imports("facestream.proto"),
        "grpc health checking and reflection": _imports("grpc_health.v1.health", "grpc_reflection.v1alpha.reflection"),
        "pytest_asyncio": _imports("pytest_asyncio"),
    }
    pytest_v = vers.get("pytest", "")
    out["pytest >= 8.4 (for pytest-asyncio 1.x)"] = (
        "ok" if pytest_v and _version_tuple(pytest_v) >= (8, 4) else f"no: pytest {pytest_v or 'missing'}"
    )
    return out


def cuda() -> dict[str, Any]:
    try:
        import cupy as cp
    except Exception as exc:
        return {"cupy": f"not importable: {exc}"}
    out: dict[str, Any] = {"cupy": cp.__version__}
    for key, call in (("runtime", cp.cuda.runtime.runtimeGetVersion), ("driver", cp.cuda.runtime.driverGetVersion),
                      ("devices", cp.cuda.runtime.getDeviceCount)):
        try:
            out[key] = call()
        except Exception as exc:
            out[key] = f"error: {exc}"
    return out


def engines() -> dict[str, Any]:
    """The backend's own view: GPU probe, codec libraries, model runtime and the per-stage plan."""
    from facestream.engines import backend, gpu_backend
    from facestream.engines.codec import cpu as cpu_codec
    from facestream.engines.codec import gpu as gpu_codec
    from facestream.engines.codec.gpu_jpeg import nvjpeg_available
    from facestream.engines.models.tensorrt import available as trt_available

    probe = backend.probe_gpu()
    out: dict[str, Any] = {"gpu": vars(probe), "nvdec": gpu_codec.nvdec_available(), "pyav": cpu_codec.pyav_status(),
                           "tensorrt": trt_available()}
    if probe.available:
        out["nvenc"] = {c: gpu_codec.nvenc_caps(c) for c in gpu_codec.NVENC_CODECS.values()}
    out["nvjpeg"] = nvjpeg_available()
    try:
        import onnxruntime as ort

        out["onnxruntime_providers"] = ort.get_available_providers()
    except Exception as exc:
        out["onnxruntime_providers"] = f"not importable: {exc}"
    plan = gpu_backend.gpu_plan()
    out["plan"] = {codec: [vars(p) for p in plan.placements(codec)] for codec in plan.encode}
    auto = backend.resolve("auto")
    out["auto"] = {"backend": auto.name, "placements": [vars(p) for p in auto.placements()]}
    return out


def _print(report: dict[str, Any]) -> None:
    eng = report.get("engines", {})
    print(f"date: {report['date']}  host: {report['host']}")
    print("nvidia-smi:", report["nvidia_smi"]["query"])
    for name, lib in report["driver_libs"]["libs"].items():
        listed = lib["ldconfig"] or "not listed"
        print(f"  {name}: ldconfig={listed} driver_dir={lib['driver_dir']} loads={lib['loads']}")
    print("versions:", ", ".join(f"{k} {v}" for k, v in report["versions"].items() if k != "python_executable"))
    for mod, where in report["origins"].items():
        print(f"  {mod}: {where}")
    for what, result in report["checks"].items():
        print(f"check {what}: {result}")
    print("cuda:", report["cuda"])
    if eng:
        gpu = eng["gpu"]
        print(f"gpu: {'available: ' + gpu['device'] if gpu['available'] else 'none: ' + gpu['detail']}")
        print("nvdec:", eng["nvdec"][1].splitlines()[0] if eng["nvdec"][1] else eng["nvdec"][0])
        print("pyav:", eng["pyav"][1])
        print("tensorrt:", eng["tensorrt"][1])
        print("nvjpeg (MJPEG output):", eng["nvjpeg"][1])
        print("onnxruntime providers:", eng["onnxruntime_providers"])
        for p in eng["plan"]["h264"]:
            print(f"plan {p['stage']:8s} {p['device']:6s} {p['engine']}  ({p['reason'].splitlines()[0]})")
        for codec, placements in eng["plan"].items():
            print(f"plan encode {codec}: {placements[-1]['device']} {placements[-1]['engine']}")
        print("auto:", eng["auto"]["backend"])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="where the JSON report goes")
    args = ap.parse_args(argv)
    report: dict[str, Any] = {"date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "host": platform.node(),
                              "nvidia_smi": nvidia_smi(), "driver_libs": driver_libs()}
    report["versions"] = versions()
    report["origins"] = origins()
    report["checks"] = checks(report["versions"])
    report["cuda"] = cuda()
    status = 0
    try:
        report["engines"] = engines()
    except Exception as exc:
        report["engines_error"] = f"{type(exc).__name__}: {exc}"
        status = 1
    Path(args.out).write_text(json.dumps(report, indent=2, default=str) + "\n")
    _print(report)
    if status:
        print("the backend plan could not be made:", report["engines_error"])
        return status
    return 0 if report["engines"]["gpu"]["available"] else NO_GPU_EXIT


if __name__ == "__main__":
    sys.exit(main())
