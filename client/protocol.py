"""What every client module shares about the Process stream: its errors, effect settings, the start."""
from __future__ import annotations

from typing import Any, Mapping, Sequence

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


class SourceError(RuntimeError):
    """The video source failed while its packets were being sent; the session was cancelled."""


def parse_effects(text: str) -> dict[str, float]:
    """"smooth=0.6,eyes=0.3" -> {"smooth": 0.6, "eyes": 0.3}."""
    out: dict[str, float] = {}
    for item in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"effect {item!r} needs a strength, for example {item}=0.5")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            raise ValueError(f"effect {name!r}: strength {value!r} is not a number") from None
    return out


def face_dict(face: pb.Face) -> dict[str, Any]:
    """A face as JSON; a face carried from an earlier frame (Face.carried) says so, and from which frame."""
    d: dict[str, Any] = {
        "id": face.id,
        "box": [face.box.x, face.box.y, face.box.width, face.box.height],
        "score": round(face.score, 4),
        "keypoints": [list(face.keypoints[i : i + 2]) for i in range(0, len(face.keypoints), 2)],
        "carried": face.carried,
    }
    if face.carried:
        d["landmarks_frame"] = face.landmarks_frame
    if face.landmarks:
        d["landmarks"] = [list(face.landmarks[i : i + 3]) for i in range(0, len(face.landmarks), 3)]
    return d
