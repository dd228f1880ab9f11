"""The per-session pipeline: decode -> vision -> effects -> encode, as plain synchronous steps.

The server runs `DecodeStage` (decode, then vision), `EffectsStage` and `EncodeStage` in worker
threads, one call at a time each, so the stages of consecutive frames overlap: frame n is
encoded while frame n+1 gets its effects and frame n+2 is decoded and searched for faces.
Vision runs in the decode stage's call because tracking carries state from frame to frame.
Every stage takes and returns `FrameInFlight`, the one record of a frame on its way through.

A frame whose vision is skipped to keep up (the real-time policy) still gets its effects: the decode
stage gives it the faces of the frames vision last ran on, carried forward with their motion
(vision/face.py, FaceCarry) and marked as carried. Only a frame with no face to carry (and no
whole-frame effect on) is passed through unprocessed. Both backends share this, and their trackers
time their smoothing by frame index, so skipped frames do not upset the next fresh one.
"""
from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Callable

from .codec.base import CodecError, Decoder, EncodedPacket, Encoder, EncoderSettings, output_size
from .effects.base import Effects, EffectSettings
from .effects.params import FACE_EFFECTS
from .frame import Frame
from .stages import QUEUED, TOTAL, FrameStatus, Stage
from .vision.base import Vision
from .vision.face import Face, FaceCarry


class FrameTooLarge(CodecError):
    """A decoded frame is over the server's size limit."""


@dataclass
class FrameInFlight:
    """One frame from its packet's arrival at the server to its response."""

    frame: Frame
    # time.perf_counter() when its packet arrived (when the decoder flushed it out, for the last frames).
    arrived: float
    # The effect settings in force when the frame was decoded.
    settings: EffectSettings
    status: FrameStatus = FrameStatus.PROCESSED
    faces: list[Face] = field(default_factory=list)
    # Milliseconds, by the names in stages.TIMINGS.
    timings: dict[str, float] = field(default_factory=dict)
    # Set by the encode stage; stays None for a dropped frame.
    packet: EncodedPacket | None = None

    @property
    def processed(self) -> bool:
        return self.status is FrameStatus.PROCESSED

    @property
    def effects_version(self) -> int:
        return self.settings.version

    @property
    def carried_faces(self) -> int:
        """How many of its faces were carried from an earlier frame instead of measured in this one."""
        return sum(f.carried for f in self.faces)

    def finish(self, now: float) -> None:
        """Adds the total time since arrival, and the part of it spent waiting between stages."""
        total = (now - self.arrived) * 1000.0
        self.timings[TOTAL] = total
        self.timings[QUEUED] = max(0.0, total - sum(self.timings.get(stage, 0.0) for stage in Stage))


# Weight of the newest frame in expected_vision_s: about the last two or three frames count, so a face
# that comes into view (one more mesh per frame) is in the estimate within a frame or two.
VISION_WEIGHT = 0.5


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000.0


def _frame_wide(settings: EffectSettings) -> bool:
    """Whether an effect that changes a frame without faces (denoise) is on (the debug overlay draws faces)."""
    return any(e.strength > 0 and e.name not in FACE_EFFECTS and e.name != "debug" for e in settings.effects)


class DecodeStage:
    """Decode, then find faces in each decoded frame when effects or the client need them."""

    def __init__(
        self, decoder: Decoder, vision: Vision, settings: EffectSettings,
        report_faces: bool, max_width: int, max_height: int, declared: tuple[int, int] = (0, 0),
    ) -> None:
        # The size the session config declared, (0, 0) when it left the bitstream to tell.
        self.declared = declared
        self.decoder = decoder
        self.report_faces = report_faces
        self.vision = vision
        self.settings = settings
        self.max_width, self.max_height = max_width, max_height
        self.carry = FaceCarry()
        # What vision took on the recent frames (seconds, exponentially weighted): what the next is expected to take.
        self.expected_vision_s = 0.0
        self.just_skipped = False     # whether the last frame skipped vision

    def update_effects(self, settings: EffectSettings) -> None:
        self.settings = settings

    def _check_size(self, frame: Frame) -> None:
        if frame.width > self.max_width or frame.height > self.max_height:
            raise FrameTooLarge(
                f"frame size {frame.width}x{frame.height} is over this server's limit of "
                f"{self.max_width}x{self.max_height}; scale the video down before sending it"
            )
        if any(self.declared) and frame.picture_size != self.declared:
            width, height = frame.picture_size
            raise CodecError(
                f"the stream's frames are {width}x{height} but config.input declares "
                f"{self.declared[0]}x{self.declared[1]}; fix the config, or leave width and height 0"
            )

    def _finish(self, frames: list[Frame], decode_ms: float, arrived: float, skip: bool) -> list[FrameInFlight]:
        out = []
        for frame in frames:
            self._check_size(frame)
            item = FrameInFlight(frame, arrived, self.settings)
            item.timings[Stage.DECODE] = decode_ms / max(1, len(frames))
            self.just_skipped = skip
            if skip:
                self._skip_vision(item)
            elif self.report_faces or item.settings.active:
                t = time.perf_counter()
                item.faces = self.vision.process(frame)
                took = time.perf_counter() - t
                item.timings[Stage.VISION] = took * 1000.0
                self.expected_vision_s += VISION_WEIGHT * (took - self.expected_vision_s)
                self.carry.remember(frame.index, item.faces)
            out.append(item)
        return out

    def _skip_vision(self, item: FrameInFlight) -> None:
        """Gives a frame vision skips the faces carried from earlier frames; with none (and no whole-frame
        effect) there is nothing to do for it: it is passed through."""
        if self.report_faces or item.settings.active:
            item.faces = self.carry.carry(item.frame.index)
        if not item.faces and not _frame_wide(item.settings):
            item.status = FrameStatus.PASSED_THROUGH

    def push(self, data: bytes, pts: int, arrived: float, skip: bool = False) -> list[FrameInFlight]:
        """The frames the packet completes; `skip`: skip their vision (they get carried faces, or are
        passed through without any)."""
        t = time.perf_counter()
        frames = self.decoder.decode(data, pts)
        return self._finish(frames, _ms(t), arrived, skip)

    def flush(self) -> list[FrameInFlight]:
        t = time.perf_counter()
        frames = self.decoder.flush()
        return self._finish(frames, _ms(t), time.perf_counter(), False)

    def close(self) -> None:
        self.decoder.close()
        self.vision.close()


class EffectsStage:
    """Applies each frame's effect settings to it, in place."""

    def __init__(self, effects: Effects) -> None:
        self.effects = effects

    def apply(self, item: FrameInFlight) -> FrameInFlight:
        if item.processed and item.settings.active:
            t = time.perf_counter()
            self.effects.apply(item.frame, item.faces, item.settings)
            item.timings[Stage.EFFECTS] = _ms(t)
        return item


class EncodeStage:
    """Encode, giving each frame its packet, in order; dropped frames keep their place.

    The encoder is created on the first frame, when the size is known.
    """

    def __init__(self, make_encoder: Callable[[EncoderSettings], Encoder], settings: EncoderSettings) -> None:
        self._make_encoder = make_encoder
        self._settings = settings
        self.encoder: Encoder | None = None
        # Frames handed to the encoder (or dropped) that have not been returned yet.
        self._waiting: deque[FrameInFlight] = deque()

    def _ready(self, packets: list[EncodedPacket]) -> list[FrameInFlight]:
        it = iter(packets)
        for item in self._waiting:
            if item.packet is None and item.status is not FrameStatus.DROPPED:
                packet = next(it, None)
                if packet is None:
                    break
                item.packet = packet
        extra = sum(1 for _ in it)
        if extra:
            raise CodecError(f"the encoder returned {extra} more packets than it was given frames")
        out = []
        while self._waiting and (self._waiting[0].packet is not None
                                 or self._waiting[0].status is FrameStatus.DROPPED):
            out.append(self._waiting.popleft())
        return out

    def encode(self, item: FrameInFlight) -> list[FrameInFlight]:
        """The frames whose packets are ready so far; a dropped frame is not encoded and has none."""
        self._waiting.append(item)
        if item.status is FrameStatus.DROPPED:
            return self._ready([])
        frame = item.frame
        if self.encoder is None:
            width, height = output_size(self._settings.codec, *frame.picture_size)
            self._settings = replace(self._settings, width=width, height=height)
            self.encoder = self._make_encoder(self._settings)
        t = time.perf_counter()
        packets = self.encoder.encode(frame)
        item.timings[Stage.ENCODE] = _ms(t)
        return self._ready(packets)

    def flush(self) -> list[FrameInFlight]:
        out = self._ready(self.encoder.flush() if self.encoder else [])
        if self._waiting:
            raise CodecError(f"the encoder lost {len(self._waiting)} frames at the end of the stream")
        return out

    def close(self) -> None:
        if self.encoder:
            self.encoder.close()
