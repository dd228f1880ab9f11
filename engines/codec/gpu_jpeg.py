"""MJPEG output encoded on the GPU with nvJPEG, so that only the JPEG's bytes leave the device.

Each frame's NV12 planes are converted to planar RGB by kernels/nv12_rgb.cu on the session's
stream, with OpenCV's BT.601 limited-range arithmetic (the conversion the CPU side applies to
NV12 pictures), into a CuPy buffer that PyTorch reads through DLPack; torchvision.io.encode_jpeg
encodes that CUDA tensor with nvJPEG (torchvision 0.19 and newer do CUDA tensors).

What the client gets is the CPU backend's kind of JPEG: baseline JFIF, full-range BT.601 YCbCr,
one picture per packet, at the picture's own size (odd sizes included). One difference: the
CPU backend subsamples chroma 4:2:0 (yuvj420p), torchvision fixes nvJPEG at 4:4:4 (yuvj444p).
The decoded pictures are the same within JPEG's error; the GPU's files are somewhat larger.

torchvision encodes on a stream of its own that does not wait for the caller's, so the session's
stream is synchronised before each encode. It keeps one encoder per process behind a lock: the
sessions' encodes take turns. PyTorch and torchvision are imported lazily, and only where a GPU is.
"""
from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

import numpy as np

from ..frame import Frame
from ..kernel_runtime import KernelRuntime, cupy_runtime
from .base import EncodedPacket, EncoderSettings, check_frame_size

MIN_TORCHVISION = (0, 19)
# The CPU backend's MJPEG quality when the session asks for none (engines/codec/cpu.py).
DEFAULT_QUALITY = 85
BLOCK = (32, 8, 1)


def _first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def version_tuple(text: str) -> tuple[int, ...]:
    """(0, 26) for "0.26.0+cu130"."""
    return tuple(int(x) for x in re.findall(r"\d+", text.split("+")[0])[:2])


@lru_cache(maxsize=1)
def nvjpeg_available() -> tuple[bool, str]:
    """(True, "torchvision <version>, PyTorch <version>") when torchvision encodes a JPEG from a CUDA
    tensor here, else (False, why not). The probe encode is what proves it: a CPU-only PyTorch, or a
    torchvision built without nvJPEG, fails there."""
    from ..backend import probe_gpu

    gpu = probe_gpu()
    if not gpu.available:
        return False, f"no GPU ({gpu.detail})"
    try:
        import torch
        import torchvision
        from torchvision.io import encode_jpeg
    except ImportError as exc:
        return False, f"torchvision is not installed ({exc.name or exc})"
    except Exception as exc:  # a broken install raises its own errors: the first line says what failed
        return False, f"torchvision does not load: {_first_line(exc)}"
    version = torchvision.__version__
    if version_tuple(version) < MIN_TORCHVISION:
        return False, (f"torchvision {version} encodes JPEG on the CPU only "
                       f"({'.'.join(map(str, MIN_TORCHVISION))} and newer encode CUDA tensors with nvJPEG)")
    if not torch.cuda.is_available():
        return False, f"PyTorch {torch.__version__} has no CUDA on this host"
    try:
        data = encode_jpeg(torch.zeros((3, 16, 16), dtype=torch.uint8, device="cuda"), quality=DEFAULT_QUALITY)
        head = bytes(data[:2].cpu().numpy())
    except Exception as exc:
        return False, f"torchvision {version} does not encode JPEG on this GPU: {_first_line(exc)}"
    if head != b"\xff\xd8":
        return False, f"torchvision {version} returned no JPEG for a CUDA tensor"
    return True, f"torchvision {version}, PyTorch {torch.__version__}"


class Nv12ToRgb:
    """NV12 planes -> planar RGB (3, height, width) uint8, on `stream`; the arrays and kernel come
    from `runtime` (CuPy by default; tests/kernels builds the same kernel for the host)."""

    def __init__(self, stream: Any, runtime: KernelRuntime | None = None) -> None:
        self.rt = runtime if runtime is not None else cupy_runtime()
        self.stream = stream
        self._kernel = self.rt.function(__package__, "nv12_rgb.cu", "nv12_to_rgb_planar")

    def __call__(self, y: Any, uv: Any, width: int, height: int, out: Any = None) -> Any:
        """`out` (3, height, width), made when not given, filled from the width x height picture
        at the top left of the planes (which may carry a padding column or row)."""
        if width > y.shape[1] or height > y.shape[0]:
            raise ValueError(f"a {width}x{height} picture does not fit planes of {y.shape[1]}x{y.shape[0]}")
        if out is None:
            with self.stream:
                out = self.rt.xp.empty((3, height, width), np.uint8)
        grid = ((width + BLOCK[0] - 1) // BLOCK[0], (height + BLOCK[1] - 1) // BLOCK[1], 1)
        args = (y, np.int64(y.strides[0]), uv, np.int64(uv.strides[0]), np.int32(width), np.int32(height), out)
        self._kernel(grid, BLOCK, args, stream=self.stream)
        return out


class NvJpegEncoder:
    """MJPEG from device NV12 frames: RGB on the session's stream, then nvJPEG; one packet per frame."""

    def __init__(self, settings: EncoderSettings, stream: Any) -> None:
        import torch
        from torchvision.io import encode_jpeg

        self.settings = settings
        self.stream = stream
        self.quality = max(1, min(100, settings.quality or DEFAULT_QUALITY))
        self._encode_jpeg = encode_jpeg
        self._to_rgb = Nv12ToRgb(stream)
        with stream:
            self._rgb = self._to_rgb.rt.xp.empty((3, settings.height, settings.width), np.uint8)
        self._rgb_tensor = torch.from_dlpack(self._rgb)   # the same device memory, read by nvJPEG

    def encode(self, frame: Frame) -> list[EncodedPacket]:
        check_frame_size(self.settings, frame)
        self._to_rgb(frame.y, frame.uv, self.settings.width, self.settings.height, self._rgb)
        self.stream.synchronize()   # nvJPEG runs on torchvision's own stream, which does not wait for this one
        jpeg = self._encode_jpeg(self._rgb_tensor, quality=self.quality)
        return [EncodedPacket(jpeg.cpu().numpy().tobytes(), frame.pts, True)]

    def flush(self) -> list[EncodedPacket]:
        return []

    def close(self) -> None:
        self._rgb_tensor = None
