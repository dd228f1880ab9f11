"""Bad input ends only its own session, with a status code and a message a person can act on."""
from __future__ import annotations

import asyncio
import os

import grpc
import pytest

from facestream.client import FaceStreamClient, VideoSource
from facestream.proto import pb, rpc

from support import CLIP, CLIP_FRAMES, Outcome, stream, target

INVALID = grpc.StatusCode.INVALID_ARGUMENT
EXHAUSTED = grpc.StatusCode.RESOURCE_EXHAUSTED


@pytest.fixture(scope="module")
def clip_packets() -> list[pb.ProcessRequest]:
    src = VideoSource(str(CLIP))
    packets = [pb.ProcessRequest(packet=pb.Packet(data=p.data, pts=p.pts)) for p in src]
    src.close()
    return packets


def h264_config(**kw) -> pb.ProcessRequest:
    return pb.ProcessRequest(config=pb.SessionConfig(input=pb.InputConfig(codec=pb.CODEC_H264), **kw))


END = pb.ProcessRequest(end=pb.EndOfStream())


async def run_raw(srv, requests) -> tuple[list[pb.ProcessResponse], Outcome | None]:
    """The responses of one raw Process stream, and how it failed (None when it ended OK)."""
    async with grpc.aio.insecure_channel(target(srv)) as channel:
        out = await stream(channel, requests)
    return out.responses, None if out.code == grpc.StatusCode.OK else out


async def run_failing(srv, requests) -> tuple[list[pb.ProcessResponse], Outcome]:
    """Like run_raw, for a stream that must fail."""
    responses, error = await run_raw(srv, requests)
    assert error is not None, "the session did not fail"
    return responses, error


async def healthy_session(srv) -> int:
    async with FaceStreamClient(target(srv)) as client:
        result = await client.process(str(CLIP))
    return result.frames


def raw_config(w=64, h=64, codec=pb.CODEC_RAW_NV12) -> pb.ProcessRequest:
    return pb.ProcessRequest(config=pb.SessionConfig(input=pb.InputConfig(codec=codec, width=w, height=h)))


def input_config(**kw) -> pb.ProcessRequest:
    return pb.ProcessRequest(config=pb.SessionConfig(input=pb.InputConfig(**kw)))


def packet(data: bytes, pts: int) -> pb.ProcessRequest:
    return pb.ProcessRequest(packet=pb.Packet(data=data, pts=pts))


def effects(name: str, strength: float) -> pb.EffectSettings:
    return pb.EffectSettings(effects=[pb.Effect(name=name, strength=strength)])


CASES = {
    "no config first": (lambda p: [p[0], END], INVALID, "first message must be a SessionConfig"),
    "empty stream": (lambda p: [], INVALID, "empty stream; send a SessionConfig"),
    "codec not set": (lambda p: [pb.ProcessRequest(config=pb.SessionConfig()), END], INVALID,
                      "config.input.codec is not set; choose one of CODEC_H264"),
    "unknown codec": (lambda p: [input_config(codec=99), END], INVALID, "unknown input codec 99; choose one of"),
    "unsupported output codec": (lambda p: [h264_config(output=pb.OutputConfig(codec=pb.CODEC_AV1)), END], INVALID,
                                 "output codec CODEC_AV1 is not supported"),
    "packet that does not decode": (lambda p: [h264_config(), packet(os.urandom(4000), 7), END],
                                    INVALID, "packet with pts 7 could not be decoded as H264"),
    "codec does not match config": (lambda p: [input_config(codec=pb.CODEC_HEVC), *p[:40], END], INVALID, "HEVC"),
    "declared size does not match": (lambda p: [input_config(codec=pb.CODEC_H264, width=320, height=180), *p[:3], END],
                                     INVALID, "the stream's frames are 640x360 but config.input declares 320x180"),
    "raw frame of the wrong size": (lambda p: [raw_config(), packet(b"\0" * 100, 1), END],
                                    INVALID, "has 100 bytes; a 64x64 frame has 6144"),
    "raw input without size": (lambda p: [raw_config(0, 0), END], INVALID, "needs config.input.width and height"),
    "raw frame over the size limit": (lambda p: [raw_config(7680, 4320), END], EXHAUSTED,
                                      "input size 7680x4320 is over this server's limit of 1920x1088"),
    "empty packet": (lambda p: [h264_config(), pb.ProcessRequest(packet=pb.Packet(pts=3)), END], INVALID,
                     "packet with pts 3 is empty"),
    "second config": (lambda p: [h264_config(), h264_config(), END], INVALID, "a second config arrived"),
    "packet after end": (lambda p: [h264_config(), *p[:2], END, p[2]], INVALID,
                         "a packet message arrived after end-of-stream"),
    "no end of stream": (lambda p: [h264_config(), *p[:3]], INVALID, "closed without end-of-stream after 3 packets"),
    "unknown effect": (lambda p: [h264_config(effects=effects("glow", 0.5)), END],
                       INVALID, "unknown effect 'glow'; valid effects: smooth"),
    "strength out of range": (lambda p: [h264_config(effects=effects("smooth", 1.5)), END],
                              INVALID, "effect 'smooth': strength 1.5 is out of range; valid range is 0..1"),
    "bad effect update": (lambda p: [h264_config(), *p[:2],
                                     pb.ProcessRequest(effects_update=pb.EffectsUpdate(effects=effects("eyes", -1))),
                                     END],
                          INVALID, "effects update 1: effect 'eyes': strength -1 is out of range"),
    "landmarks without faces": (lambda p: [h264_config(return_landmarks=True), END], INVALID,
                                "return_landmarks needs config.return_faces"),
    "gpu on a host without one": (lambda p: [h264_config(backend=pb.BACKEND_GPU), END],
                                  grpc.StatusCode.FAILED_PRECONDITION, "the gpu backend is not available on this host"),
}


@pytest.mark.parametrize("case", list(CASES))
async def test_bad_session_fails_alone(server, clip_packets, case):
    build, code, message = CASES[case]
    healthy = asyncio.create_task(healthy_session(server))
    responses, error = await run_raw(server, build(clip_packets))
    assert error is not None, f"{case}: the session did not fail"
    assert error.code == code, error.details
    assert message in error.details
    assert not any(r.WhichOneof("msg") == "stats" for r in responses)
    if responses:
        assert responses[-1].error.message == error.details and responses[-1].error.code_name == code.name
    assert await healthy == CLIP_FRAMES


async def test_frame_over_the_size_limit(server_factory, clip_packets):
    srv = await server_factory(max_width=320, max_height=240)
    responses, error = await run_failing(srv, [h264_config(), *clip_packets[:5], END])
    assert error.code == EXHAUSTED
    assert "frame size 640x360 is over this server's limit of 320x240" in error.details
    assert [r.WhichOneof("msg") for r in responses] == ["started", "error"]


async def test_packet_over_the_size_limit(server_factory, clip_packets):
    srv = await server_factory(max_packet_bytes=1000)
    big = next(p for p in clip_packets if len(p.packet.data) > 1000)
    _, error = await run_failing(srv, [h264_config(), big, END])
    assert error.code == EXHAUSTED
    assert f"has {len(big.packet.data)} bytes, over this server's limit of 1000" in error.details


async def test_session_limit(server_factory, clip_packets):
    srv = await server_factory(max_sessions=1)
    async with grpc.aio.insecure_channel(target(srv)) as channel:
        first = rpc.FaceStreamStub(channel).Process()
        await first.write(h264_config())
        assert (await first.read()).WhichOneof("msg") == "started"
        _, error = await run_failing(srv, [h264_config(), END])
        assert error.code == EXHAUSTED
        assert "limit of 1 concurrent sessions; retry in a few seconds" in error.details
        for p in clip_packets[:3]:
            await first.write(p)
        await first.write(END)
        kinds = []
        while (r := await first.read()) is not grpc.aio.EOF:
            kinds.append(r.WhichOneof("msg"))
    assert kinds == ["packet"] * 3 + ["stats"]
    # The slot is free again.
    assert await healthy_session(srv) == CLIP_FRAMES


async def test_client_reports_server_error(server):
    from facestream.client import FaceStreamError

    async with FaceStreamClient(target(server)) as client:
        with pytest.raises(FaceStreamError) as info:
            await client.process(str(CLIP), effects={"smooth": 3})
    assert info.value.code == INVALID and "valid range is 0..1" in info.value.message


async def test_message_after_a_finished_flush_is_reported(server_factory, clip_packets):
    """However quick the flush, a packet sent after `end` is reported, not dropped silently."""
    srv = await server_factory(error_drain_seconds=10)
    async with grpc.aio.insecure_channel(target(srv)) as channel:
        call = rpc.FaceStreamStub(channel).Process(timeout=30)
        for r in [h264_config(), *clip_packets[:3], END]:
            await call.write(r)
        kinds = []
        while (r := await call.read()).WhichOneof("msg") != "stats":
            kinds.append(r.WhichOneof("msg"))
        await call.write(clip_packets[3])
        await call.done_writing()
        with pytest.raises(grpc.aio.AioRpcError):
            while (r := await call.read()) is not grpc.aio.EOF:
                kinds.append(r.WhichOneof("msg"))
        assert kinds == ["started", "packet", "packet", "packet", "error"]
        assert await call.code() == INVALID
        assert "a packet message arrived after end-of-stream" in await call.details()
