"""Video sources: anything PyAV can open, turned into the packets a session sends.

H.264 and HEVC go out as Annex-B access units through FFmpeg's bitstream filter, without
re-encoding; other codecs are decoded here and sent as raw NV12 frames.
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Iterator

import av

from facestream.proto import pb

_PASS_THROUGH = {"h264": (pb.CODEC_H264, "h264_mp4toannexb"), "hevc": (pb.CODEC_HEVC, "hevc_mp4toannexb")}


class SourceError(RuntimeError):
    """The video source failed while its packets were being sent; the session was cancelled."""


@dataclass
class SourcePacket:
    data: bytes
    pts: int


class VideoSource:
    """Opens `url` (file, rtmp://, http://, a capture device with `format`) and yields packets.

    `raw=True` decodes on this side and sends NV12 frames even for H.264/HEVC input.
    """

    def __init__(self, url: str, *, raw: bool = False, format: str | None = None, options: dict | None = None) -> None:
        self.url = url
        try:
            self._container = av.open(url, format=format, options=options or {})
        except (av.error.FFmpegError, OSError) as exc:
            raise ValueError(f"cannot open video source {url!r}: {exc}") from None
        if not self._container.streams.video:
            self._container.close()
            raise ValueError(f"{url!r} has no video stream")
        self.stream = self._container.streams.video[0]
        ctx = self.stream.codec_context
        self.width, self.height = ctx.width, ctx.height
        self.time_base: Fraction = self.stream.time_base or Fraction(1, 90000)
        rate = self.stream.average_rate or self.stream.guessed_rate or Fraction(30)
        self.frame_rate = Fraction(rate)
        self.frames = self.stream.frames or None
        name = ctx.codec.name
        self.raw = raw or name not in _PASS_THROUGH
        self.codec = pb.CODEC_RAW_NV12 if self.raw else _PASS_THROUGH[name][0]
        self._bsf = None if self.raw else av.BitStreamFilterContext(_PASS_THROUGH[name][1], self.stream)

    def input_config(self) -> pb.InputConfig:
        return pb.InputConfig(
            codec=self.codec,
            width=self.width,
            height=self.height,
            time_base=pb.Rational(num=self.time_base.numerator, den=self.time_base.denominator),
            frame_rate=pb.Rational(num=self.frame_rate.numerator, den=self.frame_rate.denominator),
        )

    def _ticks_per_frame(self) -> int:
        return max(1, round(1 / (self.frame_rate * self.time_base)))

    def __iter__(self) -> Iterator[SourcePacket]:
        count = 0
        step = self._ticks_per_frame()
        if self.raw:
            for frame in self._container.decode(self.stream):
                nv12 = frame.reformat(format="nv12").to_ndarray(format="nv12") if frame.format.name != "nv12" else frame.to_ndarray()
                pts = frame.pts if frame.pts is not None else count * step
                count += 1
                yield SourcePacket(nv12.tobytes(), pts)
            return
        for packet in self._container.demux(self.stream):
            for out in self._bsf.filter(packet if packet.size else None):
                pts = out.pts if out.pts is not None else count * step
                count += 1
                yield SourcePacket(bytes(out), pts)

    def close(self) -> None:
        self._container.close()
