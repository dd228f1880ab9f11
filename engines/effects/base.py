"""The effects stage interface: beauty effects applied in place on NV12 frames."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from ..frame import Frame
from ..vision.face import Face


@dataclass(frozen=True)
class EffectSetting:
    name: str
    strength: float
    params: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class EffectSettings:
    """Session-wide effects plus per-face overrides (face ID -> its own list), with a version.

    `version` is 0 for the settings of the session config and n after the n-th update; every
    output frame reports the version it used.
    """

    effects: tuple[EffectSetting, ...] = ()
    per_face: dict[int, tuple[EffectSetting, ...]] = field(default_factory=dict)
    version: int = 0

    def for_face(self, face_id: int) -> tuple[EffectSetting, ...]:
        return self.per_face.get(face_id, self.effects)

    @property
    def active(self) -> bool:
        return any(e.strength > 0 for e in self.effects) or any(
            e.strength > 0 for effects in self.per_face.values() for e in effects
        )


class Effects(Protocol):
    def apply(self, frame: Frame, faces: list[Face], settings: EffectSettings) -> None:
        """Modify `frame` in place according to `settings`."""
        ...

