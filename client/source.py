"""Video sources: anything PyAV can open, turned into the packets a session sends.

H.264 and HEVC go out as Annex-B access units through FFmpeg's bitstream filter, without
re-encoding; other codecs, still images and pictures scaled to fit the server's limits are decoded
here and sent as raw NV12 frames (any size: odd ones carry ceil(w/2) x ceil(h/2) chroma samples).
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Iterator

import av
import numpy as np

from facestream.proto import pb

_PASS_THROUGH = {"h264": (pb.CODEC_H264, "h264_mp4toannexb"), "hevc": (pb.CODEC_HEVC, "hevc_mp4toannexb")}
# FFmpeg's demuxers for single pictures (files and pipes).
_STILL_FORMATS = ("image2", "_pipe")


def fit_size(width: int, height: int, max_width: int, max_height: int) -> tuple[int, int]:
    """The largest size with the same aspect ratio within the limits (unchanged when it fits)."""
    scale = min(1.0, max_width / width, max_height / height)
    return max(2, int(width * scale)), max(2, int(height * scale))


def nv12_bytes(frame: av.VideoFrame, width: int, height: int) -> bytes:
    """The frame as video-range NV12 at width x height: luma rows, then interleaved chroma rows."""
    full_range = frame.format.name.startswith("yuvj") or frame.color_range == 2  # AVCOL_RANGE_JPEG
    src, dst = ("JPEG", "MPEG") if full_range else (None, None)  # None: swscale's default
    yuv = frame.reformat(width=width, height=height, format="yuv420p", interpolation="AREA",
                         src_color_range=src, dst_color_range=dst)
    cw, ch = (width + 1) // 2, (height + 1) // 2
    y, u, v = (np.frombuffer(memoryview(p), np.uint8).reshape(-1, p.line_size) for p in yuv.planes)
    uv = np.empty((ch, cw, 2), np.uint8)
    uv[..., 0], uv[..., 1] = u[:ch, :cw], v[:ch, :cw]
    return y[:height, :width].tobytes() + uv.tobytes()


@dataclass
class SourcePacket:
    data: bytes
    pts: int


class VideoSource:
    """Opens `url` (file, rtmp://, http://, a capture device with `format`) and yields packets.

    `raw=True` decodes on this side and sends NV12 frames even for H.264/HEVC input. `fit`,
    a (max width, max height), scales larger pictures down to fit, keeping the aspect ratio.
    """

    def __init__(self, url: str, *, raw: bool = False, format: str | None = None, options: dict | None = None,
                 fit: tuple[int, int] | None = None) -> None:
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
        self.source_size = (ctx.width, ctx.height)
        self.width, self.height = fit_size(ctx.width, ctx.height, *fit) if fit else self.source_size
        self.still = any(part in self._container.format.name for part in _STILL_FORMATS)
        self.time_base: Fraction = self.stream.time_base or Fraction(1, 90000)
        rate = self.stream.average_rate or self.stream.guessed_rate or Fraction(30)
        self.frame_rate = Fraction(rate)
        self.frames = self.stream.frames or None
        name = ctx.codec.name
        self.raw = raw or name not in _PASS_THROUGH or self.scaled
        self.codec = pb.CODEC_RAW_NV12 if self.raw else _PASS_THROUGH[name][0]
        self._bsf = None if self.raw else av.BitStreamFilterContext(_PASS_THROUGH[name][1], self.stream)

    @property
    def scaled(self) -> bool:
        return (self.width, self.height) != self.source_size

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
                pts = frame.pts if frame.pts is not None else count * step
                count += 1
                yield SourcePacket(nv12_bytes(frame, self.width, self.height), pts)
            return
        assert self._bsf is not None  # every source that is not decoded here has its bitstream filter
        for packet in self._container.demux(self.stream):
            for out in self._bsf.filter(packet if packet.size else None):
                pts = out.pts if out.pts is not None else count * step
                count += 1
                yield SourcePacket(bytes(out), pts)

    def close(self) -> None:
        self._container.close()
