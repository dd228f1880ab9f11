"""Pictures between GStreamer's padded rows and the server's packed planes, for odd sizes too."""
from __future__ import annotations

import numpy as np
import pytest

from facestream.client.gstreamer.frames import Layout, plane_shapes


def padded(fmt: str, width: int, height: int) -> Layout:
    """GStreamer's default layout: every row rounded up to 4 bytes, planes one after another."""
    offsets, strides, at = [], [], 0
    for rows, cols in plane_shapes(fmt, width, height):
        stride = (cols + 3) // 4 * 4
        offsets.append(at)
        strides.append(stride)
        at += stride * rows
    return Layout(fmt, width, height, tuple(offsets), tuple(strides), at)


@pytest.mark.parametrize("fmt", ["NV12", "I420"])
@pytest.mark.parametrize("size", [(640, 360), (321, 181), (1, 1)])
def test_packing_drops_the_row_padding_and_unpacking_restores_it(fmt, size):
    layout = padded(fmt, *size)
    rng = np.random.default_rng(0)
    buffer = rng.integers(0, 256, layout.size, np.uint8)
    packed = layout.pack(buffer.tobytes())
    assert len(packed) == layout.packed_size
    restored = np.frombuffer(layout.unpack(packed, fmt), np.uint8)
    for off, stride, (rows, cols) in zip(layout.offsets, layout.strides, layout.shapes, strict=True):
        for r in range(rows):
            start = off + r * stride
            assert np.array_equal(restored[start : start + cols], buffer[start : start + cols])


def test_nv12_from_the_server_becomes_i420_planes():
    width, height = 5, 3
    layout = padded("I420", width, height)
    y = np.arange(15, dtype=np.uint8)
    uv = np.array([[100, 200, 101, 201, 102, 202], [103, 203, 104, 204, 105, 205]], np.uint8)
    out = np.frombuffer(layout.unpack(y.tobytes() + uv.tobytes(), "NV12"), np.uint8)
    u = out[layout.offsets[1]:][: layout.strides[1] * 2].reshape(2, -1)[:, :3]
    v = out[layout.offsets[2]:][: layout.strides[2] * 2].reshape(2, -1)[:, :3]
    assert u.tolist() == [[100, 101, 102], [103, 104, 105]]
    assert v.tolist() == [[200, 201, 202], [203, 204, 205]]
    assert out[:5].tolist() == [0, 1, 2, 3, 4] and out[8:13].tolist() == [5, 6, 7, 8, 9]


def test_a_short_buffer_says_what_it_needed():
    layout = padded("NV12", 64, 48)
    with pytest.raises(ValueError, match=f"needs {layout.size} bytes"):
        layout.pack(bytes(100))
