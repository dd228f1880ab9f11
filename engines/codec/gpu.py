"""GPU codecs: NVDEC decode into GPU memory and NVENC encode through PyNvVideoCodec 2.x, with the
fallbacks the GPU backend reports (see engines/backend.py).

Decode: one PyNvVideoCodec decoder per session (`CreateDecoder`, no demuxer), fed one access unit
per call as `PacketData`, on the session's CUDA stream and CuPy's context, both passed explicitly
so that any stage worker thread may call it. The decoder is made at the first packet: the low-latency
display mode (a picture out per packet) only when that packet's sequence header rules out frame
reordering, else the native mode, which keeps streams with B-frames in presentation order. Where
NVDEC cannot make a decoder, the session decodes on the CPU and uploads, and says so in the log.
Decoded surfaces reach CuPy zero-copy (DLPack, or the CUDA array interface of the planes); the
library reuses its output surface on the next `Decode`, so each picture is copied (device to
device, on the session's stream) into a frame the pipeline owns before the next call.

Frames: each decoder puts a picture's Y and UV planes one after the other in one device buffer
(NV12 as one block), so the frame leaves the device in one copy.

Encode: NVENC where `GetEncoderCaps` reports an encoder for the codec; otherwise (H100, H200,
A100 have no NVENC) the frame is copied into pinned host memory on the session's stream and
encoded by the CPU encoders (PyAV). MJPEG is encoded on the GPU by nvJPEG where torchvision can
(gpu_jpeg.py), else like H.264 without NVENC. Raw NV12 output stays on the device until it is
sent: one device-to-host copy per frame into a reused pinned buffer, nothing done on the CPU.
`Encode`/`EndEncode` return a list of packets (dicts with `data` and `timestamp` in PyNvVideoCodec
2.2; a bytes-like bitstream in earlier versions): both are taken, one packet per frame.

PyNvVideoCodec, CuPy and PyAV are imported lazily.
"""
from __future__ import annotations

import ctypes
import heapq
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np

from ..frame import Frame
from . import cpu as cpu_codec
from . import gpu_jpeg
from .base import (
    MAX_PICTURE_DELAY,
    Codec,
    CodecError,
    EncodedPacket,
    EncoderSettings,
    PictureWatch,
    check_frame_size,
    even,
    nv12_bytes,
    undecodable,
)

if TYPE_CHECKING:
    import cupy

log = logging.getLogger("facestream.codec.gpu")

# Input codecs NVDEC decodes here; MJPEG is decoded on the CPU and uploaded.
NVDEC_CODECS = (Codec.H264, Codec.HEVC, Codec.AV1, Codec.VP9)
NVENC_CODECS = {Codec.H264: "h264", Codec.HEVC: "hevc"}


def _nvc():
    with keeps_cuda_context():
        import PyNvVideoCodec as nvc
    return nvc


def _probe_stream() -> list[tuple[bytes, int]] | None:
    """Two 64x64 H.264 access units (libx264, no B-frames), or None without PyAV."""
    try:
        import av
    except ImportError:
        return None
    enc = av.CodecContext.create("libx264", "w")
    enc.width, enc.height, enc.pix_fmt = 64, 64, "yuv420p"
    enc.time_base = Fraction(1, 30)
    enc.options = {"preset": "ultrafast", "tune": "zerolatency", "bframes": "0"}
    out: list[tuple[bytes, int]] = []
    for i in range(2):
        frame = av.VideoFrame.from_ndarray(np.full((96, 64), 128, np.uint8), format="yuv420p")
        frame.pts = i
        out += [(bytes(p), i) for p in enc.encode(frame)]
    out += [(bytes(p), len(out)) for p in enc.encode(None)]
    return out


@lru_cache(maxsize=1)
def nvdec_available() -> tuple[bool, str]:
    """(True, detail) when PyNvVideoCodec loads and NVDEC decodes a small H.264 stream here.

    The decode is what proves it: PyNvVideoCodec loads on hosts whose driver lacks the decode
    library, and NVDEC makes its hardware decoder only when it meets the first sequence header."""
    try:
        nvc = _nvc()
    except ImportError as exc:
        return False, f"PyNvVideoCodec is not installed ({exc.name or exc})"
    except Exception as exc:
        # the library appends several lines of troubleshooting to its error: the first says what failed
        return False, f"PyNvVideoCodec does not load: {str(exc).splitlines()[0] if str(exc) else exc!r}"
    version = f"PyNvVideoCodec {getattr(nvc, '__version__', '')}".strip()
    packets = _probe_stream()
    if packets is None:
        return True, f"{version}; not probed (PyAV missing)"
    import cupy as cp

    try:
        dec = NvDecoder(Codec.H264, cp.cuda.Stream(non_blocking=True))
        frames = [f for data, pts in packets for f in dec.decode(data, pts)] + dec.flush()
        dec.close()
    except Exception as exc:
        return False, f"{version} loads but NVDEC does not decode: {exc}"
    if not frames:
        return False, f"{version} loads but NVDEC returned no picture for a valid H.264 stream"
    return True, version


@lru_cache(maxsize=None)
def nvenc_caps(codec: str, gpu_id: int = 0) -> tuple[bool, str]:
    """(True, detail) when GetEncoderCaps reports an NVENC encoder for `codec` ("h264", "hevc")."""
    ok, why = nvdec_available()
    if not ok:
        return False, why
    nvc = _nvc()
    try:
        with keeps_cuda_context():
            caps = nvc.GetEncoderCaps(gpuid=gpu_id, codec=codec)
    except Exception as exc:  # no NVENC engine: the library raises
        return False, f"GetEncoderCaps({codec}): {exc}"
    if not caps:
        return False, f"GetEncoderCaps({codec}) reports no encoder"
    engines = caps.get("num_encoder_engines", 1) if isinstance(caps, dict) else 1
    if not engines:
        return False, f"GetEncoderCaps({codec}) reports 0 encoder engines"
    return True, f"NVENC {codec} ({engines} engine{'s' if engines != 1 else ''})"


def _codec_id(nvc, codec: Codec):
    names = {Codec.H264: "H264", Codec.HEVC: "HEVC", Codec.AV1: "AV1", Codec.VP9: "VP9"}
    return getattr(nvc.cudaVideoCodec, names[codec])


def _libcuda() -> ctypes.CDLL:
    return ctypes.CDLL("libcuda.so.1")


def cuda_context(gpu_id: int = 0) -> int:
    """The handle of the device's primary CUDA context (CuPy's), made current on this thread.

    PyNvVideoCodec pushes the context it is given around each call, so a decoder or encoder made
    with it works from any thread; with 0 it would use whatever is current where it was made."""
    lib = _libcuda()
    dev, ctx = ctypes.c_int(), ctypes.c_void_p()
    if lib.cuInit(0) or lib.cuDeviceGet(ctypes.byref(dev), gpu_id) \
            or lib.cuDevicePrimaryCtxRetain(ctypes.byref(ctx), dev) or lib.cuCtxSetCurrent(ctx):
        raise NvdecUnavailable(f"the primary CUDA context of GPU {gpu_id} is not available")
    return int(ctx.value or 0)


@contextmanager
def keeps_cuda_context() -> Iterator[None]:
    """Restores this thread's current CUDA context after a PyNvVideoCodec call.

    Some of its calls (GetEncoderCaps on a GPU without NVENC) make a context of their own and leave
    it current; CuPy's later work on that thread would then land in that context, and its streams
    and memory would be invalid everywhere else."""
    try:
        lib = _libcuda()
    except OSError:  # no CUDA driver: no context to keep
        yield
        return
    before = ctypes.c_void_p()
    lib.cuCtxGetCurrent(ctypes.byref(before))
    try:
        yield
    finally:
        after = ctypes.c_void_p()
        lib.cuCtxGetCurrent(ctypes.byref(after))
        if after.value != before.value:
            lib.cuCtxSetCurrent(before)


def reorders_frames(codec: Codec, data: bytes) -> bool:
    """Whether a stream starting with this access unit may output pictures out of decode order.

    FFmpeg's parse of the sequence header decides (`has_b_frames`: the reorder depth the SPS
    declares, or derives from the level when strict); VP9 and AV1 never reorder output. Without
    PyAV, or when the header cannot be read, the answer is the safe one: it may."""
    if codec not in (Codec.H264, Codec.HEVC):
        return False
    try:
        import av
    except ImportError:
        return True
    ctx = av.CodecContext.create(codec.value, "r")
    ctx.options = {"strict": "strict"}
    try:
        ctx.decode(av.Packet(data))
    except av.error.FFmpegError:
        return True
    return bool(ctx.has_b_frames)


def _latency(nvc, codec: Codec, data: bytes):
    """LOW (a picture per packet) for streams without reordering, NATIVE (display order) otherwise."""
    enum = nvc.DisplayDecodeLatencyType
    return enum.NATIVE if reorders_frames(codec, data) else enum.LOW


def device_nv12(cp, width: int, height: int):
    """(y (H, W), uv (H/2, W/2, 2)): new device planes, views of one NV12 buffer (Y rows, then UV
    rows), on the current stream."""
    whole = cp.empty((height * 3 // 2, width), cp.uint8)
    return whole[:height], whole[height:].reshape(height // 2, width // 2, 2)


def nv12_span(frame: Frame):
    """The frame as one contiguous device array (Y rows, then UV rows) when its planes lie that way
    in one allocation (as the decoders here make them), else None."""
    import cupy as cp

    y, uv = frame.y, frame.uv
    if not (isinstance(y, cp.ndarray) and isinstance(uv, cp.ndarray)):
        return None
    adjacent = y.data.mem is uv.data.mem and uv.data.ptr == y.data.ptr + y.nbytes
    if not (adjacent and y.flags.c_contiguous and uv.flags.c_contiguous):
        return None
    return cp.ndarray((y.size + uv.size,), cp.uint8, memptr=y.data)


def frame_planes(decoded, cp):
    """(y (H, W), uv (H/2, W/2, 2)) CuPy views of a decoded NV12 surface, without copying."""
    try:
        whole = cp.from_dlpack(decoded)
    except Exception:
        whole = None
    if whole is not None and whole.ndim >= 2:
        whole = whole.reshape(whole.shape[0], whole.shape[1])
        h = whole.shape[0] * 2 // 3
        y = whole[:h]
        uv = whole[h:h + h // 2].reshape(h // 2, whole.shape[1] // 2, 2)
        return y, uv
    planes = decoded.cuda()
    y = cp.asarray(planes[0])
    uv = cp.asarray(planes[1])
    y = y.reshape(y.shape[0], y.shape[1])
    uv = uv.reshape(uv.shape[0], -1, 2)
    return y, uv


def _pts(decoded) -> int | None:
    """The pts NVDEC carried from the packet to the picture, where the frame object exposes it."""
    for attr in ("timestamp", "pts"):
        v = getattr(decoded, attr, None)
        if v is not None and not callable(v):
            return int(v)
    get = getattr(decoded, "getPTS", None)
    return int(get()) if callable(get) else None


class NvDecoder:
    """NVDEC decoder fed one access unit per call; frames are CuPy NV12 planes on `stream`.

    The hardware decoder is made at the first packet, when its latency mode can be chosen."""

    def __init__(self, codec: Codec, stream, gpu_id: int = 0) -> None:
        import cupy as cp

        if codec not in NVDEC_CODECS:
            raise CodecError(f"{codec.name} is not decoded by NVDEC here")
        self._cp = cp
        self._nvc = _nvc()
        self.codec = codec
        self.stream = stream
        self.gpu_id = gpu_id
        self._dec: Any | None = None  # PyNvVideoCodec's decoder, made by start()
        self._low_latency = False
        self._watch = PictureWatch(codec)
        self._index = 0
        self._pending: list[int] = []   # pts of packets whose picture has not come out (a heap)

    def start(self, data: bytes) -> None:
        """Makes the hardware decoder for the stream that `data` (its first access unit) begins.

        Raises NvdecUnavailable when NVDEC refuses (no decode engine, codec or size unsupported)."""
        nvc = self._nvc
        latency = _latency(nvc, self.codec, data)
        try:
            self._dec = nvc.CreateDecoder(gpuid=self.gpu_id, codec=_codec_id(nvc, self.codec),
                                          cudacontext=cuda_context(self.gpu_id), cudastream=self.stream.ptr,
                                          usedevicememory=True, latency=latency)
        except Exception as exc:
            raise NvdecUnavailable(f"NVDEC cannot decode {self.codec.name} here: {exc}") from None
        self._low_latency = latency == nvc.DisplayDecodeLatencyType.LOW

    def _packet(self, data: bytes | None, pts: int):
        pkt = self._nvc.PacketData()
        if not data:
            return pkt, None  # an empty packet marks the end of the stream
        buf = np.frombuffer(data, np.uint8)
        pkt.bsl_data = buf.ctypes.data
        pkt.bsl = buf.size
        pkt.pts = int(pts)
        if self._low_latency:
            # one picture per packet: decode it now rather than at the next packet's start code
            pkt.decode_flag = self._nvc.VideoPacketFlag.ENDOFPICTURE
        return pkt, buf

    def _take_pts(self, decoded) -> int:
        """The picture's pts; pictures come out in presentation order, so without one it is the
        smallest pts still waiting."""
        pts = _pts(decoded)
        if pts is None:
            return heapq.heappop(self._pending) if self._pending else self._index
        if pts in self._pending:
            self._pending.remove(pts)
            heapq.heapify(self._pending)
        return pts

    def _own(self, decoded_frames) -> list[Frame]:
        """Copies each decoded surface into frame-owned device memory before the next Decode."""
        cp = self._cp
        out = []
        with self.stream:
            for d in decoded_frames:
                y, uv = frame_planes(d, cp)
                h, w = y.shape
                if w % 2 or h % 2:
                    raise CodecError(f"frame size {w}x{h} is odd; NV12 processing needs even width and height")
                fy, fuv = device_nv12(cp, w, h)
                fy[...] = y
                fuv[...] = uv
                out.append(Frame(y=fy, uv=fuv, pts=self._take_pts(d), index=self._index))
                self._index += 1
        return out

    def decode(self, data: bytes, pts: int) -> list[Frame]:
        if self._dec is None:
            self.start(data)
        assert self._dec is not None  # start() makes it or raises NvdecUnavailable
        pkt, keep = self._packet(data, pts)
        heapq.heappush(self._pending, int(pts))
        try:
            decoded = self._dec.Decode(pkt)
        except Exception as exc:
            raise undecodable(self.codec, f"packet with pts {pts}", f"NVDEC: {exc}") from None
        del keep
        return self._watch.check(self._own(decoded))

    def flush(self) -> list[Frame]:
        if self._dec is None:
            return []
        frames: list[Frame] = []
        try:
            # the end-of-stream packet returns every picture still held for reordering
            for _ in range(MAX_PICTURE_DELAY + 1):
                pkt, _ = self._packet(None, 0)
                got = self._own(self._dec.Decode(pkt))
                if not got:
                    break
                frames += got
        except CodecError:
            raise
        except Exception as exc:
            raise CodecError(f"the end of the stream could not be decoded by NVDEC: {exc}") from None
        return frames

    def close(self) -> None:
        self._dec = None


class NvdecUnavailable(RuntimeError):
    """NVDEC could not make a decoder on this host; the session decodes on the CPU instead."""


class FallbackDecoder:
    """NVDEC where it works for this stream, else the CPU decoder with upload.

    NVDEC makes its hardware decoder when it parses the first sequence header, so a host whose
    driver lacks the decode library, or whose GPU has no engine for the codec or size, fails only
    there. Until NVDEC gives its first picture the packets are kept; if it fails meanwhile they are
    replayed into the CPU decoder, and only when that one fails too is the input at fault."""

    _reported: set[Codec] = set()

    def __init__(self, codec: Codec, width: int, height: int, stream, gpu_id: int = 0) -> None:
        self.codec, self.width, self.height, self.stream = codec, width, height, stream
        self._inner: NvDecoder | UploadDecoder = NvDecoder(codec, stream, gpu_id)
        self._held: list[tuple[bytes, int]] | None = []   # packets fed before NVDEC's first picture

    def _fall_back(self, why: object) -> list[Frame]:
        if self.codec not in self._reported:
            self._reported.add(self.codec)
            log.warning("NVDEC cannot decode this %s stream (%s); decoding on the CPU and uploading each frame",
                        self.codec.name, why)
        self._inner.close()
        self._inner = UploadDecoder(self.codec, self.width, self.height, self.stream)
        held, self._held = self._held or [], None
        frames: list[Frame] = []
        for data, pts in held:
            frames += self._inner.decode(data, pts)
        return frames

    def decode(self, data: bytes, pts: int) -> list[Frame]:
        if self._held is None:
            return self._inner.decode(data, pts)
        self._held.append((data, pts))
        try:
            frames = self._inner.decode(data, pts)
        except (NvdecUnavailable, CodecError) as exc:
            return self._fall_back(exc)
        if frames:
            self._held = None
        return frames

    @property
    def on_nvdec(self) -> bool:
        """Whether NVDEC decodes this stream (False once it fell back to the CPU decoder)."""
        return isinstance(self._inner, NvDecoder)

    def flush(self) -> list[Frame]:
        if self._held:
            try:
                frames = self._inner.flush()
            except CodecError as exc:
                return self._fall_back(exc) + self._inner.flush()
            if frames:
                return frames
            # the whole stream went in without a picture from NVDEC: let the CPU decoder judge it
            return self._fall_back("no picture decoded") + self._inner.flush()
        return self._inner.flush()

    def close(self) -> None:
        self._inner.close()


class UploadDecoder:
    """CPU decoder (PyAV, or raw frames) whose frames are uploaded to the device on `stream`:
    for MJPEG and raw input, and for every codec where PyNvVideoCodec is missing."""

    def __init__(self, codec: Codec, width: int, height: int, stream) -> None:
        import cupy as cp

        self._cp = cp
        self._inner = cpu_codec.make_decoder(codec, width, height)
        self.stream = stream

    def _up(self, frames: list[Frame]) -> list[Frame]:
        for f in frames:
            h, w = f.y.shape
            with self.stream:
                y, uv = device_nv12(self._cp, w, h)
            y.set(np.ascontiguousarray(f.y), stream=self.stream)
            uv.set(np.ascontiguousarray(f.uv), stream=self.stream)
            f.y, f.uv = y, uv
        return frames

    def decode(self, data: bytes, pts: int) -> list[Frame]:
        return self._up(self._inner.decode(data, pts))

    def flush(self) -> list[Frame]:
        return self._up(self._inner.flush())

    def close(self) -> None:
        self._inner.close()


class PinnedHost:
    """A reused pinned host buffer for NV12 frames of one size: Y rows, then UV rows."""

    def __init__(self, width: int, height: int) -> None:
        import cupy as cp

        n = width * height * 3 // 2
        self._mem = cp.cuda.alloc_pinned_memory(n)
        self.data = np.frombuffer(self._mem, np.uint8, n)
        self.y = self.data[: width * height].reshape(height, width)
        self.uv = self.data[width * height:].reshape(height // 2, width // 2, 2)

    def fetch(self, frame: Frame, stream) -> tuple[np.ndarray, np.ndarray]:
        """The frame's planes, copied here after the work queued on `stream`: in one copy when they
        are one device buffer, else one copy per plane."""
        whole = nv12_span(frame)
        if whole is not None:
            whole.get(stream=stream, out=self.data)
        else:
            frame.y.get(stream=stream, out=self.y)
            frame.uv.get(stream=stream, out=self.uv)
        stream.synchronize()
        return self.y, self.uv


class HostEncoder:
    """Fallback encode: the NV12 frame copied to pinned host memory, then a CPU encoder (PyAV)."""

    def __init__(self, settings: EncoderSettings, stream) -> None:
        self.settings = settings
        self.stream = stream
        self._inner = cpu_codec.make_encoder(settings)
        self._host = PinnedHost(even(settings.width), even(settings.height))

    def encode(self, frame: Frame) -> list[EncodedPacket]:
        check_frame_size(self.settings, frame)
        y, uv = self._host.fetch(frame, self.stream)
        return self._inner.encode(Frame(y=y, uv=uv, pts=frame.pts, index=frame.index, pad=frame.pad))

    def flush(self) -> list[EncodedPacket]:
        return self._inner.flush()

    def close(self) -> None:
        self._inner.close()


def _is_keyframe(codec: Codec, data: bytes) -> bool:
    """An IDR/IRAP NAL unit anywhere in the Annex-B access unit."""
    i, n = 0, len(data)
    while True:
        j = data.find(b"\x00\x00\x01", i)
        if j < 0 or j + 3 >= n:
            return False
        b = data[j + 3]
        if codec is Codec.H264 and (b & 0x1F) == 5:
            return True
        if codec is Codec.HEVC and 16 <= ((b >> 1) & 0x3F) <= 21:
            return True
        i = j + 3


class NvEncoder:
    """NVENC H.264/HEVC from device NV12 frames, low latency (no B-frames), one packet per frame."""

    def __init__(self, settings: EncoderSettings, stream, gpu_id: int = 0) -> None:
        import cupy as cp

        s = settings
        if s.codec not in NVENC_CODECS:
            raise CodecError(f"{s.codec.name} is not an NVENC codec")
        self._cp = cp
        self.settings = s
        self.stream = stream
        fps = s.frame_rate[0] / s.frame_rate[1] if s.frame_rate[0] > 0 and s.frame_rate[1] > 0 else 30.0
        opts = {
            "codec": NVENC_CODECS[s.codec],
            "preset": "P3",
            "tuning_info": "ultra_low_latency",
            "fps": str(round(fps)),
            "gop": str(s.gop or max(1, round(2 * fps))),
            "bf": "0",
            "repeatspspps": "1",
        }
        if s.bitrate_kbps:
            opts.update(rc="cbr", bitrate=f"{s.bitrate_kbps}k")
        else:
            q = s.quality or 70
            opts.update(rc="constqp", constqp=str(max(1, min(51, round(51 * (1 - q / 100))))))
        # the context and stream are PyNvVideoCodec's own keywords; the GPU is the context's
        self._enc = _nvc().CreateEncoder(s.width, s.height, "NV12", False, cudacontext=cuda_context(gpu_id),
                                         cudastream=stream.ptr, **opts)
        self._pts: list[int] = []
        self._stacked: cupy.ndarray | None = None

    def _input(self, frame: Frame):
        """The frame as one contiguous NV12 buffer (luma rows, then chroma rows), as NVENC takes it."""
        cp = self._cp
        y, uv = frame.y, frame.uv
        whole = nv12_span(frame)
        if whole is not None:
            self.stream.synchronize()
            return whole.reshape(y.shape[0] * 3 // 2, y.shape[1])
        stacked = self._stacked
        if stacked is None:
            with self.stream:
                stacked = self._stacked = cp.empty((y.shape[0] * 3 // 2, y.shape[1]), cp.uint8)
        with self.stream:
            stacked[: y.shape[0]] = y
            stacked[y.shape[0]:] = uv.reshape(uv.shape[0], -1)
        self.stream.synchronize()
        return stacked

    def _packets(self, out) -> list[EncodedPacket]:
        """Packets from what Encode/EndEncode returned, each given the pts of the oldest frame in."""
        if out is None:
            return []
        # bytes-likes, dicts with the bitstream under "data", or one bitstream as a list of ints
        items: list[Any] = [out] if isinstance(out, (bytes, bytearray, memoryview)) else list(out)
        if items and isinstance(items[0], int):   # a bytes-like bitstream given as a list of ints
            items = [bytes(items)]
        packets = []
        for item in items:
            data = bytes(item["data"] if isinstance(item, dict) else item)
            if not data:
                continue
            if not self._pts:
                raise CodecError("NVENC returned more packets than frames went in")
            packets.append(EncodedPacket(data, self._pts.pop(0), _is_keyframe(self.settings.codec, data)))
        return packets

    def encode(self, frame: Frame) -> list[EncodedPacket]:
        check_frame_size(self.settings, frame)
        self._pts.append(frame.pts)
        return self._packets(self._enc.Encode(self._input(frame)))

    def flush(self) -> list[EncodedPacket]:
        return self._packets(self._enc.EndEncode())

    def close(self) -> None:
        self._enc = None


class HostRawEncoder:
    """Raw NV12 output from device frames: the frame stays on the device until it is sent, then
    one device-to-host copy into a reused pinned buffer, whose bytes are the packet."""

    def __init__(self, settings: EncoderSettings, stream) -> None:
        self.settings = settings
        self.stream = stream
        self._host = PinnedHost(even(settings.width), even(settings.height))

    def encode(self, frame: Frame) -> list[EncodedPacket]:
        check_frame_size(self.settings, frame)
        y, uv = self._host.fetch(frame, self.stream)
        s = self.settings
        if (s.width, s.height) == (frame.width, frame.height):
            data = self._host.data.tobytes()
        else:  # an odd-sized picture: its luma rows without the padding column or row
            data = nv12_bytes(y, uv, s.width, s.height)
        return [EncodedPacket(data, frame.pts, True)]

    def flush(self) -> list[EncodedPacket]:
        return []

    def close(self) -> None:
        pass


@dataclass(frozen=True)
class EncodePlan:
    engine: str       # "nvenc", "nvjpeg", "pinned-host+cpu", "pinned-host"
    detail: str


RAW_OUTPUT = ("raw NV12 stays in GPU memory until it is sent: one device-to-host copy per frame into a "
              "reused pinned buffer, nothing done on the CPU")


def encode_plan(codec: Codec, gpu_id: int = 0) -> EncodePlan:
    if codec is Codec.RAW_NV12:
        return EncodePlan("pinned-host", RAW_OUTPUT)
    if codec is Codec.MJPEG:
        ok, why = gpu_jpeg.nvjpeg_available()
        if ok:
            return EncodePlan("nvjpeg", why)
        return EncodePlan("pinned-host+cpu", f"no nvJPEG: {why}; frames copied to pinned host memory and "
                                             "encoded on the CPU")
    name = NVENC_CODECS.get(codec)
    if name is not None:
        ok, why = nvenc_caps(name, gpu_id)
        if ok:
            return EncodePlan("nvenc", why)
        return EncodePlan("pinned-host+cpu", f"{why}; frames copied to pinned host memory and encoded on the CPU")
    return EncodePlan("pinned-host+cpu", f"no NVENC path for {codec.name}; encoded on the CPU from pinned host memory")


def make_decoder(codec: Codec, width: int, height: int, stream, gpu_id: int = 0):
    ok, _ = nvdec_available()
    if ok and codec in NVDEC_CODECS:
        return FallbackDecoder(codec, width, height, stream, gpu_id)
    return UploadDecoder(codec, width, height, stream)


def make_encoder(settings: EncoderSettings, stream, gpu_id: int = 0):
    plan = encode_plan(settings.codec, gpu_id)
    if plan.engine == "nvenc":
        try:
            return NvEncoder(settings, stream, gpu_id)
        except Exception as exc:
            log.warning("NVENC encoder could not start (%s); encoding on the CPU", exc)
    if plan.engine == "nvjpeg":
        try:
            return gpu_jpeg.NvJpegEncoder(settings, stream)
        except Exception as exc:
            log.warning("nvJPEG encoder could not start (%s); encoding on the CPU", exc)
    if plan.engine == "pinned-host":
        return HostRawEncoder(settings, stream)
    return HostEncoder(settings, stream)
