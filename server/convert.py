"""Between the wire messages and the engine's types; every check of a client's config lives here."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from facestream.engines.backend import Placement
from facestream.engines.codec.base import Codec, EncodedPacket, EncoderSettings
from facestream.engines.effects.base import EffectSetting, EffectSettings
from facestream.engines.effects.registry import EffectError, validate
from facestream.engines.pipeline import ProcessedFrame
from facestream.engines.vision.face import Face
from facestream.proto import pb

from .config import ServerConfig

CODECS = {
    pb.CODEC_H264: Codec.H264,
    pb.CODEC_HEVC: Codec.HEVC,
    pb.CODEC_AV1: Codec.AV1,
    pb.CODEC_VP9: Codec.VP9,
    pb.CODEC_MJPEG: Codec.MJPEG,
    pb.CODEC_RAW_NV12: Codec.RAW_NV12,
    pb.CODEC_RAW_I420: Codec.RAW_I420,
}
WIRE_CODECS = {v: k for k, v in CODECS.items()}
INPUT_CODECS = tuple(CODECS)
OUTPUT_CODECS = (pb.CODEC_H264, pb.CODEC_HEVC, pb.CODEC_MJPEG, pb.CODEC_RAW_NV12)
BACKEND_NAMES = {pb.BACKEND_AUTO: "auto", pb.BACKEND_CPU: "cpu", pb.BACKEND_GPU: "gpu"}


class ConfigError(ValueError):
    """A session config the server cannot serve; `limit` marks a server limit (RESOURCE_EXHAUSTED)."""

    def __init__(self, message: str, limit: bool = False) -> None:
        super().__init__(message)
        self.limit = limit


def _codec_names(codes) -> str:
    return ", ".join(pb.Codec.Name(c) for c in codes)


def _rational(r: pb.Rational, default: tuple[int, int], what: str) -> tuple[int, int]:
    if r.num == 0 and r.den == 0:
        return default
    if r.num <= 0 or r.den <= 0:
        raise ConfigError(f"{what} {r.num}/{r.den} is invalid; numerator and denominator must be positive")
    return r.num, r.den


def effect_settings(msg: pb.EffectSettings, version: int) -> EffectSettings:
    """Validated engine settings from the wire; raises ConfigError naming the bad effect."""

    def convert(effects) -> tuple[EffectSetting, ...]:
        return tuple(EffectSetting(e.name, e.strength, dict(e.params)) for e in effects)

    per_face: dict[int, tuple[EffectSetting, ...]] = {}
    for fe in msg.per_face:
        if fe.face_id in per_face:
            raise ConfigError(f"face {fe.face_id} has two per-face entries; give each face once")
        per_face[fe.face_id] = convert(fe.effects)
    try:
        return validate(EffectSettings(convert(msg.effects), per_face, version))
    except EffectError as exc:
        raise ConfigError(str(exc)) from None


@dataclass(frozen=True)
class SessionPlan:
    """A checked session config, in engine terms."""

    input_codec: Codec
    width: int
    height: int
    encoder: EncoderSettings
    effects: EffectSettings
    return_faces: bool
    return_landmarks: bool
    realtime: bool
    backend: str
    label: str


def session_plan(cfg: pb.SessionConfig, limits: ServerConfig) -> SessionPlan:
    inp, out = cfg.input, cfg.output
    if inp.codec == pb.CODEC_UNSPECIFIED:
        raise ConfigError(f"config.input.codec is not set; choose one of {_codec_names(INPUT_CODECS)}")
    if inp.codec not in CODECS:
        raise ConfigError(f"unknown input codec {inp.codec}; choose one of {_codec_names(INPUT_CODECS)}")
    out_codec = out.codec or pb.CODEC_H264
    if out_codec not in OUTPUT_CODECS:
        name = pb.Codec.Name(out_codec) if out_codec in pb.Codec.values() else str(out_codec)
        raise ConfigError(f"output codec {name} is not supported; choose one of {_codec_names(OUTPUT_CODECS)}")
    codec = CODECS[inp.codec]
    if codec.is_raw and (inp.width == 0 or inp.height == 0):
        raise ConfigError(f"raw {pb.Codec.Name(inp.codec)} input needs config.input.width and height")
    if inp.width > limits.max_width or inp.height > limits.max_height:
        raise ConfigError(
            f"input size {inp.width}x{inp.height} is over this server's limit of "
            f"{limits.max_width}x{limits.max_height}; scale the video down before sending it",
            limit=True,
        )
    if out.quality > 100:
        raise ConfigError(f"config.output.quality {out.quality} is out of range; valid range is 1..100 (0: default)")
    if cfg.return_landmarks and not cfg.return_faces:
        raise ConfigError("config.return_landmarks needs config.return_faces; set both to get landmarks")
    if cfg.backend not in BACKEND_NAMES:
        raise ConfigError(f"unknown backend {cfg.backend}; choose BACKEND_AUTO, BACKEND_CPU or BACKEND_GPU")
    if cfg.drop_policy not in (pb.DROP_POLICY_LOSSLESS, pb.DROP_POLICY_REALTIME):
        raise ConfigError(f"unknown drop policy {cfg.drop_policy}; choose DROP_POLICY_LOSSLESS or DROP_POLICY_REALTIME")
    time_base = _rational(inp.time_base, (1, 90000), "config.input.time_base")
    frame_rate = _rational(inp.frame_rate, (30, 1), "config.input.frame_rate")
    if limits.max_fps and frame_rate[0] / frame_rate[1] > limits.max_fps:
        raise ConfigError(
            f"config.input.frame_rate {frame_rate[0]}/{frame_rate[1]} ({frame_rate[0] / frame_rate[1]:g} fps) is over "
            f"this server's limit of {limits.max_fps:g} fps; lower the frame rate before sending",
            limit=True,
        )
    return SessionPlan(
        input_codec=codec,
        width=inp.width,
        height=inp.height,
        encoder=EncoderSettings(
            CODECS[out_codec], inp.width, inp.height, out.quality, out.bitrate_kbps, out.gop, time_base, frame_rate
        ),
        effects=effect_settings(cfg.effects, 0),
        return_faces=cfg.return_faces,
        return_landmarks=cfg.return_landmarks,
        realtime=cfg.drop_policy == pb.DROP_POLICY_REALTIME,
        backend=BACKEND_NAMES[cfg.backend],
        label=cfg.label,
    )


def stage_messages(placements: list[Placement]) -> list[pb.StagePlacement]:
    return [pb.StagePlacement(stage=p.stage, device=p.device, engine=p.engine, reason=p.reason) for p in placements]


def face_message(face: Face, landmarks: bool) -> pb.Face:
    x0, y0, x1, y1 = (float(v) for v in face.box)
    msg = pb.Face(
        id=face.id,
        box=pb.Box(x=x0, y=y0, width=x1 - x0, height=y1 - y0),
        score=float(face.score),
        keypoints=np.asarray(face.keypoints, np.float32).ravel().tolist(),
    )
    if landmarks and face.landmarks is not None:
        msg.landmarks.extend(np.asarray(face.landmarks, np.float32).ravel().tolist())
    return msg


def timings_message(timings: dict[str, float]) -> pb.StageTimings:
    return pb.StageTimings(**{k: v for k, v in timings.items() if k in pb.StageTimings.DESCRIPTOR.fields_by_name})


def output_packet(
    pf: ProcessedFrame, packet: EncodedPacket | None, codec: Codec, plan: SessionPlan
) -> pb.OutputPacket:
    frame = pf.frame
    if packet is None:
        status = pb.FRAME_DROPPED
    else:
        status = pb.FRAME_PROCESSED if pf.processed else pb.FRAME_PASSED_THROUGH
    msg = pb.OutputPacket(
        data=packet.data if packet else b"",
        pts=frame.pts,
        codec=WIRE_CODECS[codec],
        width=frame.width,
        height=frame.height,
        keyframe=packet.keyframe if packet else False,
        frame_index=frame.index,
        status=status,
        effects_version=pf.effects_version,
        timings=timings_message(frame.timings),
    )
    if plan.return_faces:
        msg.faces.extend(face_message(f, plan.return_landmarks) for f in pf.faces)
    return msg
