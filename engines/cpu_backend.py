"""The cpu backend: PyAV codecs, ONNX Runtime models and NumPy/OpenCV effects."""
from __future__ import annotations

from .backend import Placement
from .codec import cpu as cpu_codec
from .codec.base import Codec, Decoder, Encoder, EncoderSettings
from .effects.base import Effects
from .effects.cpu import CpuEffects
from .models.specs import CPU_DEFAULT_PRECISION
from .stages import Stage
from .vision.base import Vision
from .vision.cpu import CpuVision


class CpuBackend:
    """PyAV codecs, ONNX Runtime models and NumPy/OpenCV effects."""

    name = "cpu"

    def __init__(self, reason: str = "cpu backend") -> None:
        # why the CPU runs this session (with `auto`: why the GPU does not)
        self.reason = reason

    def placements(self) -> list[Placement]:
        reason = self.reason
        return [
            Placement(Stage.DECODE, "cpu", "pyav/ffmpeg", reason),
            Placement(Stage.VISION, "cpu", f"onnxruntime ({CPU_DEFAULT_PRECISION} models)", reason),
            Placement(Stage.EFFECTS, "cpu", "numpy/opencv", reason),
            Placement(Stage.ENCODE, "cpu", "pyav/ffmpeg (libx264, libx265, mjpeg)", reason),
        ]

    def decoder(self, codec: Codec, width: int, height: int) -> Decoder:
        return cpu_codec.make_decoder(codec, width, height)

    def encoder(self, settings: EncoderSettings) -> Encoder:
        return cpu_codec.make_encoder(settings)

    def vision(self, max_faces: int, fps: float) -> Vision:
        return CpuVision(max_faces=max_faces, fps=fps)

    def effects(self) -> Effects:
        return CpuEffects()
