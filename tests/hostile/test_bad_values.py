"""Values at the edges of their wire types: each is the client's mistake (INVALID_ARGUMENT, before
`started` where the config alone shows it), never an INTERNAL error with a traceback in the log."""
from __future__ import annotations

from fractions import Fraction

import av
import grpc
import numpy as np

from facestream.proto import pb

from fs_helpers import END, Served, clip_input, clip_packets, h264_config, stream

INVALID = grpc.StatusCode.INVALID_ARGUMENT
U32_MAX = 2**32 - 1
I64_MIN = -(2**63)


def raw_config(width: int, height: int, output: int) -> pb.ProcessRequest:
    return pb.ProcessRequest(config=pb.SessionConfig(
        input=pb.InputConfig(codec=pb.CODEC_RAW_NV12, width=width, height=height),
        output=pb.OutputConfig(codec=output)))


def raw_frame(width: int, height: int) -> pb.ProcessRequest:
    size = width * height + 2 * ((width + 1) // 2) * ((height + 1) // 2)
    return pb.ProcessRequest(packet=pb.Packet(data=bytes(size), pts=0))


def tiny_h264(width: int, height: int) -> list[pb.ProcessRequest]:
    """A real H.264 stream of width x height pictures, its size left for the bitstream to tell."""
    ctx = av.CodecContext.create("libx264", "w")
    ctx.width, ctx.height, ctx.pix_fmt = width, height, "yuv420p"
    ctx.time_base = Fraction(1, 30)
    ctx.options = {"preset": "ultrafast", "tune": "zerolatency"}
    out = []
    for i in range(3):
        f = av.VideoFrame.from_ndarray(np.full((height * 3 // 2, width), 90, np.uint8), format="yuv420p")
        f.pts = i
        out += [bytes(p) for p in ctx.encode(f)]
    out += [bytes(p) for p in ctx.encode(None)]
    return [pb.ProcessRequest(packet=pb.Packet(data=d, pts=i * 3000)) for i, d in enumerate(out)]


def output(**kw) -> pb.ProcessRequest:
    return h264_config(output=pb.OutputConfig(**kw))


# (name, requests, text of the message, refused before `started`)
CASES = [
    ("HEVC 2x2", [raw_config(2, 2, pb.CODEC_HEVC), END], "HEVC output needs pictures of at least 16x16", True),
    ("HEVC 8x8", [raw_config(8, 8, pb.CODEC_HEVC), END], "this stream's are 8x8", True),
    ("HEVC 1920x2", [raw_config(1920, 2, pb.CODEC_HEVC), END], "this stream's are 1920x2", True),
    ("H.264 bitrate 2^32-1", [output(codec=pb.CODEC_H264, bitrate_kbps=U32_MAX), END],
     f"bitrate_kbps {U32_MAX} is out of range; valid range is 1..1000000", True),
    ("HEVC bitrate 2^32-1", [output(codec=pb.CODEC_HEVC, bitrate_kbps=U32_MAX), END],
     "bitrate_kbps 4294967295 is out of range", True),
    ("gop 2^32-1", [output(gop=U32_MAX), END], f"gop {U32_MAX} is out of range; valid range is 1..100000", True),
    ("label of 300 characters", [h264_config(label="x" * 300), END], "config.label has 300 characters", True),
]


async def test_bad_values_are_the_clients_mistake(victim_of, tmp_path):
    log = tmp_path / "server.log"
    packets = clip_packets(4)
    late_cases = [
        ("H.264 pts INT64_MIN", [h264_config(), pb.ProcessRequest(packet=pb.Packet(data=packets[0].packet.data,
                                                                                  pts=I64_MIN)), END],
         f"has pts {I64_MIN}, which codecs read as 'no timestamp'", False),
        ("HEVC out of an 8x8 H.264 stream", [h264_config(input=pb.InputConfig(codec=pb.CODEC_H264),
                                                         output=pb.OutputConfig(codec=pb.CODEC_HEVC)),
                                             *tiny_h264(8, 8), END], "this stream's are 8x8", False),
    ]
    with Served(log_path=log) as srv:
        victim = victim_of(srv)
        await victim.ready()
        await victim.attack()
        async with grpc.aio.insecure_channel(srv.address) as ch:
            for name, requests, message, early in CASES + late_cases:
                out = await stream(ch, requests, timeout=30)
                kinds = [r.WhichOneof("msg") for r in out.responses]
                assert out.code == INVALID and message in out.details, (name, out.code, out.details)
                assert (kinds == ["error"]) == early, (name, kinds)
            # Extremes that are fine are served.
            slow = clip_input()
            slow.frame_rate.CopyFrom(pb.Rational(num=1, den=2**31 - 1))
            for name, requests in (("frame rate 1/(2^31-1)", [h264_config(input=slow), *packets, END]),
                                   ("H.264 bitrate 1 Gbit/s", [output(bitrate_kbps=1_000_000), *packets, END]),
                                   ("HEVC 16x16", [raw_config(16, 16, pb.CODEC_HEVC), raw_frame(16, 16), END]),
                                   ("HEVC 15x15", [raw_config(15, 15, pb.CODEC_HEVC), raw_frame(15, 15), END])):
                ok = await stream(ch, requests, timeout=30)
                assert ok.code == grpc.StatusCode.OK, (name, ok.details)
        await victim.finish("bad values")
        m = srv.metrics()
    assert m.get('facestream_errors_total{code="INTERNAL"}', 0) == 0
    text = log.read_text()
    assert "Traceback" not in text and "INTERNAL" not in text
