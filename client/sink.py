"""Where processed video goes: a video file (stream copy), a still image, or decoded frames for a callback.

Which outputs can be written is checked before a session starts (`check_output`), so a wrong
extension or a codec the container cannot hold is a clear error rather than a failure at the end.
"""
from __future__ import annotations

import io
from fractions import Fraction
from pathlib import Path
from typing import Literal

import av
import cv2
import numpy as np

from facestream.proto import pb

# FFmpeg's names of the output codecs (literals, so PyAV's stubs type their streams and decoders as video)
_MUX_CODECS: dict[pb.Codec, Literal["h264", "hevc", "mjpeg", "rawvideo"]] = {
    pb.CODEC_H264: "h264", pb.CODEC_HEVC: "hevc", pb.CODEC_MJPEG: "mjpeg", pb.CODEC_RAW_NV12: "rawvideo"}
# Containers by file extension, and still-image extensions (written through OpenCV).
VIDEO_CONTAINERS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".avi": "avi",
                    ".ts": "mpegts", ".flv": "flv"}
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


def is_image_path(path: str) -> bool:
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def check_output(path: str, codec: pb.Codec, still_input: bool) -> None:
    """Raises ValueError saying what to do when `path` cannot take the session's output."""
    suffix = Path(path).suffix.lower()
    if suffix in IMAGE_EXTENSIONS:
        if not still_input:
            raise ValueError(f"{path!r} is a still image but the input is a video; write to "
                             f"{', '.join(sorted(VIDEO_CONTAINERS))} instead")
        if not cv2.haveImageWriter(path):
            raise ValueError(f"this OpenCV cannot write {suffix} images; use .jpg or .png")
        return
    if suffix not in VIDEO_CONTAINERS:
        raise ValueError(f"cannot write {path!r}: unknown output type {suffix or '(no extension)'}; use a video "
                         f"file ({', '.join(sorted(VIDEO_CONTAINERS))}) or, for a photo, an image "
                         f"({', '.join(IMAGE_EXTENSIONS)})")
    with av.open(io.BytesIO(), "w", format=VIDEO_CONTAINERS[suffix]) as probe:
        supported = probe.supported_codecs
    name = _MUX_CODECS[codec]
    if name not in supported:
        fits = [ext for ext, fmt in sorted(VIDEO_CONTAINERS.items()) if _container_takes(fmt, name)]
        raise ValueError(f"a {suffix} file cannot hold {pb.Codec.Name(codec).removeprefix('CODEC_')} video; "
                         f"use {', '.join(fits) or 'another codec'}")
    if not Path(path).resolve().parent.is_dir():
        raise ValueError(f"cannot write {path!r}: the folder {str(Path(path).parent)!r} does not exist")


def _container_takes(fmt: str, codec: str) -> bool:
    with av.open(io.BytesIO(), "w", format=fmt) as probe:
        return codec in probe.supported_codecs


def nv12_to_bgr(data: bytes, width: int, height: int) -> np.ndarray:
    """BGR picture of a raw NV12 frame of any size (odd sizes carry ceil(w/2) x ceil(h/2) chroma)."""
    w2, h2 = width + (width & 1), height + (height & 1)
    y = np.frombuffer(data, np.uint8, width * height).reshape(height, width)
    uv = np.frombuffer(data, np.uint8, w2 * h2 // 2, offset=width * height).reshape(h2 // 2, w2)
    even = np.pad(y, ((0, h2 - height), (0, w2 - width)), mode="edge")
    return cv2.cvtColor(np.vstack([even, uv]), cv2.COLOR_YUV2BGR_NV12)[:height, :width]


class FileSink:
    """Muxes output packets into a container chosen by the file name, without re-encoding."""

    def __init__(self, path: str, codec: pb.Codec, width: int, height: int, time_base: Fraction,
                 frame_rate: Fraction) -> None:
        self.path = path
        self._container = av.open(path, "w", format=VIDEO_CONTAINERS.get(Path(path).suffix.lower()))
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


class ImageSink:
    """Writes the processed picture of a still image (raw NV12 from the server) as JPEG, PNG, ..."""

    def __init__(self, path: str, quality: int = 0) -> None:
        self.path = path
        self.quality = quality or 95
        self.written = 0

    def write(self, packet: pb.OutputPacket) -> None:
        if not packet.data:
            return
        bgr = nv12_to_bgr(packet.data, packet.width, packet.height)
        params = [cv2.IMWRITE_JPEG_QUALITY, self.quality] if Path(self.path).suffix.lower() in (".jpg", ".jpeg") else []
        if not cv2.imwrite(self.path, bgr, params):
            raise OSError(f"could not write the image {self.path!r}")
        self.written += 1

    def close(self) -> None:
        pass


class FrameDecoder:
    """Decodes output packets back into pictures for a callback (BGR by default, as OpenCV expects)."""

    def __init__(self, codec: pb.Codec, width: int, height: int, format: str = "bgr24") -> None:
        self.format = format
        self.width, self.height = width, height
        self._raw = codec == pb.CODEC_RAW_NV12
        self._ctx = None if self._raw else av.CodecContext.create(_MUX_CODECS[codec], "r")

    def decode(self, packet: pb.OutputPacket) -> list[np.ndarray]:
        if not packet.data:
            return []
        if self._raw:
            bgr = nv12_to_bgr(packet.data, packet.width, packet.height)
            if self.format == "bgr24":
                return [bgr]
            return [av.VideoFrame.from_ndarray(bgr, format="bgr24").to_ndarray(format=self.format)]
        assert self._ctx is not None  # only raw NV12 output comes without a decoder
        return [f.to_ndarray(format=self.format) for f in self._ctx.decode(av.Packet(packet.data))]
