"""Raw pictures between GStreamer's buffer layout and the tightly packed planes the server takes.

A GStreamer buffer may pad each row (NV12 and I420 rows are rounded up to 4 bytes by default, or
laid out as an upstream video meta says); the wire carries planes without padding, with
ceil(w/2) x ceil(h/2) chroma samples for odd sizes. The server always answers in NV12.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from facestream.proto import pb

FORMATS = {"NV12": pb.CODEC_RAW_NV12, "I420": pb.CODEC_RAW_I420}


def plane_shapes(fmt: str, width: int, height: int) -> list[tuple[int, int]]:
    """(rows, bytes per row) of each plane of a tightly packed picture."""
    cw, ch = (width + 1) // 2, (height + 1) // 2
    if fmt == "NV12":
        return [(height, width), (ch, 2 * cw)]
    if fmt == "I420":
        return [(height, width), (ch, cw), (ch, cw)]
    raise ValueError(f"unsupported raw format {fmt!r}; use one of {', '.join(FORMATS)}")


def _split(data: bytes | memoryview, shapes: list[tuple[int, int]]) -> list[np.ndarray]:
    flat = np.frombuffer(data, np.uint8)
    planes, at = [], 0
    for rows, cols in shapes:
        planes.append(flat[at:at + rows * cols].reshape(rows, cols))
        at += rows * cols
    if at != flat.size:
        raise ValueError(f"a packed picture of this size has {at} bytes, not {flat.size}")
    return planes


@dataclass(frozen=True)
class Layout:
    """Where the planes of one picture lie in a buffer: byte offset and stride of each plane."""

    format: str
    width: int
    height: int
    offsets: tuple[int, ...]
    strides: tuple[int, ...]
    buffer_size: int = 0   # what GStreamer allots a buffer of this layout, when more than the planes need

    @property
    def codec(self) -> pb.Codec:
        return FORMATS[self.format]

    @property
    def shapes(self) -> list[tuple[int, int]]:
        return plane_shapes(self.format, self.width, self.height)

    @property
    def size(self) -> int:
        """Bytes a buffer of this layout holds (at least up to the end of the last row of its last plane)."""
        return max(self.buffer_size, *(off + stride * (rows - 1) + cols for off, stride, (rows, cols)
                                       in zip(self.offsets, self.strides, self.shapes, strict=True)))

    @property
    def packed_size(self) -> int:
        return sum(rows * cols for rows, cols in self.shapes)

    def _views(self, buf: np.ndarray, writeable: bool = False) -> list[np.ndarray]:
        return [np.lib.stride_tricks.as_strided(buf[off:], (rows, cols), (stride, 1), writeable=writeable)
                for off, stride, (rows, cols) in zip(self.offsets, self.strides, self.shapes, strict=True)]

    def pack(self, mapped: bytes | memoryview) -> bytes:
        """The picture of a mapped buffer as the server takes it (planes without row padding)."""
        flat = np.frombuffer(mapped, np.uint8)
        if flat.size < self.size:
            raise ValueError(f"a {self.width}x{self.height} {self.format} buffer needs {self.size} bytes, "
                             f"this one has {flat.size}")
        return b"".join(np.ascontiguousarray(v).tobytes() for v in self._views(flat))

    def unpack(self, data: bytes, source_format: str) -> bytes:
        """A buffer of this layout holding a packed picture in `source_format` (NV12 from the server, or
        this layout's own format)."""
        if source_format not in ("NV12", self.format):
            raise ValueError(f"cannot lay out {source_format} pictures as {self.format}")
        planes = _split(data, plane_shapes(source_format, self.width, self.height))
        if source_format != self.format:   # NV12 to I420: the interleaved chroma into its two planes
            uv = planes[1].reshape(planes[1].shape[0], -1, 2)
            planes = [planes[0], uv[..., 0], uv[..., 1]]
        out = np.zeros(self.size, np.uint8)
        for view, plane in zip(self._views(out, writeable=True), planes, strict=True):
            view[...] = plane
        return out.tobytes()
