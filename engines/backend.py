"""Backends: which implementation runs each pipeline stage, and why.

`cpu` and `gpu` implement the same stage interfaces; `auto` takes the GPU where the host has
one and the CPU otherwise. The plan (stage -> device, engine, reason) is reported to clients.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from .codec import cpu as cpu_codec
from .codec.base import Codec, CodecUnavailable, Decoder, Encoder, EncoderSettings
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
    name: str = ""               # for example "NVIDIA H100 80GB HBM3"
    compute_capability: str = ""  # for example "9.0"
    memory_gb: float = 0.0
    driver: str = ""             # CUDA driver API version, for example "12.8"


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
    props = runtime.getDeviceProperties(0)
    name = props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"])
    try:
        v = runtime.driverGetVersion()
        driver = f"{v // 1000}.{v % 1000 // 10}"
    except Exception:
        driver = ""
    return GpuProbe(True, f"gpu:0 ({name})", "", name=name, compute_capability=f"{props['major']}.{props['minor']}",
                    memory_gb=round(props["totalGlobalMem"] / 2**30, 1), driver=driver)


class CpuBackend:
    """PyAV codecs, ONNX Runtime models and NumPy/OpenCV effects."""

    name = "cpu"

    def __init__(self, reason: str = "cpu backend") -> None:
        # why the CPU runs this session (with `auto`: why the GPU does not)
        self.reason = reason

    def placements(self) -> list[Placement]:
        reason = self.reason
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


@dataclass(frozen=True)
class GpuPlan:
    """Where each stage of the gpu backend runs on this host, and why (no models loaded)."""

    decode: Placement
    vision: Placement
    effects: Placement
    encode: dict[str, Placement]      # per output codec name ("h264", "hevc", "mjpeg", "nv12")

    def placements(self, output: str = "h264") -> list[Placement]:
        return [self.decode, self.vision, self.effects, self.encode.get(output, self.encode["h264"])]


@lru_cache(maxsize=1)
def gpu_plan() -> GpuPlan:
    """Probes PyNvVideoCodec (NVDEC, and NVENC through GetEncoderCaps) and TensorRT; imports them lazily."""
    from .codec import gpu as gpu_codec
    from .models.tensorrt import available as trt_available

    probe = probe_gpu()
    dev = probe.device.split(" ")[0] if probe.device else "gpu:0"
    ok, why = gpu_codec.nvdec_available()
    av_ok, av_why = cpu_codec.pyav_status()
    if ok:
        decode = Placement("decode", dev, f"nvdec ({why})",
                           "H.264, HEVC, AV1 and VP9 decoded by NVDEC into GPU memory; MJPEG and raw input "
                           "decoded on the CPU and uploaded" + ("" if av_ok else f" ({av_why}: no MJPEG input)"))
    elif av_ok:
        decode = Placement("decode", "cpu", "pyav/ffmpeg, frames uploaded to the GPU",
                           f"{why}: packets decoded on the CPU, each frame copied to the GPU once")
    else:
        decode = Placement("decode", "cpu", "unavailable: pyav missing",
                           f"{why}; {av_why}: only raw NV12/I420 input can be decoded")
    trt_ok, trt_why = trt_available()
    if trt_ok:
        vision = Placement("vision", dev, f"tensorrt {trt_why} (int8 engines, cuda graphs)",
                           "TensorRT is installed: INT8 Q/DQ engines built once per GPU and cached, "
                           "inputs cut from NV12 on the GPU, calls batched across sessions")
    else:
        vision = Placement("vision", "cpu", "onnxruntime (fp32 models), inputs cut on the GPU",
                           f"{trt_why}: models run on ONNX Runtime; only the model-input crops are copied "
                           "to the host, the frame stays on the GPU")
    effects = Placement("effects", dev, "cupy kernels",
                        "beauty effects run as CUDA kernels in place on the NV12 frame (the debug overlay "
                        "is drawn on a host copy)")
    encode = {}
    for codec in (Codec.H264, Codec.HEVC, Codec.MJPEG, Codec.RAW_NV12):
        p = gpu_codec.encode_plan(codec)
        if p.engine == "nvenc":
            encode[codec.value] = Placement("encode", dev, p.detail, "GetEncoderCaps reports NVENC for this codec")
        elif p.engine == "pinned-host":
            encode[codec.value] = Placement("encode", "cpu", "pinned-host copy", p.detail)
        elif not av_ok:
            encode[codec.value] = Placement("encode", "cpu", "unavailable: pyav missing", f"{p.detail}; {av_why}")
        else:
            encoder = {Codec.H264: "libx264", Codec.HEVC: "libx265", Codec.MJPEG: "mjpeg"}[codec]
            encode[codec.value] = Placement("encode", "cpu", f"pinned-host copy + pyav/ffmpeg ({encoder})", p.detail)
    return GpuPlan(decode, vision, effects, encode)


class GpuBackend:
    """NVDEC decode, vision inputs and effects on the GPU, models on TensorRT (or ONNX Runtime),
    NVENC or a reported CPU encode. One instance per session: it owns the session's CUDA stream,
    which every stage of the session uses."""

    name = "gpu"

    def __init__(self, reason: str = "gpu backend", output: str = "h264") -> None:
        import cupy as cp

        self.reason = reason
        self.output = output
        self.plan = gpu_plan()
        self.stream = cp.cuda.Stream(non_blocking=True)

    def placements(self) -> list[Placement]:
        return [Placement(p.stage, p.device, p.engine, f"{self.reason}; {p.reason}")
                for p in self.plan.placements(self.output)]

    def decoder(self, codec: Codec, width: int, height: int) -> Decoder:
        from .codec import gpu as gpu_codec

        try:
            return gpu_codec.make_decoder(codec, width, height, self.stream)
        except CodecUnavailable as exc:
            raise BackendUnavailable(f"the gpu backend cannot decode {codec.name} on this host: {exc}") from None

    def encoder(self, settings: EncoderSettings) -> Encoder:
        from .codec import gpu as gpu_codec

        try:
            return gpu_codec.make_encoder(settings, self.stream)
        except CodecUnavailable as exc:
            raise BackendUnavailable(
                f"the gpu backend cannot encode {settings.codec.name} on this host: {exc}") from None

    def vision(self, max_faces: int, fps: float) -> Vision:
        from .vision.gpu import GpuVision

        return GpuVision(stream=self.stream, max_faces=max_faces, fps=fps)

    def effects(self) -> Effects:
        from .effects.gpu import GpuEffects

        return GpuEffects(self.stream)


def gpu_backend_ready() -> tuple[bool, str]:
    """(True, "") when the gpu backend can run here, else (False, why not)."""
    gpu = probe_gpu()
    if not gpu.available:
        return False, gpu.detail
    return True, ""


def resolve(requested: str, output: str = "h264") -> CpuBackend | GpuBackend:
    """The backend for `requested` ("auto", "cpu" or "gpu"), or BackendUnavailable saying why not.

    `auto` takes the GPU when the host has a usable one (CuPy sees a CUDA device) and the CPU
    otherwise; the chosen backend's placements say why. `output` is the output codec's name,
    which decides where the gpu backend encodes.
    """
    if requested == "cpu":
        return CpuBackend()
    ok, why = gpu_backend_ready()
    if requested == "gpu":
        if not ok:
            raise BackendUnavailable(f"the gpu backend is not available on this host: {why}; use cpu or auto")
        return GpuBackend("gpu backend requested", output)
    if ok:
        return GpuBackend(f"auto: {probe_gpu().device} found", output)
    return CpuBackend(f"auto: no usable GPU ({why})")
