"""Model inputs cut from NV12 device planes (kernels/resample.cu), the GPU counterpart of
resample.InputMaker with the same arithmetic: the detector's letterbox made in NV12 and
converted by OpenCV's NV12 -> RGB, the mesh's rotated crop sampled at every crop pixel in luma
and chroma and converted in float, both with the model's scale and offset. Only the model-sized
crop is produced; the frame itself is never converted. Arrays and kernels come from a
KernelRuntime: CuPy and NVRTC unless another is given."""
from __future__ import annotations

import numpy as np

from ..kernel_runtime import KernelRuntime, cupy_runtime
from .resample import _centre_sampling, _rgb_transform

BLOCK = (16, 16, 1)


def letterbox_geometry(w: int, h: int, size: int) -> tuple[float, int, int, int, int]:
    """(scale, nw, nh, px, py) as InputMaker.letterbox computes them (even padding)."""
    scale = min(size / w, size / h)
    nw, nh = max(2, round(w * scale)), max(2, round(h * scale))
    return scale, nw, nh, (size - nw) // 2 & ~1, (size - nh) // 2 & ~1


class GpuInputMaker:
    """NCHW float32 model inputs (`rgb01 * scale + offset`) written into device buffers on `stream`.

    `out`, when given, is the (1, 3, size, size) slot to write (for example one row of a batch).
    """

    def __init__(self, size: int, scale: float = 1.0, offset: float = 0.0, stream=None,
                 runtime: KernelRuntime | None = None):
        if size % 2:
            raise ValueError("model input size must be even")
        self.rt = runtime if runtime is not None else cupy_runtime()
        self.xp = self.rt.xp
        self.size = size
        self.stream = stream if stream is not None else self.rt.stream()
        self.k = np.float32(scale / 255.0)
        self.offset = np.float32(offset)
        with self.stream:
            self._y = self.xp.empty((size, size), np.uint8)
            self._uv = self.xp.empty((size // 2, size // 2, 2), np.uint8)
            self._rgb = self.xp.asarray(_rgb_transform(scale, offset))
        self._kernel("nv12_to_input")

    def _kernel(self, name: str):
        return self.rt.function(__package__, "resample.cu", name)

    def _grid(self):
        s = self.size
        return ((s + BLOCK[0] - 1) // BLOCK[0], (s + BLOCK[1] - 1) // BLOCK[1], 1)

    def _output(self, out):
        if out is None:
            with self.stream:
                out = self.xp.empty((1, 3, self.size, self.size), np.float32)
        return out

    def _finish(self, out):
        out = self._output(out)
        self._kernel("nv12_to_input")(
            self._grid(), BLOCK, (self._y, self._uv, np.int32(self.size), self.k, self.offset, out), stream=self.stream
        )
        return out

    def letterbox(self, y, uv, out=None):
        """Whole frame scaled to fit, centred, black padding; returns (input, (scale, pad_x, pad_y))
        with frame_x = (model_x - pad_x) / scale, as InputMaker.letterbox."""
        h, w = y.shape
        scale, nw, nh, px, py = letterbox_geometry(w, h, self.size)
        self._kernel("letterbox_nv12")(
            self._grid(), BLOCK,
            (y, np.int64(y.strides[0]), uv, np.int64(uv.strides[0]), np.int32(w), np.int32(h), np.int32(self.size),
             np.int32(nw), np.int32(nh), np.int32(px), np.int32(py), np.int32(scale < 1), self._y, self._uv),
            stream=self.stream,
        )
        return self._finish(out), (nw / w, float(px), float(py))

    def affine(self, y, uv, m: np.ndarray, out=None):
        """Crop through the 2x3 affine `m` (model pixel coordinates -> frame coordinates, continuous)."""
        h, w = y.shape
        m = np.asarray(m, np.float64)
        # OpenCV's one-channel warp reads the maps as float; chroma: pixel-index coordinates at every crop pixel
        luma = _centre_sampling(m).astype(np.float32)
        chroma = _centre_sampling(m * 0.5).astype(np.float32)
        out = self._output(out)
        self._kernel("affine_input")(
            self._grid(), BLOCK,
            (y, np.int64(y.strides[0]), uv, np.int64(uv.strides[0]), np.int32(w), np.int32(h), np.int32(self.size))
            + tuple(luma.ravel()) + tuple(chroma.ravel()) + (self._rgb, out),
            stream=self.stream,
        )
        return out
