"""The GPU JPEG encoder's colour conversion (engines/codec/kernels/nv12_rgb.cu, driven by
gpu_jpeg.Nv12ToRgb) built for the host: pixel for pixel OpenCV's BT.601 limited-range NV12 -> RGB,
on real pictures, on pictures of odd size carried in padded planes, on planes with a row pitch
wider than the picture, and at the extremes of the code range where the result clamps."""
from __future__ import annotations

import av
import cv2
import numpy as np
import pytest

from facestream.engines.codec.gpu_jpeg import Nv12ToRgb
from facestream.engines.vision.resample import bgr_to_nv12

from .host_kernels import HostStream, checks
from support import CLIP, MEDIA

PHOTOS = ("obama-720p.jpg", "two_people.jpg", "kit_with_rose.jpg")


def _opencv_rgb(y: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """OpenCV's conversion of the whole planes, as (3, H, W)."""
    h, w = y.shape
    rgb = cv2.cvtColor(np.vstack([y, uv.reshape(h // 2, w)]), cv2.COLOR_YUV2RGB_NV12)
    return np.ascontiguousarray(rgb.transpose(2, 0, 1))


@pytest.fixture(scope="module")
def pictures() -> list[tuple[str, np.ndarray, np.ndarray]]:
    if not CLIP.exists():
        pytest.fail(f"test media not found at {MEDIA}; set FACESTREAM_MEDIA")
    out = [(name, *bgr_to_nv12(cv2.imread(str(MEDIA / name)))) for name in PHOTOS]
    with av.open(str(CLIP)) as c:
        for i, f in enumerate(c.decode(video=0)):
            if i in (0, 250):
                nv12 = f.to_ndarray(format="nv12")
                h = f.height
                out.append((f"clip frame {i}", np.ascontiguousarray(nv12[:h]),
                            np.ascontiguousarray(nv12[h:].reshape(h // 2, f.width // 2, 2))))
            if i >= 250:
                break
    return out


@checks("nv12_to_rgb_planar")
def test_real_pictures_convert_as_opencv_does(host, pictures):
    convert = Nv12ToRgb(HostStream(), host)
    for name, y, uv in pictures:
        got = convert(y, uv, y.shape[1], y.shape[0])
        want = _opencv_rgb(y, uv)
        assert got.shape == want.shape, name
        assert np.array_equal(got, want), f"{name}: {np.count_nonzero(got != want)} values differ"


@checks("nv12_to_rgb_planar")
def test_odd_sized_pictures_leave_the_padding_out(host, pictures):
    """A picture one column and/or row short of its planes, as the pipeline carries odd sizes."""
    convert = Nv12ToRgb(HostStream(), host)
    name, y, uv = pictures[0]
    full = _opencv_rgb(y, uv)
    h, w = y.shape
    for width, height in ((w - 1, h), (w, h - 1), (w - 1, h - 1)):
        got = convert(y, uv, width, height)
        assert got.shape == (3, height, width)
        assert np.array_equal(got, full[:, :height, :width]), f"{name} as {width}x{height}"


@checks("nv12_to_rgb_planar")
def test_planes_with_a_wider_pitch(host, pictures):
    """Planes that are views into wider rows (a decoder surface's pitch) are read by their pitch."""
    convert = Nv12ToRgb(HostStream(), host)
    _, y, uv = pictures[-1]
    h, w = y.shape
    wide_y = np.zeros((h, w + 64), np.uint8)
    wide_uv = np.zeros((h // 2, w // 2 + 32, 2), np.uint8)
    wide_y[:, :w] = y
    wide_uv[:, : w // 2] = uv
    got = convert(wide_y[:, :w], wide_uv[:, : w // 2], w, h)
    assert np.array_equal(got, _opencv_rgb(y, uv))


@checks("nv12_to_rgb_planar")
def test_the_code_range_extremes_clamp_as_opencv_does(host):
    convert = Nv12ToRgb(HostStream(), host)
    levels_y = np.array([0, 1, 15, 16, 17, 128, 234, 235, 236, 254, 255], np.uint8)
    levels_c = np.array([0, 1, 16, 64, 127, 128, 129, 192, 240, 255], np.uint8)
    # every luma level against every (U, V) pair: one 2x2 block per combination
    u, v = np.meshgrid(levels_c, levels_c, indexing="ij")
    pairs = np.stack([u.ravel(), v.ravel()], axis=-1)                          # (100, 2)
    uv = np.repeat(pairs[None], len(levels_y), axis=0)                         # (11, 100, 2)
    y = np.repeat(np.repeat(np.repeat(levels_y[:, None], len(pairs), 1), 2, 0), 2, 1)
    got = convert(np.ascontiguousarray(y), np.ascontiguousarray(uv), y.shape[1], y.shape[0])
    want = _opencv_rgb(y, uv)
    assert np.array_equal(got, want), f"{np.count_nonzero(got != want)} values differ"
    assert got.min() == 0 and got.max() == 255


def test_a_picture_larger_than_its_planes_is_refused(host, pictures):
    convert = Nv12ToRgb(HostStream(), host)
    _, y, uv = pictures[0]
    with pytest.raises(ValueError, match="does not fit"):
        convert(y, uv, y.shape[1] + 2, y.shape[0])
