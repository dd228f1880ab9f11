"""Backends: which implementation runs each pipeline stage, and why; the one place that decides.

`cpu` and `gpu` implement the same small `Backend` interface; each is looked up by name and
imported only when picked, so a host without the GPU libraries never imports them. `auto`
takes the GPU where the host has one and the CPU otherwise. What runs where (stage -> device,
engine, reason) is reported to clients.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol

from .codec.base import Codec, Decoder, Encoder, EncoderSettings
from .effects.base import Effects
from .vision.base import Vision


@dataclass(frozen=True)
class Placement:
    stage: str
    device: str
    engine: str
    reason: str


@dataclass(frozen=True)
class GpuProbe:
    available: bool
    device: str
    detail: str
    name: str = ""               # for example "NVIDIA H100 80GB HBM3"
    compute_capability: str = ""  # for example "9.0"
    memory_gb: float = 0.0
    driver: str = ""             # CUDA driver API version, for example "12.8"


class BackendUnavailable(RuntimeError):
    """The requested backend cannot run on this host; the message says why and what to do."""


class Backend(Protocol):
    """Makes the stage implementations of one session and says where they run."""

    name: str
    reason: str

    def placements(self) -> list[Placement]: ...

    def decoder(self, codec: Codec, width: int, height: int) -> Decoder: ...

    def encoder(self, settings: EncoderSettings) -> Encoder: ...

    def vision(self, max_faces: int, fps: float) -> Vision: ...

    def effects(self) -> Effects: ...


# Implementations by name, imported when first picked.
BACKENDS = {
    "cpu": "facestream.engines.cpu_backend:CpuBackend",
    "gpu": "facestream.engines.gpu_backend:GpuBackend",
}


def backend_class(name: str) -> type:
    module, _, cls = BACKENDS[name].partition(":")
    return getattr(importlib.import_module(module), cls)


@lru_cache(maxsize=1)
def probe_gpu() -> GpuProbe:
    """Looks for a CUDA device through CuPy; cached, since the hardware does not change."""
    try:
        import cupy  # noqa: F401
        from cupy.cuda import runtime
    except ImportError:
        return GpuProbe(False, "", "CuPy is not installed (install facestream[gpu] on a host with an NVIDIA GPU)")
    try:
        count = runtime.getDeviceCount()
    except Exception as exc:  # the CUDA driver raises its own error types when absent
        return GpuProbe(False, "", f"no usable CUDA driver: {exc}")
    if count == 0:
        return GpuProbe(False, "", "no CUDA device found")
    props = runtime.getDeviceProperties(0)
    name = props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"])
    try:
        v = runtime.driverGetVersion()
        driver = f"{v // 1000}.{v % 1000 // 10}"
    except Exception:
        driver = ""
    return GpuProbe(True, f"gpu:0 ({name})", "", name=name, compute_capability=f"{props['major']}.{props['minor']}",
                    memory_gb=round(props["totalGlobalMem"] / 2**30, 1), driver=driver)


def gpu_backend_ready() -> tuple[bool, str]:
    """(True, "") when the gpu backend can run here, else (False, why not)."""
    gpu = probe_gpu()
    if not gpu.available:
        return False, gpu.detail
    return True, ""


def resolve(requested: str, output: str = "h264") -> Backend:
    """The backend for `requested` ("auto", "cpu" or "gpu"), or BackendUnavailable saying why not.

    `auto` takes the GPU when the host has a usable one (CuPy sees a CUDA device) and the CPU
    otherwise; the chosen backend's placements say why. `output` is the output codec's name,
    which decides where the gpu backend encodes.
    """
    if requested == "cpu":
        return backend_class("cpu")()
    ok, why = gpu_backend_ready()
    if requested == "gpu":
        if not ok:
            raise BackendUnavailable(f"the gpu backend is not available on this host: {why}; use cpu or auto")
        return backend_class("gpu")("gpu backend requested", output)
    if ok:
        return backend_class("gpu")(f"auto: {probe_gpu().device} found", output)
    return backend_class("cpu")(f"auto: no usable GPU ({why})")
