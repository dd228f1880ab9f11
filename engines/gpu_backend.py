"""The gpu backend: NVDEC decode, model inputs, effects and (where TensorRT is) models on the GPU,
and where each stage runs on this host, with the reason (the plan is probed once, nothing loaded)."""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from .backend import BackendUnavailable, Placement, probe_gpu
from .codec import cpu as cpu_codec
from .codec.base import Codec, CodecUnavailable, Decoder, Encoder, EncoderSettings
from .effects.base import Effects
from .stages import Stage
from .vision.base import Vision

NVJPEG_REASON = ("NV12 converted to RGB (BT.601 limited range, as on the CPU) by a CUDA kernel on the session's "
                 "stream and encoded by nvJPEG on the GPU; only the JPEG's bytes are copied to the host (full-range "
                 "JFIF like the CPU backend's, with 4:4:4 chroma where the CPU backend's is 4:2:0)")


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
    """Probes PyNvVideoCodec (NVDEC, and NVENC through GetEncoderCaps) and the model runtimes
    (TensorRT, PyTorch, ONNX Runtime: vision.gpu.vision_placement); imports them lazily."""
    from .codec import gpu as gpu_codec
    from .vision.gpu import vision_placement

    probe = probe_gpu()
    dev = probe.device.split(" ")[0] if probe.device else "gpu:0"
    ok, why = gpu_codec.nvdec_available()
    av_ok, av_why = cpu_codec.pyav_status()
    if ok:
        decode = Placement(Stage.DECODE, dev, f"nvdec ({why})",
                           "H.264, HEVC, AV1 and VP9 decoded by NVDEC into GPU memory; MJPEG and raw input "
                           "decoded on the CPU and uploaded" + ("" if av_ok else f" ({av_why}: no MJPEG input)"))
    elif av_ok:
        decode = Placement(Stage.DECODE, "cpu", "pyav/ffmpeg, frames uploaded to the GPU",
                           f"{why}: packets decoded on the CPU, each frame copied to the GPU once")
    else:
        decode = Placement(Stage.DECODE, "cpu", "unavailable: pyav missing",
                           f"{why}; {av_why}: only raw NV12/I420 input can be decoded")
    # TensorRT, else PyTorch on CUDA, else ONNX Runtime's CUDA provider, else its CPU provider
    vision = vision_placement(dev)
    effects = Placement(Stage.EFFECTS, dev, "cupy kernels",
                        "beauty effects run as CUDA kernels in place on the NV12 frame (the debug overlay "
                        "is drawn on a host copy)")
    encode = {}
    for codec in (Codec.H264, Codec.HEVC, Codec.MJPEG, Codec.RAW_NV12):
        p = gpu_codec.encode_plan(codec)
        if p.engine == "nvenc":
            encode[codec.value] = Placement(Stage.ENCODE, dev, p.detail, "GetEncoderCaps reports NVENC for this codec")
        elif p.engine == "nvjpeg":
            encode[codec.value] = Placement(Stage.ENCODE, dev, f"nvjpeg ({p.detail})", NVJPEG_REASON)
        elif p.engine == "pinned-host":
            encode[codec.value] = Placement(Stage.ENCODE, dev, "pinned-host copy", p.detail)
        elif not av_ok:
            encode[codec.value] = Placement(Stage.ENCODE, "cpu", "unavailable: pyav missing", f"{p.detail}; {av_why}")
        else:
            encoder = {Codec.H264: "libx264", Codec.HEVC: "libx265", Codec.MJPEG: "mjpeg"}[codec]
            engine = f"pinned-host copy + pyav/ffmpeg ({encoder})"
            encode[codec.value] = Placement(Stage.ENCODE, "cpu", engine, p.detail)
    return GpuPlan(decode, vision, effects, encode)


class GpuBackend:
    """NVDEC decode, vision inputs and effects on the GPU, models on TensorRT (or ONNX Runtime),
    NVENC or a reported CPU encode. One instance per session: it owns the session's CUDA stream,
    which every stage of the session uses."""

    name = "gpu"

    def __init__(self, reason: str = "gpu backend", output: str = "h264") -> None:
        import cupy as cp

        from .codec.gpu import cuda_context

        cuda_context()  # the session's stream belongs to the primary context, whichever thread this is
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
