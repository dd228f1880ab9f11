from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Codec(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CODEC_UNSPECIFIED: _ClassVar[Codec]
    CODEC_H264: _ClassVar[Codec]
    CODEC_HEVC: _ClassVar[Codec]
    CODEC_AV1: _ClassVar[Codec]
    CODEC_VP9: _ClassVar[Codec]
    CODEC_MJPEG: _ClassVar[Codec]
    CODEC_RAW_NV12: _ClassVar[Codec]
    CODEC_RAW_I420: _ClassVar[Codec]

class Backend(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BACKEND_AUTO: _ClassVar[Backend]
    BACKEND_CPU: _ClassVar[Backend]
    BACKEND_GPU: _ClassVar[Backend]

class DropPolicy(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DROP_POLICY_LOSSLESS: _ClassVar[DropPolicy]
    DROP_POLICY_REALTIME: _ClassVar[DropPolicy]

class FrameStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FRAME_PROCESSED: _ClassVar[FrameStatus]
    FRAME_PASSED_THROUGH: _ClassVar[FrameStatus]
    FRAME_DROPPED: _ClassVar[FrameStatus]
CODEC_UNSPECIFIED: Codec
CODEC_H264: Codec
CODEC_HEVC: Codec
CODEC_AV1: Codec
CODEC_VP9: Codec
CODEC_MJPEG: Codec
CODEC_RAW_NV12: Codec
CODEC_RAW_I420: Codec
BACKEND_AUTO: Backend
BACKEND_CPU: Backend
BACKEND_GPU: Backend
DROP_POLICY_LOSSLESS: DropPolicy
DROP_POLICY_REALTIME: DropPolicy
FRAME_PROCESSED: FrameStatus
FRAME_PASSED_THROUGH: FrameStatus
FRAME_DROPPED: FrameStatus

class Rational(_message.Message):
    __slots__ = ("num", "den")
    NUM_FIELD_NUMBER: _ClassVar[int]
    DEN_FIELD_NUMBER: _ClassVar[int]
    num: int
    den: int
    def __init__(self, num: _Optional[int] = ..., den: _Optional[int] = ...) -> None: ...

class InputConfig(_message.Message):
    __slots__ = ("codec", "width", "height", "time_base", "frame_rate")
    CODEC_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    TIME_BASE_FIELD_NUMBER: _ClassVar[int]
    FRAME_RATE_FIELD_NUMBER: _ClassVar[int]
    codec: Codec
    width: int
    height: int
    time_base: Rational
    frame_rate: Rational
    def __init__(self, codec: _Optional[_Union[Codec, str]] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., time_base: _Optional[_Union[Rational, _Mapping]] = ..., frame_rate: _Optional[_Union[Rational, _Mapping]] = ...) -> None: ...

class OutputConfig(_message.Message):
    __slots__ = ("codec", "quality", "bitrate_kbps", "gop")
    CODEC_FIELD_NUMBER: _ClassVar[int]
    QUALITY_FIELD_NUMBER: _ClassVar[int]
    BITRATE_KBPS_FIELD_NUMBER: _ClassVar[int]
    GOP_FIELD_NUMBER: _ClassVar[int]
    codec: Codec
    quality: int
    bitrate_kbps: int
    gop: int
    def __init__(self, codec: _Optional[_Union[Codec, str]] = ..., quality: _Optional[int] = ..., bitrate_kbps: _Optional[int] = ..., gop: _Optional[int] = ...) -> None: ...

class Effect(_message.Message):
    __slots__ = ("name", "strength", "params")
    class ParamsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    STRENGTH_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    name: str
    strength: float
    params: _containers.ScalarMap[str, float]
    def __init__(self, name: _Optional[str] = ..., strength: _Optional[float] = ..., params: _Optional[_Mapping[str, float]] = ...) -> None: ...

class FaceEffects(_message.Message):
    __slots__ = ("face_id", "effects")
    FACE_ID_FIELD_NUMBER: _ClassVar[int]
    EFFECTS_FIELD_NUMBER: _ClassVar[int]
    face_id: int
    effects: _containers.RepeatedCompositeFieldContainer[Effect]
    def __init__(self, face_id: _Optional[int] = ..., effects: _Optional[_Iterable[_Union[Effect, _Mapping]]] = ...) -> None: ...

class EffectSettings(_message.Message):
    __slots__ = ("effects", "per_face")
    EFFECTS_FIELD_NUMBER: _ClassVar[int]
    PER_FACE_FIELD_NUMBER: _ClassVar[int]
    effects: _containers.RepeatedCompositeFieldContainer[Effect]
    per_face: _containers.RepeatedCompositeFieldContainer[FaceEffects]
    def __init__(self, effects: _Optional[_Iterable[_Union[Effect, _Mapping]]] = ..., per_face: _Optional[_Iterable[_Union[FaceEffects, _Mapping]]] = ...) -> None: ...

class SessionConfig(_message.Message):
    __slots__ = ("input", "output", "effects", "return_faces", "return_landmarks", "drop_policy", "backend", "label")
    INPUT_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    EFFECTS_FIELD_NUMBER: _ClassVar[int]
    RETURN_FACES_FIELD_NUMBER: _ClassVar[int]
    RETURN_LANDMARKS_FIELD_NUMBER: _ClassVar[int]
    DROP_POLICY_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    input: InputConfig
    output: OutputConfig
    effects: EffectSettings
    return_faces: bool
    return_landmarks: bool
    drop_policy: DropPolicy
    backend: Backend
    label: str
    def __init__(self, input: _Optional[_Union[InputConfig, _Mapping]] = ..., output: _Optional[_Union[OutputConfig, _Mapping]] = ..., effects: _Optional[_Union[EffectSettings, _Mapping]] = ..., return_faces: _Optional[bool] = ..., return_landmarks: _Optional[bool] = ..., drop_policy: _Optional[_Union[DropPolicy, str]] = ..., backend: _Optional[_Union[Backend, str]] = ..., label: _Optional[str] = ...) -> None: ...

class Packet(_message.Message):
    __slots__ = ("data", "pts")
    DATA_FIELD_NUMBER: _ClassVar[int]
    PTS_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    pts: int
    def __init__(self, data: _Optional[bytes] = ..., pts: _Optional[int] = ...) -> None: ...

class EffectsUpdate(_message.Message):
    __slots__ = ("effects",)
    EFFECTS_FIELD_NUMBER: _ClassVar[int]
    effects: EffectSettings
    def __init__(self, effects: _Optional[_Union[EffectSettings, _Mapping]] = ...) -> None: ...

class EndOfStream(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ProcessRequest(_message.Message):
    __slots__ = ("config", "packet", "effects_update", "end")
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    PACKET_FIELD_NUMBER: _ClassVar[int]
    EFFECTS_UPDATE_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    config: SessionConfig
    packet: Packet
    effects_update: EffectsUpdate
    end: EndOfStream
    def __init__(self, config: _Optional[_Union[SessionConfig, _Mapping]] = ..., packet: _Optional[_Union[Packet, _Mapping]] = ..., effects_update: _Optional[_Union[EffectsUpdate, _Mapping]] = ..., end: _Optional[_Union[EndOfStream, _Mapping]] = ...) -> None: ...

class StagePlacement(_message.Message):
    __slots__ = ("stage", "device", "engine", "reason")
    STAGE_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    ENGINE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    stage: str
    device: str
    engine: str
    reason: str
    def __init__(self, stage: _Optional[str] = ..., device: _Optional[str] = ..., engine: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class SessionStarted(_message.Message):
    __slots__ = ("session_id", "config", "backend", "stages", "output_width", "output_height", "notes")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    STAGES_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_WIDTH_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    NOTES_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    config: SessionConfig
    backend: Backend
    stages: _containers.RepeatedCompositeFieldContainer[StagePlacement]
    output_width: int
    output_height: int
    notes: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, session_id: _Optional[str] = ..., config: _Optional[_Union[SessionConfig, _Mapping]] = ..., backend: _Optional[_Union[Backend, str]] = ..., stages: _Optional[_Iterable[_Union[StagePlacement, _Mapping]]] = ..., output_width: _Optional[int] = ..., output_height: _Optional[int] = ..., notes: _Optional[_Iterable[str]] = ...) -> None: ...

class Box(_message.Message):
    __slots__ = ("x", "y", "width", "height")
    X_FIELD_NUMBER: _ClassVar[int]
    Y_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    x: float
    y: float
    width: float
    height: float
    def __init__(self, x: _Optional[float] = ..., y: _Optional[float] = ..., width: _Optional[float] = ..., height: _Optional[float] = ...) -> None: ...

class Face(_message.Message):
    __slots__ = ("id", "box", "score", "keypoints", "landmarks", "carried", "landmarks_frame")
    ID_FIELD_NUMBER: _ClassVar[int]
    BOX_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    KEYPOINTS_FIELD_NUMBER: _ClassVar[int]
    LANDMARKS_FIELD_NUMBER: _ClassVar[int]
    CARRIED_FIELD_NUMBER: _ClassVar[int]
    LANDMARKS_FRAME_FIELD_NUMBER: _ClassVar[int]
    id: int
    box: Box
    score: float
    keypoints: _containers.RepeatedScalarFieldContainer[float]
    landmarks: _containers.RepeatedScalarFieldContainer[float]
    carried: bool
    landmarks_frame: int
    def __init__(self, id: _Optional[int] = ..., box: _Optional[_Union[Box, _Mapping]] = ..., score: _Optional[float] = ..., keypoints: _Optional[_Iterable[float]] = ..., landmarks: _Optional[_Iterable[float]] = ..., carried: _Optional[bool] = ..., landmarks_frame: _Optional[int] = ...) -> None: ...

class StageTimings(_message.Message):
    __slots__ = ("decode_ms", "vision_ms", "effects_ms", "encode_ms", "queue_ms", "total_ms")
    DECODE_MS_FIELD_NUMBER: _ClassVar[int]
    VISION_MS_FIELD_NUMBER: _ClassVar[int]
    EFFECTS_MS_FIELD_NUMBER: _ClassVar[int]
    ENCODE_MS_FIELD_NUMBER: _ClassVar[int]
    QUEUE_MS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_MS_FIELD_NUMBER: _ClassVar[int]
    decode_ms: float
    vision_ms: float
    effects_ms: float
    encode_ms: float
    queue_ms: float
    total_ms: float
    def __init__(self, decode_ms: _Optional[float] = ..., vision_ms: _Optional[float] = ..., effects_ms: _Optional[float] = ..., encode_ms: _Optional[float] = ..., queue_ms: _Optional[float] = ..., total_ms: _Optional[float] = ...) -> None: ...

class OutputPacket(_message.Message):
    __slots__ = ("data", "pts", "codec", "width", "height", "keyframe", "frame_index", "status", "effects_version", "faces", "timings")
    DATA_FIELD_NUMBER: _ClassVar[int]
    PTS_FIELD_NUMBER: _ClassVar[int]
    CODEC_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    KEYFRAME_FIELD_NUMBER: _ClassVar[int]
    FRAME_INDEX_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    EFFECTS_VERSION_FIELD_NUMBER: _ClassVar[int]
    FACES_FIELD_NUMBER: _ClassVar[int]
    TIMINGS_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    pts: int
    codec: Codec
    width: int
    height: int
    keyframe: bool
    frame_index: int
    status: FrameStatus
    effects_version: int
    faces: _containers.RepeatedCompositeFieldContainer[Face]
    timings: StageTimings
    def __init__(self, data: _Optional[bytes] = ..., pts: _Optional[int] = ..., codec: _Optional[_Union[Codec, str]] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., keyframe: _Optional[bool] = ..., frame_index: _Optional[int] = ..., status: _Optional[_Union[FrameStatus, str]] = ..., effects_version: _Optional[int] = ..., faces: _Optional[_Iterable[_Union[Face, _Mapping]]] = ..., timings: _Optional[_Union[StageTimings, _Mapping]] = ...) -> None: ...

class SessionStats(_message.Message):
    __slots__ = ("packets_in", "frames_decoded", "frames_out", "frames_passed_through", "frames_dropped", "faces_detected", "duration_s", "fps", "mean_timings", "effects_updates", "frames_carried", "faces_fresh", "faces_carried")
    PACKETS_IN_FIELD_NUMBER: _ClassVar[int]
    FRAMES_DECODED_FIELD_NUMBER: _ClassVar[int]
    FRAMES_OUT_FIELD_NUMBER: _ClassVar[int]
    FRAMES_PASSED_THROUGH_FIELD_NUMBER: _ClassVar[int]
    FRAMES_DROPPED_FIELD_NUMBER: _ClassVar[int]
    FACES_DETECTED_FIELD_NUMBER: _ClassVar[int]
    DURATION_S_FIELD_NUMBER: _ClassVar[int]
    FPS_FIELD_NUMBER: _ClassVar[int]
    MEAN_TIMINGS_FIELD_NUMBER: _ClassVar[int]
    EFFECTS_UPDATES_FIELD_NUMBER: _ClassVar[int]
    FRAMES_CARRIED_FIELD_NUMBER: _ClassVar[int]
    FACES_FRESH_FIELD_NUMBER: _ClassVar[int]
    FACES_CARRIED_FIELD_NUMBER: _ClassVar[int]
    packets_in: int
    frames_decoded: int
    frames_out: int
    frames_passed_through: int
    frames_dropped: int
    faces_detected: int
    duration_s: float
    fps: float
    mean_timings: StageTimings
    effects_updates: int
    frames_carried: int
    faces_fresh: int
    faces_carried: int
    def __init__(self, packets_in: _Optional[int] = ..., frames_decoded: _Optional[int] = ..., frames_out: _Optional[int] = ..., frames_passed_through: _Optional[int] = ..., frames_dropped: _Optional[int] = ..., faces_detected: _Optional[int] = ..., duration_s: _Optional[float] = ..., fps: _Optional[float] = ..., mean_timings: _Optional[_Union[StageTimings, _Mapping]] = ..., effects_updates: _Optional[int] = ..., frames_carried: _Optional[int] = ..., faces_fresh: _Optional[int] = ..., faces_carried: _Optional[int] = ...) -> None: ...

class StreamError(_message.Message):
    __slots__ = ("code", "code_name", "message")
    CODE_FIELD_NUMBER: _ClassVar[int]
    CODE_NAME_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    code: int
    code_name: str
    message: str
    def __init__(self, code: _Optional[int] = ..., code_name: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class ProcessResponse(_message.Message):
    __slots__ = ("started", "packet", "stats", "error")
    STARTED_FIELD_NUMBER: _ClassVar[int]
    PACKET_FIELD_NUMBER: _ClassVar[int]
    STATS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    started: SessionStarted
    packet: OutputPacket
    stats: SessionStats
    error: StreamError
    def __init__(self, started: _Optional[_Union[SessionStarted, _Mapping]] = ..., packet: _Optional[_Union[OutputPacket, _Mapping]] = ..., stats: _Optional[_Union[SessionStats, _Mapping]] = ..., error: _Optional[_Union[StreamError, _Mapping]] = ...) -> None: ...

class GetCapabilitiesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class EffectParam(_message.Message):
    __slots__ = ("name", "min", "max", "default", "description")
    NAME_FIELD_NUMBER: _ClassVar[int]
    MIN_FIELD_NUMBER: _ClassVar[int]
    MAX_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    name: str
    min: float
    max: float
    default: float
    description: str
    def __init__(self, name: _Optional[str] = ..., min: _Optional[float] = ..., max: _Optional[float] = ..., default: _Optional[float] = ..., description: _Optional[str] = ...) -> None: ...

class EffectInfo(_message.Message):
    __slots__ = ("name", "description", "params", "per_face")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    PER_FACE_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    params: _containers.RepeatedCompositeFieldContainer[EffectParam]
    per_face: bool
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., params: _Optional[_Iterable[_Union[EffectParam, _Mapping]]] = ..., per_face: _Optional[bool] = ...) -> None: ...

class BackendInfo(_message.Message):
    __slots__ = ("backend", "available", "device", "detail", "stages")
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    STAGES_FIELD_NUMBER: _ClassVar[int]
    backend: Backend
    available: bool
    device: str
    detail: str
    stages: _containers.RepeatedCompositeFieldContainer[StagePlacement]
    def __init__(self, backend: _Optional[_Union[Backend, str]] = ..., available: _Optional[bool] = ..., device: _Optional[str] = ..., detail: _Optional[str] = ..., stages: _Optional[_Iterable[_Union[StagePlacement, _Mapping]]] = ...) -> None: ...

class Limits(_message.Message):
    __slots__ = ("max_sessions", "max_width", "max_height", "max_packet_bytes", "max_fps", "max_session_seconds", "max_faces")
    MAX_SESSIONS_FIELD_NUMBER: _ClassVar[int]
    MAX_WIDTH_FIELD_NUMBER: _ClassVar[int]
    MAX_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    MAX_PACKET_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_FPS_FIELD_NUMBER: _ClassVar[int]
    MAX_SESSION_SECONDS_FIELD_NUMBER: _ClassVar[int]
    MAX_FACES_FIELD_NUMBER: _ClassVar[int]
    max_sessions: int
    max_width: int
    max_height: int
    max_packet_bytes: int
    max_fps: float
    max_session_seconds: float
    max_faces: int
    def __init__(self, max_sessions: _Optional[int] = ..., max_width: _Optional[int] = ..., max_height: _Optional[int] = ..., max_packet_bytes: _Optional[int] = ..., max_fps: _Optional[float] = ..., max_session_seconds: _Optional[float] = ..., max_faces: _Optional[int] = ...) -> None: ...

class ModelInfo(_message.Message):
    __slots__ = ("name", "precision", "runtime", "sha256")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PRECISION_FIELD_NUMBER: _ClassVar[int]
    RUNTIME_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    name: str
    precision: str
    runtime: str
    sha256: str
    def __init__(self, name: _Optional[str] = ..., precision: _Optional[str] = ..., runtime: _Optional[str] = ..., sha256: _Optional[str] = ...) -> None: ...

class Capabilities(_message.Message):
    __slots__ = ("server_version", "input_codecs", "output_codecs", "effects", "backends", "default_backend", "limits", "models")
    SERVER_VERSION_FIELD_NUMBER: _ClassVar[int]
    INPUT_CODECS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_CODECS_FIELD_NUMBER: _ClassVar[int]
    EFFECTS_FIELD_NUMBER: _ClassVar[int]
    BACKENDS_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_BACKEND_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    MODELS_FIELD_NUMBER: _ClassVar[int]
    server_version: str
    input_codecs: _containers.RepeatedScalarFieldContainer[Codec]
    output_codecs: _containers.RepeatedScalarFieldContainer[Codec]
    effects: _containers.RepeatedCompositeFieldContainer[EffectInfo]
    backends: _containers.RepeatedCompositeFieldContainer[BackendInfo]
    default_backend: Backend
    limits: Limits
    models: _containers.RepeatedCompositeFieldContainer[ModelInfo]
    def __init__(self, server_version: _Optional[str] = ..., input_codecs: _Optional[_Iterable[_Union[Codec, str]]] = ..., output_codecs: _Optional[_Iterable[_Union[Codec, str]]] = ..., effects: _Optional[_Iterable[_Union[EffectInfo, _Mapping]]] = ..., backends: _Optional[_Iterable[_Union[BackendInfo, _Mapping]]] = ..., default_backend: _Optional[_Union[Backend, str]] = ..., limits: _Optional[_Union[Limits, _Mapping]] = ..., models: _Optional[_Iterable[_Union[ModelInfo, _Mapping]]] = ...) -> None: ...
