"""How a track's frames cross to the server and back: raw NV12 (the default) or H.264.

Raw NV12 costs no codec work on either side (the server skips its decoder and encoder), so it adds
the least latency where the gateway runs next to the server; H.264 cuts the bytes on the wire about
fifty-fold for a gateway that reaches its server over a slower link, at the price of an encode and
a decode on each side (benchmarks/webrtc_latency.py measures both).
"""
from __future__ import annotations

from fractions import Fraction

import av
import numpy as np

from facestream.proto import pb

from ..api import EffectsArg
from ..live import raw_config
from ..source import nv12_bytes

# Input pts are the frames' arrival times on this clock (RTP's video clock), so the server sees
# the real frame rate whatever the source's timestamps were.
TIME_BASE = Fraction(1, 90000)
WIRES = ("nv12", "h264")


def yuv_frame(data: bytes, width: int, height: int) -> av.VideoFrame:
    """A raw NV12 picture (odd sizes: ceil(w/2) x ceil(h/2) chroma) as the yuv420p frame WebRTC encoders take."""
    cw, ch = (width + 1) // 2, (height + 1) // 2
    buf = np.frombuffer(data, np.uint8)
    uv = buf[width * height : width * height + cw * ch * 2].reshape(ch, cw, 2)
    frame = av.VideoFrame(width, height, "yuv420p")
    y = buf[: width * height].reshape(height, width)
    for plane, pixels in zip(frame.planes, (y, uv[..., 0], uv[..., 1]), strict=True):
        rows = np.frombuffer(memoryview(plane), np.uint8).reshape(-1, plane.line_size)
        rows[: pixels.shape[0], : pixels.shape[1]] = pixels
    return frame


class Nv12Wire:
    """Raw NV12 both ways."""

    name = "nv12"

    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height

    def config(self, effects: EffectsArg, fps: float) -> pb.SessionConfig:
        config = raw_config(self.width, self.height, effects=effects, fps=fps, output=pb.CODEC_RAW_NV12,
                            realtime=False, label="webrtc")
        config.input.time_base.CopyFrom(pb.Rational(num=TIME_BASE.numerator, den=TIME_BASE.denominator))
        return config

    def encode(self, frame: av.VideoFrame) -> bytes:
        return nv12_bytes(frame, self.width, self.height)

    def decode(self, packet: pb.OutputPacket) -> av.VideoFrame | None:
        if not packet.data:  # a frame the server dropped
            return None
        return yuv_frame(packet.data, packet.width or self.width, packet.height or self.height)


class H264Wire(Nv12Wire):
    """H.264 both ways: libx264 without lookahead or B-frames here, one picture per packet back."""

    name = "h264"

    def __init__(self, width: int, height: int) -> None:
        super().__init__(width, height)
        self._encoder = av.CodecContext.create("libx264", "w")
        self._encoder.width, self._encoder.height = width, height
        self._encoder.pix_fmt = "yuv420p"
        self._encoder.time_base = TIME_BASE
        # zerolatency: no lookahead, no B-frames, so each picture comes out as it goes in
        self._encoder.options = {"preset": "ultrafast", "tune": "zerolatency", "crf": "18",
                                 "x264-params": "keyint=infinite"}
        self._decoder = av.CodecContext.create("h264", "r")
        self._decoder.thread_type = "SLICE"  # frame threads would hold pictures back
        self._index = 0

    def config(self, effects: EffectsArg, fps: float) -> pb.SessionConfig:
        config = super().config(effects, fps)
        config.input.codec = pb.CODEC_H264
        config.output.codec = pb.CODEC_H264
        return config

    def encode(self, frame: av.VideoFrame) -> bytes:
        picture = frame.reformat(width=self.width, height=self.height, format="yuv420p")
        picture.pts, picture.time_base = self._index, TIME_BASE  # the track has kept the source frame's
        self._index += 1
        return b"".join(bytes(p) for p in self._encoder.encode(picture))

    def decode(self, packet: pb.OutputPacket) -> av.VideoFrame | None:
        if not packet.data:
            return None
        frames = self._decoder.decode(av.Packet(packet.data))
        return frames[-1] if frames else None


def make_wire(name: str, width: int, height: int) -> Nv12Wire:
    """The wire called `name`; H.264 codes only even sizes, so odd ones go as raw NV12."""
    if name not in WIRES:
        raise ValueError(f"unknown wire {name!r}; choose one of {', '.join(WIRES)}")
    if name == "h264" and not (width % 2 or height % 2):
        return H264Wire(width, height)
    return Nv12Wire(width, height)
