"""CPU codecs on PyAV (FFmpeg): packet-fed decoders and low-latency encoders, NV12 in and out.

PyAV is imported on first use, so the GPU backend (which imports this module for its fallbacks)
starts, and reports what it cannot do, on a host without PyAV.
"""
from __future__ import annotations

from fractions import Fraction
from types import ModuleType
from typing import TYPE_CHECKING

import numpy as np

from ..frame import Frame
from .base import (
    Codec,
    CodecError,
    CodecUnavailable,
    EncodedPacket,
    EncoderSettings,
    PictureWatch,
    check_frame_size,
    nv12_bytes,
    undecodable,
)

if TYPE_CHECKING:
    import av


def pyav() -> ModuleType:
    """The `av` module, or CodecUnavailable saying that PyAV is missing."""
    try:
        import av
    except ImportError as exc:
        raise CodecUnavailable(f"pyav missing: the CPU codecs need PyAV (pip install av): {exc}") from None
    return av


def pyav_status() -> tuple[bool, str]:
    """(True, "PyAV <version>") where PyAV imports, else (False, why not)."""
    try:
        return True, f"PyAV {pyav().__version__}"
    except CodecUnavailable as exc:
        return False, str(exc)


# FFmpeg decoder names for the compressed input codecs.
_DECODERS = {Codec.H264: "h264", Codec.HEVC: "hevc", Codec.AV1: "libdav1d", Codec.VP9: "vp9", Codec.MJPEG: "mjpeg"}


def _plane(frame: av.VideoFrame, i: int, rows: int, cols: int) -> np.ndarray:
    plane = frame.planes[i]
    return np.frombuffer(memoryview(plane), np.uint8).reshape(rows, plane.line_size)[:, :cols]


def pad_to_even(y: np.ndarray, pad: tuple[int, int]) -> np.ndarray:
    """The luma plane with its last column and/or row repeated `pad` times (0 or 1 each)."""
    if not any(pad):
        return y
    return np.pad(y, ((0, pad[1]), (0, pad[0])), mode="edge")


def nv12_planes(frame: av.VideoFrame) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """Y (H, W) and interleaved UV (H/2, W/2, 2) planes of an FFmpeg frame, in video range, and
    the (columns, rows) added to make an odd-sized picture even.

    The software decoders' usual yuv420p is repacked with two array copies (several times
    cheaper than a swscale pass); other formats go through swscale.
    """
    h, w = frame.height, frame.width
    pad = (w & 1, h & 1)
    if any(pad) and frame.format.name != "yuv420p":
        # odd sizes go through planar 4:2:0, whose chroma planes already have ceil(w/2) x ceil(h/2) samples
        # None leaves swscale's default; JPEG's full range is brought to the video range the pipeline expects
        src, dst = ("JPEG", "MPEG") if frame.format.name.startswith("yuvj") else (None, None)
        frame = frame.reformat(format="yuv420p", src_color_range=src, dst_color_range=dst)
    if frame.format.name == "yuv420p":
        ch, cw = (h + 1) // 2, (w + 1) // 2
        y = pad_to_even(_plane(frame, 0, h, w), pad).copy()
        uv = np.empty((ch, cw, 2), np.uint8)
        uv[..., 0] = _plane(frame, 1, ch, cw)
        uv[..., 1] = _plane(frame, 2, ch, cw)
        return y, uv, pad
    if frame.format.name.startswith("yuvj"):  # JPEG's full range, as the rest of the pipeline expects video range
        frame = frame.reformat(format="nv12", src_color_range="JPEG", dst_color_range="MPEG")
    nv12 = frame.to_ndarray(format="nv12")
    return nv12[:h], nv12[h:].reshape(h // 2, w // 2, 2), pad


def planes_to_video_frame(y: np.ndarray, uv: np.ndarray) -> av.VideoFrame:
    """An FFmpeg NV12 frame holding a copy of the planes: each copied once into FFmpeg's buffers (about a
    fifth of the time VideoFrame.from_ndarray takes, with the GIL held either way)."""
    h, w = y.shape
    frame = pyav().VideoFrame(w, h, "nv12")
    for plane, src in zip(frame.planes, (y, uv.reshape(h // 2, w)), strict=True):
        np.frombuffer(memoryview(plane), np.uint8).reshape(-1, plane.line_size)[: src.shape[0], :w] = src
    return frame


class PyAVDecoder:
    """Compressed decoder fed one access unit per call, no container."""

    def __init__(self, codec: Codec) -> None:
        self.codec = codec
        self._av = pyav()
        self._ctx = self._av.CodecContext.create(_DECODERS[codec], "r")
        # Slice threads keep latency at one frame; frame threads would hold pictures back.
        self._ctx.thread_type = "SLICE"
        self._ctx.options = {"err_detect": "crccheck+bitstream+buffer"}
        self._watch = PictureWatch(codec)
        self._index = 0

    def _frames(self, packet: av.Packet | None, what: str) -> list[Frame]:
        try:
            decoded = self._ctx.decode(packet)
        except self._av.error.FFmpegError as exc:
            raise undecodable(self.codec, what, exc.strerror or exc) from None
        frames = []
        for f in decoded:
            if f.pts is None:  # FFmpeg's "no timestamp" is INT64_MIN: a packet may have carried it
                raise CodecError(
                    f"the decoder returned a picture without a timestamp for {what}; set Packet.pts on every "
                    f"packet (not {-2**63}, which codecs read as no timestamp)"
                )
            y, uv, pad = nv12_planes(f)
            frames.append(Frame(y=y, uv=uv, pts=f.pts, index=self._index, pad=pad))
            self._index += 1
        return frames

    def decode(self, data: bytes, pts: int) -> list[Frame]:
        packet = self._av.Packet(data)
        packet.pts = pts
        packet.dts = None
        return self._watch.check(self._frames(packet, f"packet with pts {pts}"))

    def flush(self) -> list[Frame]:
        return self._frames(None, "the end of the stream")

    def close(self) -> None:
        self._ctx = None


class RawDecoder:
    """Raw NV12 or I420 frames, one per packet, of the size given in the session config.

    Any size: a picture of odd width or height has ceil(w/2) x ceil(h/2) chroma samples, and is
    carried on with its last luma column or row repeated (Frame.pad)."""

    def __init__(self, codec: Codec, width: int, height: int) -> None:
        if width <= 0 or height <= 0:
            raise CodecError(f"raw {codec.name} input needs a non-zero width and height in the session config "
                             f"(got {width}x{height})")
        self.codec, self.width, self.height = codec, width, height
        self._chroma = ((height + 1) // 2, (width + 1) // 2)
        self._size = width * height + 2 * self._chroma[0] * self._chroma[1]
        self._index = 0

    def decode(self, data: bytes, pts: int) -> list[Frame]:
        if len(data) != self._size:
            layout = "interleaved UV" if self.codec is Codec.RAW_NV12 else "U and V planes"
            raise CodecError(
                f"raw {self.codec.name} packet with pts {pts} has {len(data)} bytes; a {self.width}x{self.height} "
                f"frame has {self._size} (Y plane then {layout}, {self._chroma[1]}x{self._chroma[0]} chroma samples)"
            )
        w, h = self.width, self.height
        ch, cw = self._chroma
        buf = np.frombuffer(data, np.uint8)
        pad = (w & 1, h & 1)
        y = pad_to_even(buf[: w * h].reshape(h, w), pad).copy()
        if self.codec is Codec.RAW_NV12:
            uv = buf[w * h :].reshape(ch, cw, 2).copy()
        else:
            q = ch * cw
            u = buf[w * h : w * h + q].reshape(ch, cw)
            v = buf[w * h + q :].reshape(ch, cw)
            uv = np.stack([u, v], axis=-1)
        frame = Frame(y=y, uv=uv, pts=pts, index=self._index, pad=pad)
        self._index += 1
        return [frame]

    def flush(self) -> list[Frame]:
        return []

    def close(self) -> None:
        pass


def _crf(quality: int, default: int) -> int:
    return default if quality <= 0 else round(51 * (1 - min(quality, 100) / 100))


SINGLE_THREAD_PIXELS = 1280 * 720
# The longest GOP an encoder is opened with, in frames (about an hour at 30 fps), and the smallest
# picture each codec's encoder opens for (libx265 refuses anything under 16x16).
MAX_GOP = 100_000
MIN_ENCODE_SIZE = {Codec.HEVC: (16, 16)}


def check_encode_size(codec: Codec, width: int, height: int) -> None:
    """CodecError when `codec` cannot encode width x height pictures."""
    min_w, min_h = MIN_ENCODE_SIZE.get(codec, (1, 1))
    if width < min_w or height < min_h:
        raise CodecError(f"{codec.name} output needs pictures of at least {min_w}x{min_h}; this stream's are "
                         f"{width}x{height}: ask for H264, MJPEG or RAW_NV12 output instead")


class PyAVEncoder:
    """H.264 (libx264), HEVC (libx265) or JPEG per frame, tuned for low latency.

    The encoder sees a frame counter as pts (so any client pts, even repeated ones, is fine),
    and every packet is mapped back to the pts of the frame it came from.
    """

    def __init__(self, settings: EncoderSettings) -> None:
        lib = pyav()
        s = settings
        check_encode_size(s.codec, s.width, s.height)
        self.settings = s
        fps = Fraction(*s.frame_rate) if s.frame_rate[0] > 0 and s.frame_rate[1] > 0 else Fraction(30)
        if s.codec is Codec.H264:
            ctx = lib.CodecContext.create("libx264", "w")
            ctx.pix_fmt = "nv12"
            # superfast: 1.6x less time per frame than veryfast at 360p for ~20 % more bytes at the same
            # CRF; a live server is bound by frame time (benchmarks/results/encoder-presets.md).
            opts = {"preset": "superfast", "tune": "zerolatency", "repeat-headers": "1"}
            if s.width * s.height <= SINGLE_THREAD_PIXELS:
                # Small frames: slice threads cost more than they save, and the pipeline's stages
                # and sessions already keep the cores busy.
                ctx.thread_count = 1
            if not s.bitrate_kbps:
                opts["crf"] = str(_crf(s.quality, 23))
        elif s.codec is Codec.HEVC:
            ctx = lib.CodecContext.create("libx265", "w")
            ctx.pix_fmt = "yuv420p"
            params = "log-level=error:repeat-headers=1"
            if not s.bitrate_kbps:
                params += f":crf={_crf(s.quality, 28)}"
            opts = {"preset": "ultrafast", "tune": "zerolatency", "x265-params": params}
        elif s.codec is Codec.MJPEG:
            ctx = lib.CodecContext.create("mjpeg", "w")
            ctx.pix_fmt = "yuvj420p"
            quality = s.quality or 85
            # A fixed quantiser: qmin = qmax pins it (FFmpeg's mjpeg encoder ignores qscale alone here).
            ctx.qmin = ctx.qmax = max(2, min(31, round(31 - (quality / 100) * 29)))
            opts = {}
        else:
            raise CodecError(f"{s.codec.name} is not an encoder codec")
        ctx.width, ctx.height = s.width, s.height
        ctx.time_base = 1 / fps
        ctx.framerate = fps
        ctx.gop_size = min(s.gop or max(1, round(2 * fps)), MAX_GOP)
        ctx.max_b_frames = 0
        if s.bitrate_kbps:
            ctx.bit_rate = s.bitrate_kbps * 1000
        ctx.options = opts
        ctx.open()
        self._ctx = ctx
        self._count = 0
        self._pts: dict[int, int] = {}

    def _packets(self, frame: av.VideoFrame | None) -> list[EncodedPacket]:
        out = []
        for p in self._ctx.encode(frame):
            out.append(EncodedPacket(bytes(p), self._pts.pop(p.pts), p.is_keyframe))
        return out

    def encode(self, frame: Frame) -> list[EncodedPacket]:
        check_frame_size(self.settings, frame)
        vf = planes_to_video_frame(frame.y, frame.uv)
        if self._ctx.pix_fmt != "nv12":
            vf = vf.reformat(format=self._ctx.pix_fmt)
        if (vf.width, vf.height) != (self.settings.width, self.settings.height):
            vf = _cropped(vf, self.settings.width, self.settings.height)
        vf.pts = self._count
        self._pts[self._count] = frame.pts
        self._count += 1
        return self._packets(vf)

    def flush(self) -> list[EncodedPacket]:
        return self._packets(None)

    def close(self) -> None:
        self._ctx = None


def _cropped(vf: av.VideoFrame, width: int, height: int) -> av.VideoFrame:
    """A planar 4:2:0 frame cut to width x height (its padding column or row dropped)."""
    out = pyav().VideoFrame(width, height, vf.format.name)
    for i, dst in enumerate(out.planes):
        sub = 0 if i == 0 else 1
        rows, cols = -(-height >> sub), -(-width >> sub)   # ceil for the chroma planes
        data = np.zeros((rows, dst.line_size), np.uint8)
        data[:, :cols] = _plane(vf, i, -(-vf.height >> sub), -(-vf.width >> sub))[:rows, :cols]
        dst.update(data.tobytes())
    return out


class RawEncoder:
    """NV12 out: the Y plane followed by the interleaved UV plane, at the picture's own size."""

    def __init__(self, settings: EncoderSettings) -> None:
        self.settings = settings

    def encode(self, frame: Frame) -> list[EncodedPacket]:
        check_frame_size(self.settings, frame)
        return [EncodedPacket(nv12_bytes(frame.y, frame.uv, self.settings.width, self.settings.height), frame.pts,
                              True)]

    def flush(self) -> list[EncodedPacket]:
        return []

    def close(self) -> None:
        pass


def make_decoder(codec: Codec, width: int = 0, height: int = 0) -> PyAVDecoder | RawDecoder:
    if codec.is_raw:
        return RawDecoder(codec, width, height)
    return PyAVDecoder(codec)


def make_encoder(settings: EncoderSettings) -> PyAVEncoder | RawEncoder:
    if settings.codec is Codec.RAW_NV12:
        return RawEncoder(settings)
    return PyAVEncoder(settings)
