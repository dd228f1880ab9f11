"""The NVDEC latency mode rests on reading a stream's reorder depth from its first access unit:
low latency (a picture per packet) is only safe when the stream never reorders frames. These
checks run on the CPU: the decision is made with PyAV before any GPU is involved."""
from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest

from facestream.engines.codec.base import Codec
from facestream.engines.codec.gpu import _is_keyframe, _probe_stream, reorders_frames

from support import CLIP


def _first_access_unit(path) -> bytes:
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        bsf = av.BitStreamFilterContext(f"{s.codec_context.name}_mp4toannexb", s)
        for p in c.demux(s):
            for q in bsf.filter(p):
                return bytes(q)
    raise AssertionError("no packet")


def _encode(codec: str, bframes: int, frames: int = 12) -> tuple[bytes, list[int]]:
    """(first access unit, decode-order pts of all packets) of a short 128x96 stream."""
    enc = av.CodecContext.create(codec, "w")
    enc.width, enc.height, enc.pix_fmt = 128, 96, "yuv420p"
    enc.time_base = Fraction(1, 30)
    enc.max_b_frames = bframes
    if codec == "libx265":
        enc.options = {"x265-params": f"bframes={bframes}:log-level=error"}
    else:
        enc.options = {"bframes": str(bframes)}
    rng = np.random.default_rng(0)
    packets = []
    base = rng.integers(0, 255, (96 * 3 // 2, 128), np.uint8)
    for i in range(frames):
        f = av.VideoFrame.from_ndarray(np.roll(base, 3 * i, axis=1), format="yuv420p")
        f.pts = i
        packets += enc.encode(f)
    packets += enc.encode(None)
    return bytes(packets[0]), [int(p.pts) for p in packets]


def test_the_shared_clip_never_reorders():
    # constrained baseline: no B-frames, so NVDEC may hand out each picture as its packet arrives
    assert reorders_frames(Codec.H264, _first_access_unit(CLIP)) is False


@pytest.mark.parametrize("codec,wire", [("libx264", Codec.H264), ("libx265", Codec.HEVC)])
def test_streams_with_b_frames_are_seen_from_their_first_packet(codec, wire):
    first, pts = _encode(codec, bframes=2)
    assert pts != sorted(pts), "the encoder was asked for B-frames and should have reordered"
    assert reorders_frames(wire, first) is True


@pytest.mark.parametrize("codec,wire", [("libx264", Codec.H264), ("libx265", Codec.HEVC)])
def test_streams_without_b_frames_get_low_latency(codec, wire):
    first, pts = _encode(codec, bframes=0)
    assert pts == sorted(pts)
    assert reorders_frames(wire, first) is False


def test_an_unreadable_first_packet_is_treated_as_reordering():
    assert reorders_frames(Codec.H264, b"\x00\x00\x01\x09garbage") is True


@pytest.mark.parametrize("codec", [Codec.VP9, Codec.AV1])
def test_vp9_and_av1_output_in_display_order(codec):
    assert reorders_frames(codec, b"") is False


def test_the_nvdec_probe_stream_starts_with_a_keyframe():
    packets = _probe_stream()
    assert packets and _is_keyframe(Codec.H264, packets[0][0])
    assert [pts for _, pts in packets] == sorted(pts for _, pts in packets)
