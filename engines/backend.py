"""Backends: which implementation runs each pipeline stage, and why.

`cpu` and `gpu` implement the same stage interfaces; `auto` takes the GPU where the host has
one and the CPU otherwise. The plan (stage -> device, engine, reason) is reported to clients.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from .codec import cpu as cpu_codec
from .codec.base import Codec, Decoder, Encoder, EncoderSettings
from .effects.base import Effects
from .effects.cpu import CpuEffects
from .vision.base import Vision
from .vision.cpu import CPU_DEFAULT_PRECISION, CpuVision


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


class BackendUnavailable(RuntimeError):
    """The requested backend cannot run on this host; the message says why and what to do."""


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
    name = runtime.getDeviceProperties(0)["name"].decode()
    return GpuProbe(True, f"gpu:0 ({name})", "")


class CpuBackend:
    """PyAV codecs, ONNX Runtime models and NumPy/OpenCV effects."""

    name = "cpu"

    def placements(self) -> list[Placement]:
        reason = "cpu backend"
        return [
            Placement("decode", "cpu", "pyav/ffmpeg", reason),
            Placement("vision", "cpu", f"onnxruntime ({CPU_DEFAULT_PRECISION} models)", reason),
            Placement("effects", "cpu", "numpy/opencv", reason),
            Placement("encode", "cpu", "pyav/ffmpeg (libx264, libx265, mjpeg)", reason),
        ]

    def decoder(self, codec: Codec, width: int, height: int) -> Decoder:
        return cpu_codec.make_decoder(codec, width, height)

    def encoder(self, settings: EncoderSettings) -> Encoder:
        return cpu_codec.make_encoder(settings)

    def vision(self, max_faces: int, fps: float) -> Vision:
        return CpuVision(max_faces=max_faces, fps=fps)

    def effects(self) -> Effects:
        return CpuEffects()


def resolve(requested: str) -> CpuBackend:
    """The backend for `requested` ("auto", "cpu" or "gpu"), or BackendUnavailable saying why not."""
    gpu = probe_gpu()
    if requested == "gpu":
        if not gpu.available:
            raise BackendUnavailable(f"the gpu backend is not available on this host: {gpu.detail}; use cpu or auto")
        raise BackendUnavailable("the gpu backend is not built into this server version; use cpu or auto")
    return CpuBackend()
