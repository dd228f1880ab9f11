"""Model inputs cut from NV12 CuPy planes (kernels/resample.cu), the GPU counterpart of
resample.InputMaker: the same letterbox geometry and affine convention, the crop made in NV12,
then OpenCV's NV12 -> RGB arithmetic and the model's scale and offset. Only the model-sized
crop is produced; the frame itself is never converted."""
from __future__ import annotations

from importlib import resources

import numpy as np

BLOCK = (16, 16, 1)
_module = None


def kernel_source() -> str:
    return resources.files(__package__).joinpath("kernels", "resample.cu").read_text()


def _kernels():
    global _module
    import cupy as cp

    if _module is None:
        _module = cp.RawModule(code=kernel_source(), options=("--std=c++14",))
    return _module


def letterbox_geometry(w: int, h: int, size: int) -> tuple[float, int, int, int, int]:
    """(scale, nw, nh, px, py) as InputMaker.letterbox computes them (even padding)."""
    scale = min(size / w, size / h)
    nw, nh = max(2, round(w * scale)), max(2, round(h * scale))
    return scale, nw, nh, (size - nw) // 2 & ~1, (size - nh) // 2 & ~1


def _centre_sampling(m: np.ndarray) -> np.ndarray:
    m = m.copy()
    m[:, 2] += (m[:, 0] + m[:, 1]) * 0.5 - 0.5
    return m


class GpuInputMaker:
    """NCHW float32 model inputs (`rgb01 * scale + offset`) written into CuPy buffers on `stream`.

    `out`, when given, is the (1, 3, size, size) slot to write (for example one row of a batch).
    """

    def __init__(self, size: int, scale: float = 1.0, offset: float = 0.0, stream=None):
        import cupy as cp

        if size % 2:
            raise ValueError("model input size must be even")
        self.size = size
        self.stream = stream if stream is not None else cp.cuda.Stream(non_blocking=True)
        self.k = np.float32(scale / 255.0)
        self.offset = np.float32(offset)
        with self.stream:
            self._y = cp.empty((size, size), cp.uint8)
            self._uv = cp.empty((size // 2, size // 2, 2), cp.uint8)
        _kernels()

    def _grid(self):
        s = self.size
        return ((s + BLOCK[0] - 1) // BLOCK[0], (s + BLOCK[1] - 1) // BLOCK[1], 1)

    def _finish(self, out):
        import cupy as cp

        if out is None:
            with self.stream:
                out = cp.empty((1, 3, self.size, self.size), cp.float32)
        _kernels().get_function("nv12_to_input")(
            self._grid(), BLOCK, (self._y, self._uv, np.int32(self.size), self.k, self.offset, out), stream=self.stream
        )
        return out

    def letterbox(self, y, uv, out=None):
        """Whole frame scaled to fit, centred, black padding; returns (input, (scale, pad_x, pad_y))
        with frame_x = (model_x - pad_x) / scale, as InputMaker.letterbox."""
        h, w = y.shape
        scale, nw, nh, px, py = letterbox_geometry(w, h, self.size)
        _kernels().get_function("letterbox_nv12")(
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
        ml = _centre_sampling(m)
        mc = m.copy()
        mc[:, 2] *= 0.5
        mc = _centre_sampling(mc)
        _kernels().get_function("affine_nv12")(
            self._grid(), BLOCK,
            (y, np.int64(y.strides[0]), uv, np.int64(uv.strides[0]), np.int32(w), np.int32(h), np.int32(self.size))
            + tuple(np.float64(v) for v in ml.ravel()) + tuple(np.float64(v) for v in mc.ravel())
            + (self._y, self._uv),
            stream=self.stream,
        )
        return self._finish(out)
