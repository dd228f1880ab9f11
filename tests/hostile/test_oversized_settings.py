"""Settings messages that grow with what the client sends: effects updates and configs with hundreds of
thousands of per-face entries (8 MB), fed without reading. Each is refused at once, unparsed, with
INVALID_ARGUMENT; a paced session beside them does not notice and the server does not grow."""
from __future__ import annotations

import asyncio
import time

import grpc
import pytest

from facestream.proto import pb

from fs_helpers import END, Served, clip_input, clip_packets, h264_config, stream

METHOD = "/facestream.v1.FaceStream/Process"
ATTACKERS = 4
ATTACK_SECONDS = 6.0
PER_FACE_LIMIT = 64


def settings(faces: int) -> pb.EffectSettings:
    msg = pb.EffectSettings(effects=[pb.Effect(name="smooth", strength=0.5)])
    for i in range(faces):
        face = msg.per_face.add(face_id=i)
        face.effects.add(name="smooth", strength=0.5)
    return msg


@pytest.fixture(scope="module")
def huge() -> pb.EffectSettings:
    """About 390 thousand per-face entries: just under 8 MiB, within the server's message size limit."""
    return settings(390_000)


async def raw_call(channel: grpc.aio.Channel, messages: list[bytes], read: bool) -> tuple[grpc.StatusCode, str]:
    """Sends serialized requests on one stream; reads only when `read` (else just waits for the status)."""
    call = channel.stream_stream(METHOD)(timeout=30)
    try:
        for m in messages:
            await call.write(m)
        if read:
            await call.done_writing()
            while await call.read() is not grpc.aio.EOF:
                pass
    except (grpc.aio.AioRpcError, asyncio.InvalidStateError):
        pass
    if not read:
        await asyncio.sleep(0.5)
        call.cancel()
        return grpc.StatusCode.CANCELLED, ""
    return await call.code(), await call.details() or ""


async def test_oversized_settings_are_refused_unparsed(victim_of, huge):
    update = pb.ProcessRequest(effects_update=pb.EffectsUpdate(effects=huge)).SerializeToString()
    config = h264_config().SerializeToString()
    huge_config = pb.ProcessRequest(config=pb.SessionConfig(input=clip_input(), effects=huge)).SerializeToString()
    packet = clip_packets(1)[0].SerializeToString()
    assert 7_000_000 < len(update) < 8 << 20
    outcomes: list[tuple[grpc.StatusCode, str]] = []
    with Served() as srv:
        victim = victim_of(srv)
        await victim.ready()
        await victim.attack()
        stop = time.monotonic() + ATTACK_SECONDS

        async def attacker(i: int) -> None:
            async with grpc.aio.insecure_channel(srv.address) as ch:
                n = 0
                while time.monotonic() < stop:
                    n += 1
                    if n % 3 == 0:  # fed without reading, the way that grew a session without end
                        await raw_call(ch, [config, packet, update, update, update], read=False)
                    elif n % 3 == 1:
                        outcomes.append(await raw_call(ch, [config, packet, update], read=True))
                    else:
                        outcomes.append(await raw_call(ch, [huge_config], read=True))

        await asyncio.gather(*(attacker(i) for i in range(ATTACKERS)))
        await victim.finish(f"{ATTACKERS} clients send 8 MB settings")
        assert srv.metrics().get('facestream_errors_total{code="INTERNAL"}', 0) == 0
    print(f"{len(outcomes)} oversized settings messages refused")
    assert outcomes
    for code, details in outcomes:
        assert code == grpc.StatusCode.INVALID_ARGUMENT, (code, details)
        assert "is over the limit of 65536 bytes for configs and effects updates" in details, details


async def test_per_face_entries_are_bounded(server_factory):
    """Within the message size limit, more per-face entries than the documented cap are refused before
    any is looked at, in a config and in an update alike; the cap itself is served."""
    srv = await server_factory()
    packets = clip_packets(3)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{srv.port}") as ch:
        over = settings(PER_FACE_LIMIT + 1)
        out = await stream(ch, [pb.ProcessRequest(config=pb.SessionConfig(input=clip_input(), effects=over)), END])
        assert out.code == grpc.StatusCode.INVALID_ARGUMENT
        assert f"{PER_FACE_LIMIT + 1} per-face entries; at most {PER_FACE_LIMIT} faces" in out.details
        assert [r.WhichOneof("msg") for r in out.responses] == ["error"]  # refused before `started`
        update = pb.ProcessRequest(effects_update=pb.EffectsUpdate(effects=over))
        out = await stream(ch, [h264_config(), *packets, update, END])
        assert out.code == grpc.StatusCode.INVALID_ARGUMENT
        assert f"effects update 1: {PER_FACE_LIMIT + 1} per-face entries" in out.details
        at_cap = pb.ProcessRequest(effects_update=pb.EffectsUpdate(effects=settings(PER_FACE_LIMIT)))
        ok = await stream(ch, [h264_config(), *packets, at_cap, *packets, END])
        assert ok.code == grpc.StatusCode.OK, ok.details
        assert [p.effects_version for p in ok.packets] == [0] * 3 + [1] * 3


def _length(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    return bytes(out) + bytes([n])


def smuggled_update() -> bytes:
    """A request that starts as a packet but carries a large effects update after it: protobuf lets the
    later field of a oneof replace the earlier one."""
    update = pb.ProcessRequest(effects_update=pb.EffectsUpdate(effects=settings(5000)))
    data = clip_packets(1)[0].SerializeToString() + update.SerializeToString()
    assert pb.ProcessRequest.FromString(data).WhichOneof("msg") == "effects_update"
    return data


def packet_of_many_fields() -> bytes:
    """A 'packet' of four million pts fields: each would be parsed in turn, on the event loop."""
    inner = b"\x10\x01" * 4_000_000
    return b"\x12" + _length(len(inner)) + inner


@pytest.mark.parametrize("make", [smuggled_update, packet_of_many_fields])
async def test_large_requests_that_are_not_a_plain_packet_are_refused(server_factory, make):
    srv = await server_factory()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{srv.port}") as ch:
        code, details = await raw_call(ch, [h264_config().SerializeToString(), make()], read=True)
    assert code == grpc.StatusCode.INVALID_ARGUMENT, details
    assert "not one plain packet (it starts with packet)" in details
