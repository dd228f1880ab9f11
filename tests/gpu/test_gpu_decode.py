"""NVDEC decode of the shared clip into GPU memory matches PyAV's decode (PSNR >= 45 dB).

The decoder works on its own non-blocking stream, which does not wait for the legacy default
stream: every upload and read-back here goes through that stream (`cp.asnumpy(..., stream=)`
copies after the decoder's work and waits for the copy).
"""
from __future__ import annotations

import numpy as np
import pytest

from support import psnr

pytestmark = pytest.mark.gpu


@pytest.fixture
def stream():
    import cupy as cp

    return cp.cuda.Stream(non_blocking=True)


def test_nvdec_matches_pyav(clip_packets, clip_nv12, stream):
    pytest.importorskip("PyNvVideoCodec")
    import cupy as cp

    from facestream.engines.codec.base import Codec
    from facestream.engines.codec.gpu import NvDecoder

    dec = NvDecoder(Codec.H264, stream)
    frames = []
    for data, pts in clip_packets:
        frames += dec.decode(data, pts)
    frames += dec.flush()
    assert len(frames) == len(clip_nv12)
    assert [f.pts for f in frames] == sorted(f.pts for f in frames), "frames out of presentation order"
    worst = float("inf")
    for f, (y, uv) in zip(frames, clip_nv12, strict=True):
        assert isinstance(f.y, cp.ndarray) and f.y.shape == y.shape and f.uv.shape == uv.shape
        worst = min(worst, psnr(cp.asnumpy(f.y, stream=stream), y), psnr(cp.asnumpy(f.uv, stream=stream), uv))
    assert worst >= 45.0, f"worst plane PSNR {worst:.1f} dB"


def test_decoded_frames_survive_the_next_decode(clip_packets, stream):
    """The decoder's output surface is reused; frames handed out must be copies."""
    pytest.importorskip("PyNvVideoCodec")
    import cupy as cp

    from facestream.engines.codec.base import Codec
    from facestream.engines.codec.gpu import NvDecoder

    dec = NvDecoder(Codec.H264, stream)
    kept = []
    for data, pts in clip_packets[:10]:
        for f in dec.decode(data, pts):
            kept.append((f, cp.asnumpy(f.y, stream=stream)))
    assert kept, "no frame came out of the first 10 packets"
    for f, snapshot in kept:
        assert np.array_equal(cp.asnumpy(f.y, stream=stream), snapshot)


def test_garbage_is_a_codec_error(stream):
    pytest.importorskip("PyNvVideoCodec")
    from facestream.engines.codec.base import Codec, CodecError
    from facestream.engines.codec.gpu import NvDecoder

    dec = NvDecoder(Codec.H264, stream)
    with pytest.raises(CodecError):
        for i in range(40):
            dec.decode(bytes(range(256)) * 4, i)


def test_fallback_encoder_round_trip(clip_nv12, stream):
    """Encode from device frames: NVENC where the GPU has it, else pinned-host copy + libx264."""
    av = pytest.importorskip("av", reason="pyav missing: the round trip decodes with PyAV")
    import cupy as cp

    from facestream.engines.codec.base import Codec, EncoderSettings
    from facestream.engines.codec.gpu import make_encoder
    from facestream.engines.frame import Frame

    y0, _ = clip_nv12[0]
    enc = make_encoder(EncoderSettings(Codec.H264, y0.shape[1], y0.shape[0], quality=90), stream)
    packets = []
    for i, (y, uv) in enumerate(clip_nv12[:30]):
        with stream:  # uploaded on the encoder's stream, so the encode reads the finished copy
            frame = Frame(y=cp.asarray(y), uv=cp.asarray(uv), pts=i * 3000, index=i)
        packets += enc.encode(frame)
    packets += enc.flush()
    assert len(packets) == 30 and [p.pts for p in packets] == [i * 3000 for i in range(30)]
    assert packets[0].keyframe
    ctx = av.CodecContext.create("h264", "r")
    decoded = []
    for p in packets:
        decoded += ctx.decode(av.Packet(p.data))
    decoded += ctx.decode(None)
    assert len(decoded) == 30
    y_back = decoded[10].to_ndarray(format="nv12")[: y0.shape[0]]
    assert psnr(y_back, clip_nv12[10][0]) > 35
