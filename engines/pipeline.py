"""The per-session pipeline: decode -> vision -> effects -> encode, as plain synchronous steps.

The server runs `FrontEnd` (decode, vision), `EffectsStage` and `BackEnd` (encode) in worker
threads, one call at a time each, so the stages of consecutive frames overlap: frame n is
encoded while frame n+1 gets its effects and frame n+2 is decoded and searched for faces.
Vision stays in one stage because tracking carries state from frame to frame.
"""
from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, replace
from typing import Callable

from .codec.base import CodecError, Decoder, EncodedPacket, Encoder, EncoderSettings
from .effects.base import EffectSettings, Effects
from .frame import Frame
from .vision.base import Vision
from .vision.face import Face


class FrameTooLarge(CodecError):
    """A decoded frame is over the server's size limit."""


@dataclass
class ProcessedFrame:
    frame: Frame
    faces: list[Face]
    # The effect settings in force when the frame was decoded.
    settings: EffectSettings
    # False when the frame skipped vision and effects to keep up (real-time policy).
    processed: bool = True

    @property
    def effects_version(self) -> int:
        return self.settings.version


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000.0


class FrontEnd:
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

    def update_effects(self, settings: EffectSettings) -> None:
        self.settings = settings

    def _check_size(self, frame: Frame) -> None:
        if frame.width > self.max_width or frame.height > self.max_height:
            raise FrameTooLarge(
                f"frame size {frame.width}x{frame.height} is over this server's limit of "
                f"{self.max_width}x{self.max_height}; scale the video down before sending it"
            )
        if any(self.declared) and (frame.width, frame.height) != self.declared:
            raise CodecError(
                f"the stream's frames are {frame.width}x{frame.height} but config.input declares "
                f"{self.declared[0]}x{self.declared[1]}; fix the config, or leave width and height 0"
            )

    def _finish(self, frames: list[Frame], decode_ms: float, skip: bool) -> list[ProcessedFrame]:
        out = []
        for frame in frames:
            self._check_size(frame)
            frame.timings["decode_ms"] = decode_ms / max(1, len(frames))
            settings = self.settings
            faces: list[Face] = []
            if not skip and (self.report_faces or settings.active):
                t = time.perf_counter()
                faces = self.vision.process(frame)
                frame.timings["vision_ms"] = _ms(t)
            out.append(ProcessedFrame(frame, faces, settings, processed=not skip))
        return out

    def push(self, data: bytes, pts: int, skip: bool = False) -> list[ProcessedFrame]:
        t = time.perf_counter()
        frames = self.decoder.decode(data, pts)
        return self._finish(frames, _ms(t), skip)

    def flush(self) -> list[ProcessedFrame]:
        t = time.perf_counter()
        frames = self.decoder.flush()
        return self._finish(frames, _ms(t), False)

    def close(self) -> None:
        self.decoder.close()
        self.vision.close()


class EffectsStage:
    """Applies each frame's effect settings to it, in place."""

    def __init__(self, effects: Effects) -> None:
        self.effects = effects

    def apply(self, pf: ProcessedFrame) -> ProcessedFrame:
        if pf.processed and pf.settings.active:
            t = time.perf_counter()
            self.effects.apply(pf.frame, pf.faces, pf.settings)
            pf.frame.timings["effects_ms"] = _ms(t)
        return pf


class BackEnd:
    """Encode, pairing each packet with its frame in order; dropped frames keep their place.

    The encoder is created on the first frame, when the size is known.
    """

    def __init__(self, make_encoder: Callable[[EncoderSettings], Encoder], settings: EncoderSettings) -> None:
        self._make_encoder = make_encoder
        self._settings = settings
        self.encoder: Encoder | None = None
        # Frames handed to the encoder (or dropped) whose packet has not been returned yet.
        self._waiting: deque[list] = deque()

    def _ready(self, packets: list[EncodedPacket]) -> list[tuple[ProcessedFrame, EncodedPacket | None]]:
        it = iter(packets)
        for entry in self._waiting:
            if entry[1] is None and not entry[2]:
                packet = next(it, None)
                if packet is None:
                    break
                entry[1] = packet
        extra = sum(1 for _ in it)
        if extra:
            raise CodecError(f"the encoder returned {extra} more packets than it was given frames")
        out = []
        while self._waiting and (self._waiting[0][1] is not None or self._waiting[0][2]):
            pf, packet, _ = self._waiting.popleft()
            out.append((pf, packet))
        return out

    def encode(self, pf: ProcessedFrame, drop: bool = False) -> list[tuple[ProcessedFrame, EncodedPacket | None]]:
        """Packets ready so far, each with its frame; a dropped frame comes back with None."""
        self._waiting.append([pf, None, drop])
        if drop:
            return self._ready([])
        frame = pf.frame
        if self.encoder is None:
            self._settings = replace(self._settings, width=frame.width, height=frame.height)
            self.encoder = self._make_encoder(self._settings)
        t = time.perf_counter()
        packets = self.encoder.encode(frame)
        frame.timings["encode_ms"] = _ms(t)
        return self._ready(packets)

    def flush(self) -> list[tuple[ProcessedFrame, EncodedPacket | None]]:
        out = self._ready(self.encoder.flush() if self.encoder else [])
        if self._waiting:
            raise CodecError(f"the encoder lost {len(self._waiting)} frames at the end of the stream")
        return out

    def close(self) -> None:
        if self.encoder:
            self.encoder.close()
