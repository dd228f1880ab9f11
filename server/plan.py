"""A client's SessionConfig checked against the server's limits and turned into engine terms.

Every check of a session config (and of a mid-stream effects update) lives here.
"""
from __future__ import annotations

from dataclasses import dataclass

from facestream.engines.codec.base import Codec, CodecError, EncoderSettings, output_size
from facestream.engines.codec.cpu import MAX_GOP, check_encode_size
from facestream.engines.effects.base import EffectSetting, EffectSettings
from facestream.engines.effects.registry import EFFECTS, EffectError, validate
from facestream.proto import pb

from .config import ServerConfig
from .text import clip

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
# Per-face entries in a config or effects update: faces leave and new IDs come, so a client may hold
# settings for more faces than are tracked at once (--max-faces), but not without end.
MAX_PER_FACE = 64
MAX_LABEL_CHARS = 256
# 1 Gbit/s, far above any live stream; the encoders' own limits are lower than the wire's 2^32-1.
MAX_BITRATE_KBPS = 1_000_000
# Characters of an effect or parameter name passed on: a longer one is no known name either.
_MAX_NAME = 40


class ConfigError(ValueError):
    """A session config (or effects update) the server cannot serve; the message says what to change."""


class OverLimit(ConfigError):
    """A session config over one of this server's limits."""


def _codec_names(codes) -> str:
    return ", ".join(pb.Codec.Name(c) for c in codes)


def _rational(r: pb.Rational, default: tuple[int, int], what: str) -> tuple[int, int]:
    if r.num == 0 and r.den == 0:
        return default
    if r.num <= 0 or r.den <= 0:
        raise ConfigError(f"{what} {r.num}/{r.den} is invalid; numerator and denominator must be positive")
    return r.num, r.den


def effect_settings(msg: pb.EffectSettings, version: int) -> EffectSettings:
    """Validated engine settings from the wire; raises ConfigError naming the bad effect.

    The lists are measured before they are walked, and names are cut short before they are echoed."""

    def convert(effects) -> tuple[EffectSetting, ...]:
        if len(effects) > len(EFFECTS):
            raise ConfigError(f"{len(effects)} effects in one list; there are {len(EFFECTS)} effects, "
                              "give each at most once")
        return tuple(EffectSetting(clip(e.name, _MAX_NAME), e.strength,
                                   {clip(k, _MAX_NAME): v for k, v in e.params.items()}) for e in effects)

    if len(msg.per_face) > MAX_PER_FACE:
        raise ConfigError(f"{len(msg.per_face)} per-face entries; at most {MAX_PER_FACE} faces can have "
                          "their own effects")
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
    # What the server changes from what was asked, said in `started`.
    notes: tuple[str, ...] = ()


def _codecs(inp: pb.InputConfig, out: pb.OutputConfig) -> tuple[Codec, Codec]:
    if inp.codec == pb.CODEC_UNSPECIFIED:
        raise ConfigError(f"config.input.codec is not set; choose one of {_codec_names(INPUT_CODECS)}")
    if inp.codec not in CODECS:
        raise ConfigError(f"unknown input codec {inp.codec}; choose one of {_codec_names(INPUT_CODECS)}")
    out_codec = out.codec or pb.CODEC_H264
    if out_codec not in OUTPUT_CODECS:
        name = pb.Codec.Name(out_codec) if out_codec in pb.Codec.values() else str(out_codec)
        raise ConfigError(f"output codec {name} is not supported; choose one of {_codec_names(OUTPUT_CODECS)}")
    return CODECS[inp.codec], CODECS[out_codec]


def _check_size(inp: pb.InputConfig, codec: Codec, limits: ServerConfig) -> None:
    if codec.is_raw and (inp.width == 0 or inp.height == 0):
        raise ConfigError(f"raw {pb.Codec.Name(inp.codec)} input needs config.input.width and height")
    if inp.width > limits.max_width or inp.height > limits.max_height:
        raise OverLimit(
            f"input size {inp.width}x{inp.height} is over this server's limit of "
            f"{limits.max_width}x{limits.max_height}; scale the video down before sending it"
        )


def _check_output(out: pb.OutputConfig) -> None:
    if out.quality > 100:
        raise ConfigError(f"config.output.quality {out.quality} is out of range; valid range is 1..100 (0: default)")
    if out.bitrate_kbps > MAX_BITRATE_KBPS:
        raise ConfigError(f"config.output.bitrate_kbps {out.bitrate_kbps} is out of range; valid range is "
                          f"1..{MAX_BITRATE_KBPS} (0: set by quality)")
    if out.gop > MAX_GOP:
        raise ConfigError(f"config.output.gop {out.gop} is out of range; valid range is 1..{MAX_GOP} frames "
                          "(0: two seconds of frames)")


def _check_options(cfg: pb.SessionConfig) -> None:
    _check_output(cfg.output)
    if len(cfg.label) > MAX_LABEL_CHARS:
        raise ConfigError(f"config.label has {len(cfg.label)} characters; at most {MAX_LABEL_CHARS}")
    if cfg.return_landmarks and not cfg.return_faces:
        raise ConfigError("config.return_landmarks needs config.return_faces; set both to get landmarks")
    if cfg.backend not in BACKEND_NAMES:
        raise ConfigError(f"unknown backend {cfg.backend}; choose BACKEND_AUTO, BACKEND_CPU or BACKEND_GPU")
    if cfg.drop_policy not in (pb.DROP_POLICY_LOSSLESS, pb.DROP_POLICY_REALTIME):
        raise ConfigError(f"unknown drop policy {cfg.drop_policy}; choose DROP_POLICY_LOSSLESS or DROP_POLICY_REALTIME")


def _frame_rate(inp: pb.InputConfig, limits: ServerConfig) -> tuple[int, int]:
    frame_rate = _rational(inp.frame_rate, (30, 1), "config.input.frame_rate")
    fps = frame_rate[0] / frame_rate[1]
    if limits.max_fps and fps > limits.max_fps:
        raise OverLimit(
            f"config.input.frame_rate {frame_rate[0]}/{frame_rate[1]} ({fps:g} fps) is over "
            f"this server's limit of {limits.max_fps:g} fps; lower the frame rate before sending"
        )
    return frame_rate


def session_plan(cfg: pb.SessionConfig, limits: ServerConfig) -> SessionPlan:
    """The plan for a session config; raises ConfigError (OverLimit for a server limit) saying what to change."""
    inp, out = cfg.input, cfg.output
    codec, out_codec = _codecs(inp, out)
    _check_size(inp, codec, limits)
    _check_options(cfg)
    time_base = _rational(inp.time_base, (1, 90000), "config.input.time_base")
    frame_rate = _frame_rate(inp, limits)
    out_w, out_h = output_size(out_codec, inp.width, inp.height)
    if inp.width and inp.height:
        try:
            check_encode_size(out_codec, out_w, out_h)
        except CodecError as exc:
            raise ConfigError(str(exc)) from None
    return SessionPlan(
        input_codec=codec,
        width=inp.width,
        height=inp.height,
        encoder=EncoderSettings(
            out_codec, out_w, out_h, out.quality, out.bitrate_kbps, out.gop, time_base, frame_rate
        ),
        effects=effect_settings(cfg.effects, 0),
        return_faces=cfg.return_faces,
        return_landmarks=cfg.return_landmarks,
        realtime=cfg.drop_policy == pb.DROP_POLICY_REALTIME,
        backend=BACKEND_NAMES[cfg.backend],
        label=cfg.label,
        notes=_size_notes(out_codec, inp.width, inp.height),
    )


def _size_notes(codec: Codec, width: int, height: int) -> tuple[str, ...]:
    out = output_size(codec, width, height)
    if out == (width, height):
        return ()
    return (f"the output is {out[0]}x{out[1]}, padded from {width}x{height} by repeating the last "
            f"{'column' if out[0] != width else 'row'}{' and row' if out[0] != width and out[1] != height else ''}: "
            f"{codec.name} codes only even sizes; crop it, or ask for MJPEG or raw NV12 output to keep the size",)
