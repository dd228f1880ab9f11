"""Whether a packet can start a session: a stream resumed on another server starts at such a packet.

Raw pictures and JPEG frames always can. An H.264 or HEVC access unit can when it is an IDR picture
that carries its parameter sets (the new server's decoder has seen none before it), which is how
encoders and FFmpeg's Annex-B filter send keyframes. For other codecs the caller has to say.
"""
from __future__ import annotations

import re

from facestream.proto import pb

_START_CODE = re.compile(b"\x00\x00\x01")
_ALWAYS = (pb.CODEC_RAW_NV12, pb.CODEC_RAW_I420, pb.CODEC_MJPEG)
# NAL unit types: H.264 IDR slice and sequence parameter set; HEVC IDR slices, VPS and SPS.
_H264_IDR, _H264_SPS = 5, 7
_HEVC_IDR, _HEVC_VPS, _HEVC_SPS = (19, 20), 32, 33


def _nal_types(data: bytes, hevc: bool) -> set[int]:
    types = set()
    for match in _START_CODE.finditer(data):
        if match.end() < len(data):
            header = data[match.end()]
            types.add((header >> 1) & 0x3F if hevc else header & 0x1F)
    return types


def is_keyframe(codec: pb.Codec, data: bytes) -> bool | None:
    """True when a fresh decoder can start at `data`; None when the codec's keyframes are not known here."""
    if codec in _ALWAYS:
        return True
    if codec == pb.CODEC_H264:
        types = _nal_types(data, hevc=False)
        return _H264_IDR in types and _H264_SPS in types
    if codec == pb.CODEC_HEVC:
        types = _nal_types(data, hevc=True)
        return bool(types & set(_HEVC_IDR)) and {_HEVC_VPS, _HEVC_SPS} <= types
    return None
