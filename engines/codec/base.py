"""The decode and encode stage interfaces, shared by the CPU (PyAV) and GPU (NVDEC) backends."""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from ..frame import Frame


class Codec(str, Enum):
    """Codec names used inside the engines; the wire enum maps onto these."""

    H264 = "h264"
    HEVC = "hevc"
    AV1 = "av1"
    VP9 = "vp9"
    MJPEG = "mjpeg"
    RAW_NV12 = "nv12"
    RAW_I420 = "i420"

    @property
    def is_raw(self) -> bool:
        return self in (Codec.RAW_NV12, Codec.RAW_I420)


class CodecError(ValueError):
    """Input the codec cannot handle; the message says what was wrong and is shown to the client."""


class CodecUnavailable(RuntimeError):
    """A codec library this host lacks (PyAV on a GPU host, say); the message names it and the fix."""


# How many packets may go in without a picture coming out before the input is declared
# undecodable: more than any conformant stream's reorder delay (H.264/HEVC allow 16).
MAX_PICTURE_DELAY = 16


def _framing(codec: Codec) -> str:
    return "Annex-B" if codec in (Codec.H264, Codec.HEVC) else "raw bitstream"


def undecodable(codec: Codec, what: str, why: object) -> CodecError:
    """The error for a packet the decoder rejected, saying what the server expects instead."""
    return CodecError(
        f"{what} could not be decoded as {codec.name}: {why}; send one {codec.name} access unit per packet "
        f"({_framing(codec)}, starting with a keyframe)"
    )


class PictureWatch:
    """Counts packets that produce no picture; too many in a row means the input is not this codec."""

    def __init__(self, codec: Codec) -> None:
        self.codec = codec
        self.pending = 0

    def check(self, frames: list[Frame]) -> list[Frame]:
        self.pending = 0 if frames else self.pending + 1
        if self.pending > MAX_PICTURE_DELAY:
            raise CodecError(
                f"the last {self.pending} packets produced no picture; they are not decodable "
                f"{self.codec.name} access units (is the input codec in the session config right, and is "
                f"the stream {_framing(self.codec)}?)"
            )
        return frames


# Output codecs that code only even sizes in 4:2:0: a picture of odd width or height comes out
# with its padding (H.264 and HEVC crop in steps of two chroma-sized units).
EVEN_ONLY = frozenset({Codec.H264, Codec.HEVC})


def even(n: int) -> int:
    return n + (n & 1)


def output_size(codec: Codec, width: int, height: int) -> tuple[int, int]:
    """The size `codec` writes a width x height picture at: as it is, or padded to even."""
    return (even(width), even(height)) if codec in EVEN_ONLY else (width, height)


def check_frame_size(settings: "EncoderSettings", frame: Frame) -> None:
    """CodecError when `frame` is not the size the encoder was made for (NV12: padded to even)."""
    if (even(settings.width), even(settings.height)) != (frame.width, frame.height):
        width, height = frame.picture_size
        raise CodecError(
            f"frame size changed mid-stream from {settings.width}x{settings.height} to "
            f"{width}x{height}; start a new session for the new size"
        )


def nv12_bytes(y, uv, width: int, height: int) -> bytes:
    """Raw NV12 of the width x height picture in (possibly padded) planes: luma rows cut to the
    picture, chroma as it is (ceil(w/2) x ceil(h/2) samples, which padding does not change)."""
    return y[:height, :width].tobytes() + uv.tobytes()


@dataclass
class EncodedPacket:
    data: bytes
    pts: int
    keyframe: bool


@dataclass(frozen=True)
class EncoderSettings:
    codec: Codec
    width: int
    height: int
    # 1..100, higher is better, 0 for the codec default.
    quality: int = 0
    bitrate_kbps: int = 0
    gop: int = 0
    # Time base of pts as (num, den) and nominal frame rate as (num, den).
    time_base: tuple[int, int] = (1, 90000)
    frame_rate: tuple[int, int] = (30, 1)


class Decoder(Protocol):
    """Fed one access unit (or one raw frame) per call; yields frames in presentation order."""

    def decode(self, data: bytes, pts: int) -> list[Frame]: ...

    def flush(self) -> list[Frame]: ...

    def close(self) -> None: ...


class Encoder(Protocol):
    """Encodes NV12 frames, keeping each frame's pts; one packet per frame once flushed."""

    def encode(self, frame: Frame) -> list[EncodedPacket]: ...

    def flush(self) -> list[EncodedPacket]: ...

    def close(self) -> None: ...
