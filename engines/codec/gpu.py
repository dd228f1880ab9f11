"""GPU codecs: NVDEC decode into GPU memory and NVENC encode through PyNvVideoCodec 2.x, with the
fallbacks the GPU backend reports (see engines/backend.py).

Decode: one PyNvVideoCodec decoder per session (`CreateDecoder`, no demuxer), fed one access unit
per call as `PacketData`, low-latency display mode, on the session's CUDA stream (created by CuPy).
Decoded surfaces reach CuPy zero-copy (DLPack, or the CUDA array interface of the planes); the
library reuses its output surface on the next `Decode`, so each picture is copied (device to
device, on the session's stream) into a frame the pipeline owns before the next call.

Encode: NVENC where `GetEncoderCaps` reports an encoder for the codec; otherwise (H100, H200,
A100 have no NVENC) the frame is copied into pinned host memory on the session's stream and
encoded by the CPU encoders (PyAV). Raw NV12 output is copied to the host the same way.

PyNvVideoCodec and CuPy are imported lazily.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..frame import Frame
from . import cpu as cpu_codec
from .base import Codec, CodecError, EncodedPacket, EncoderSettings, PictureWatch, undecodable

log = logging.getLogger("facestream.codec.gpu")

# Input codecs NVDEC decodes here; MJPEG is decoded on the CPU and uploaded.
NVDEC_CODECS = (Codec.H264, Codec.HEVC, Codec.AV1, Codec.VP9)
NVENC_CODECS = {Codec.H264: "h264", Codec.HEVC: "hevc"}


def _nvc():
    import PyNvVideoCodec as nvc

    return nvc


@lru_cache(maxsize=1)
def nvdec_available() -> tuple[bool, str]:
    try:
        nvc = _nvc()
    except ImportError as exc:
        return False, f"PyNvVideoCodec is not installed ({exc.name or exc})"
    except Exception as exc:
        return False, f"PyNvVideoCodec does not load: {exc}"
    return True, f"PyNvVideoCodec {getattr(nvc, '__version__', '')}".strip()


@lru_cache(maxsize=None)
def nvenc_caps(codec: str, gpu_id: int = 0) -> tuple[bool, str]:
    """(True, detail) when GetEncoderCaps reports an NVENC encoder for `codec` ("h264", "hevc")."""
    ok, why = nvdec_available()
    if not ok:
        return False, why
    nvc = _nvc()
    try:
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


def _latency(nvc):
    enum = getattr(nvc, "DisplayDecodeLatencyType", None)
    return getattr(enum, "LOW", None) if enum is not None else None


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


def _pts(decoded, default: int) -> int:
    for attr in ("timestamp", "pts"):
        v = getattr(decoded, attr, None)
        if v is not None and not callable(v):
            return int(v)
    get = getattr(decoded, "getPTS", None)
    if callable(get):
        return int(get())
    return default


class NvDecoder:
    """NVDEC decoder fed one access unit per call; frames are CuPy NV12 planes on `stream`."""

    def __init__(self, codec: Codec, stream, gpu_id: int = 0) -> None:
        import cupy as cp

        if codec not in NVDEC_CODECS:
            raise CodecError(f"{codec.name} is not decoded by NVDEC here")
        self._cp = cp
        self._nvc = nvc = _nvc()
        self.codec = codec
        self.stream = stream
        kwargs = dict(gpuid=gpu_id, codec=_codec_id(nvc, codec), cudacontext=0, cudastream=stream.ptr,
                      usedevicememory=True)
        lat = _latency(nvc)
        if lat is not None:
            kwargs["latency"] = lat
        try:
            self._dec = nvc.CreateDecoder(**kwargs)
        except Exception as exc:
            raise CodecError(f"NVDEC cannot decode {codec.name} on this GPU: {exc}") from None
        self._eop = getattr(getattr(nvc, "VideoPacketFlag", None), "ENDOFPICTURE", None)
        self._watch = PictureWatch(codec)
        self._index = 0

    def _packet(self, data: bytes | None, pts: int):
        pkt = self._nvc.PacketData()
        if data:
            buf = np.frombuffer(data, np.uint8)
            pkt.bsl_data = buf.ctypes.data
            pkt.bsl = buf.size
            pkt.pts = int(pts)
            if self._eop is not None:
                try:
                    pkt.decode_flag = self._eop
                except Exception:
                    pass
            return pkt, buf
        return pkt, None

    def _own(self, decoded_frames, default_pts: int) -> list[Frame]:
        """Copies each decoded surface into frame-owned device memory before the next Decode."""
        cp = self._cp
        out = []
        with self.stream:
            for d in decoded_frames:
                y, uv = frame_planes(d, cp)
                h, w = y.shape
                if w % 2 or h % 2:
                    raise CodecError(f"frame size {w}x{h} is odd; NV12 processing needs even width and height")
                fy = cp.empty((h, w), cp.uint8)
                fuv = cp.empty((h // 2, w // 2, 2), cp.uint8)
                fy[...] = y
                fuv[...] = uv
                out.append(Frame(y=fy, uv=fuv, pts=_pts(d, default_pts), index=self._index))
                self._index += 1
        return out

    def decode(self, data: bytes, pts: int) -> list[Frame]:
        pkt, keep = self._packet(data, pts)
        try:
            decoded = self._dec.Decode(pkt)
        except Exception as exc:
            raise undecodable(self.codec, f"packet with pts {pts}", f"NVDEC: {exc}") from None
        del keep
        return self._watch.check(self._own(decoded, pts))

    def flush(self) -> list[Frame]:
        frames: list[Frame] = []
        flush = getattr(self._dec, "Flush", None)
        try:
            if callable(flush):
                frames += self._own(flush(), 0)
            else:
                for _ in range(64):
                    pkt, _ = self._packet(None, 0)
                    got = self._own(self._dec.Decode(pkt), 0)
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


class UploadDecoder:
    """CPU decoder (PyAV, or raw frames) whose frames are uploaded to the device on `stream`:
    for MJPEG and raw input, and for every codec where PyNvVideoCodec is missing."""

    def __init__(self, codec: Codec, width: int, height: int, stream) -> None:
        import cupy as cp

        self._cp = cp
        self._inner = cpu_codec.make_decoder(codec, width, height)
        self.stream = stream

    def _up(self, frames: list[Frame]) -> list[Frame]:
        cp = self._cp
        with self.stream:
            for f in frames:
                f.y = cp.asarray(np.ascontiguousarray(f.y))
                f.uv = cp.asarray(np.ascontiguousarray(f.uv))
        return frames

    def decode(self, data: bytes, pts: int) -> list[Frame]:
        return self._up(self._inner.decode(data, pts))

    def flush(self) -> list[Frame]:
        return self._up(self._inner.flush())

    def close(self) -> None:
        self._inner.close()


class PinnedHost:
    """Reusable pinned host buffers for NV12 frames of one size (device -> host on the stream)."""

    def __init__(self, width: int, height: int) -> None:
        import cupy as cp

        self._cp = cp
        n = width * height * 3 // 2
        self._mem = cp.cuda.alloc_pinned_memory(n)
        buf = np.frombuffer(self._mem, np.uint8, n)
        self.y = buf[: width * height].reshape(height, width)
        self.uv = buf[width * height:].reshape(height // 2, width // 2, 2)

    def fetch(self, frame: Frame, stream) -> tuple[np.ndarray, np.ndarray]:
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
        self._host = PinnedHost(settings.width, settings.height)

    def encode(self, frame: Frame) -> list[EncodedPacket]:
        if (frame.width, frame.height) != (self.settings.width, self.settings.height):
            raise CodecError(
                f"frame size changed mid-stream from {self.settings.width}x{self.settings.height} to "
                f"{frame.width}x{frame.height}; start a new session for the new size"
            )
        y, uv = self._host.fetch(frame, self.stream)
        return self._inner.encode(Frame(y=y, uv=uv, pts=frame.pts, index=frame.index, timings=frame.timings))

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


class _NV12Surface:
    """The planes of a frame as PyNvVideoCodec's device-input protocol wants them (`cuda()`)."""

    def __init__(self, y, uv) -> None:
        self._planes = [y, uv.reshape(uv.shape[0], uv.shape[1] * 2)]

    def cuda(self):
        return self._planes


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
        nvc = _nvc()
        try:
            self._enc = nvc.CreateEncoder(s.width, s.height, "NV12", False, gpu_id=gpu_id, cudastream=stream.ptr, **opts)
        except TypeError:
            self._enc = nvc.CreateEncoder(s.width, s.height, "NV12", False, **opts)
        self._pts: list[int] = []
        self._stacked = None

    def _input(self, frame: Frame):
        cp = self._cp
        y, uv = frame.y, frame.uv
        if self._stacked is None:
            self._stacked = cp.empty((y.shape[0] * 3 // 2, y.shape[1]), cp.uint8)
        with self.stream:
            self._stacked[: y.shape[0]] = y
            self._stacked[y.shape[0]:] = uv.reshape(uv.shape[0], -1)
        self.stream.synchronize()
        return self._stacked

    def _packets(self, data) -> list[EncodedPacket]:
        data = bytes(data) if data is not None else b""
        if not data:
            return []
        pts = self._pts.pop(0) if self._pts else 0
        return [EncodedPacket(data, pts, _is_keyframe(self.settings.codec, data))]

    def encode(self, frame: Frame) -> list[EncodedPacket]:
        if (frame.width, frame.height) != (self.settings.width, self.settings.height):
            raise CodecError(
                f"frame size changed mid-stream from {self.settings.width}x{self.settings.height} to "
                f"{frame.width}x{frame.height}; start a new session for the new size"
            )
        self._pts.append(frame.pts)
        try:
            data = self._enc.Encode(self._input(frame))
        except TypeError:
            data = self._enc.Encode(_NV12Surface(frame.y, frame.uv))
        return self._packets(data)

    def flush(self) -> list[EncodedPacket]:
        out: list[EncodedPacket] = []
        data = self._enc.EndEncode()
        # EndEncode returns the rest of the bitstream; with no B-frames and no lookahead it holds
        # at most the frames still queued, one access unit each
        if data:
            rest = bytes(data)
            if len(self._pts) <= 1:
                out += self._packets(rest)
            else:
                out += [EncodedPacket(rest, self._pts.pop(0), _is_keyframe(self.settings.codec, rest))]
                self._pts.clear()
        return out

    def close(self) -> None:
        self._enc = None


class HostRawEncoder:
    """Raw NV12 output from device frames (pinned-host copy)."""

    def __init__(self, settings: EncoderSettings, stream) -> None:
        self.settings = settings
        self.stream = stream
        self._host = None

    def encode(self, frame: Frame) -> list[EncodedPacket]:
        if self._host is None:
            self._host = PinnedHost(frame.width, frame.height)
        y, uv = self._host.fetch(frame, self.stream)
        return [EncodedPacket(y.tobytes() + uv.tobytes(), frame.pts, True)]

    def flush(self) -> list[EncodedPacket]:
        return []

    def close(self) -> None:
        pass


@dataclass(frozen=True)
class EncodePlan:
    engine: str       # "nvenc", "pinned-host+cpu", "pinned-host"
    detail: str


def encode_plan(codec: Codec, gpu_id: int = 0) -> EncodePlan:
    if codec is Codec.RAW_NV12:
        return EncodePlan("pinned-host", "raw NV12 copied to pinned host memory")
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
        return NvDecoder(codec, stream, gpu_id)
    return UploadDecoder(codec, width, height, stream)


def make_encoder(settings: EncoderSettings, stream, gpu_id: int = 0):
    plan = encode_plan(settings.codec, gpu_id)
    if plan.engine == "nvenc":
        try:
            return NvEncoder(settings, stream, gpu_id)
        except Exception as exc:
            log.warning("NVENC encoder could not start (%s); encoding on the CPU", exc)
    if plan.engine == "pinned-host":
        return HostRawEncoder(settings, stream)
    return HostEncoder(settings, stream)
