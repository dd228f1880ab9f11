"""Strings a client controls (label, effect and parameter names) never go whole into the log or into
a status: long ones are refused with INVALID_ARGUMENT and a short message, also at the session limit."""
from __future__ import annotations

import grpc

from facestream.proto import pb, rpc

from fs_helpers import END, Served, clip_packets, h264_config, stream

INVALID = grpc.StatusCode.INVALID_ARGUMENT
LONG = 60 << 10  # just inside the size limit for a config or an effects update
# A status message and a log line stay this short, whatever the client sent.
MAX_DETAILS = 2100
MAX_LOG_LINE = 4000


def effects(name: str = "smooth", param: str = "") -> pb.EffectSettings:
    effect = pb.Effect(name=name, strength=0.5)
    if param:
        effect.params[param] = 1.0
    return pb.EffectSettings(effects=[effect])


async def test_long_strings_are_refused_short(victim_of, tmp_path):
    log = tmp_path / "server.log"
    packets = clip_packets(2)
    long_name = "n" * LONG
    cases = [
        ("a 60 KiB label", [h264_config(label="l" * LONG), END], "config.label has 61440 characters; at most 256"),
        ("an 8 MiB label", [h264_config(label="l" * (8 << 20)), END], "over the limit of 65536 bytes"),
        ("a 1 MiB effect name", [h264_config(effects=effects("e" * (1 << 20))), END],
         "over the limit of 65536 bytes"),
        ("a 60 KiB effect name", [h264_config(effects=effects(long_name)), END], "unknown effect 'nnnn"),
        ("a 60 KiB parameter name", [h264_config(effects=effects("lips", long_name)), END], "unknown parameter"),
        ("a 60 KiB effect name in an update",
         [h264_config(), *packets, pb.ProcessRequest(effects_update=pb.EffectsUpdate(effects=effects(long_name))),
          END], "effects update 1: unknown effect"),
    ]
    with Served("--max-sessions", "2", log_path=log) as srv:
        victim = victim_of(srv)
        await victim.ready()
        await victim.attack()
        async with grpc.aio.insecure_channel(srv.address) as ch:
            for name, requests, message in cases:
                out = await stream(ch, requests, timeout=30)
                assert out.code == INVALID and message in out.details, (name, out.code, out.details[:300])
                assert len(out.details) < MAX_DETAILS, (name, len(out.details))
            # At the session limit the config is refused before it is checked; its label is logged cut short.
            holder = rpc.FaceStreamStub(ch).Process()
            await holder.write(h264_config())
            assert (await holder.read()).WhichOneof("msg") == "started"
            out = await stream(ch, [h264_config(label="l" * LONG), END])
            assert out.code == grpc.StatusCode.RESOURCE_EXHAUSTED, out
            holder.cancel()
        await victim.finish("long strings")
    lines = log.read_text().splitlines()
    longest = max(lines, key=len)
    print(f"{len(lines)} log lines, the longest {len(longest)} characters")
    assert len(longest) < MAX_LOG_LINE, longest[:300]
