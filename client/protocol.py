"""What every client module shares about the Process stream: its errors, effect settings, the start."""
from __future__ import annotations

from typing import Mapping, Sequence

import grpc

from facestream.proto import pb

EffectsArg = Mapping[str, float] | Sequence[pb.Effect] | pb.EffectSettings | None

# The service whose health says whether a server takes new sessions (it is NOT_SERVING while the
# server loads its models or drains).
SERVICE_NAME = pb.DESCRIPTOR.services_by_name["FaceStream"].full_name

_STATUS_BY_NUMBER = {code.value[0]: code for code in grpc.StatusCode}


class FaceStreamError(Exception):
    """The server ended the session with an error status; `code` is the gRPC status code."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message


def stream_error(error: pb.StreamError) -> FaceStreamError:
    """The error a server announced in band."""
    return FaceStreamError(_STATUS_BY_NUMBER.get(error.code, grpc.StatusCode.UNKNOWN), error.message)


def effect_settings(effects: EffectsArg) -> pb.EffectSettings:
    """Accepts {"smooth": 0.6}, a list of pb.Effect, or pb.EffectSettings (for per-face settings)."""
    if effects is None:
        return pb.EffectSettings()
    if isinstance(effects, pb.EffectSettings):
        return effects
    if isinstance(effects, Mapping):
        return pb.EffectSettings(effects=[pb.Effect(name=k, strength=v) for k, v in effects.items()])
    return pb.EffectSettings(effects=list(effects))


async def start_session(call, config: pb.SessionConfig) -> pb.SessionStarted:
    """Sends the configuration; the server's first message either starts the session or says why not."""
    try:
        await call.write(pb.ProcessRequest(config=config))
        first = await call.read()
    except grpc.aio.AioRpcError as exc:
        raise FaceStreamError(exc.code(), exc.details() or "") from None
    if first is not grpc.aio.EOF and first.WhichOneof("msg") == "error":
        raise stream_error(first.error)
    if first is grpc.aio.EOF or first.WhichOneof("msg") != "started":
        raise FaceStreamError(grpc.StatusCode.INTERNAL, "the server did not start the session")
    return first.started
