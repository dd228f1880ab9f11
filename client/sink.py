"""Where processed video goes: a file (stream copy into mp4/mkv) or decoded frames for a callback."""
from __future__ import annotations

from fractions import Fraction

import av
import numpy as np

from facestream.proto import pb

_MUX_CODECS = {pb.CODEC_H264: "h264", pb.CODEC_HEVC: "hevc", pb.CODEC_MJPEG: "mjpeg", pb.CODEC_RAW_NV12: "rawvideo"}


class FileSink:
    """Muxes output packets into a container chosen by the file name, without re-encoding."""

    def __init__(self, path: str, codec: int, width: int, height: int, time_base: Fraction, frame_rate: Fraction) -> None:
        self.path = path
        self._container = av.open(path, "w")
        stream = self._container.add_stream(_MUX_CODECS[codec], rate=frame_rate)
        stream.width, stream.height = width, height
        stream.time_base = self._time_base = time_base
        # The muxer opens an encoder for the stream even though packets are copied; keep it quiet.
        if codec == pb.CODEC_HEVC:
            stream.codec_context.options = {"preset": "ultrafast", "x265-params": "log-level=none"}
        if codec == pb.CODEC_RAW_NV12:
            stream.pix_fmt = "nv12"
            stream.codec_context.codec_tag = "NV12"
        elif codec == pb.CODEC_MJPEG:
            stream.pix_fmt = "yuvj420p"
        self._stream = stream

    def write(self, packet: pb.OutputPacket) -> None:
        if not packet.data:
            return  # a frame the server dropped under the real-time policy
        out = av.Packet(packet.data)
        out.pts = out.dts = packet.pts
        out.time_base = self._time_base
        out.is_keyframe = packet.keyframe
        out.stream = self._stream
        self._container.mux(out)

    def close(self) -> None:
        self._container.close()


class FrameDecoder:
    """Decodes output packets back into pictures for a callback (BGR by default, as OpenCV expects)."""

    def __init__(self, codec: int, width: int, height: int, format: str = "bgr24") -> None:
        self.format = format
        self.width, self.height = width, height
        self._raw = codec == pb.CODEC_RAW_NV12
        self._ctx = None if self._raw else av.CodecContext.create(_MUX_CODECS[codec], "r")

    def decode(self, packet: pb.OutputPacket) -> list[np.ndarray]:
        if not packet.data:
            return []
        if self._raw:
            w, h = packet.width, packet.height
            nv12 = np.frombuffer(packet.data, np.uint8).reshape(h * 3 // 2, w)
            frame = av.VideoFrame.from_ndarray(nv12, format="nv12")
            return [frame.to_ndarray(format=self.format)]
        return [f.to_ndarray(format=self.format) for f in self._ctx.decode(av.Packet(packet.data))]
