"""The effects a session may ask for, with their parameters and ranges.

This is the single list that request validation and GetCapabilities read, so a new effect
only has to be declared here and implemented by each backend.
"""
from __future__ import annotations

from dataclasses import dataclass

from .base import EffectSetting, EffectSettings


@dataclass(frozen=True)
class ParamSpec:
    name: str
    min: float
    max: float
    default: float
    description: str


@dataclass(frozen=True)
class EffectSpec:
    name: str
    description: str
    params: tuple[ParamSpec, ...] = ()
    # Whole-frame effects may change pixels outside the faces and cannot be set per face.
    whole_frame: bool = False

    @property
    def per_face(self) -> bool:
        return not self.whole_frame


EFFECTS: dict[str, EffectSpec] = {
    spec.name: spec
    for spec in (
        EffectSpec("smooth", "edge-preserving smoothing of skin only (face mesh mask and chroma skin test)"),
        EffectSpec("whiten", "lifts skin tone with a smooth tone curve on luma, skin only"),
        EffectSpec("slim", "narrows jaw and cheeks with a smooth local warp along the face contour"),
        EffectSpec("eyes", "enlarges the eyes with a radial warp around each eye centre"),
        EffectSpec(
            "lips",
            "tints the lips with a soft-edged mask",
            (
                ParamSpec("r", 0, 255, 200, "lip colour, red"),
                ParamSpec("g", 0, 255, 40, "lip colour, green"),
                ParamSpec("b", 0, 255, 80, "lip colour, blue"),
            ),
        ),
        EffectSpec(
            "blush",
            "soft cheek tint",
            (
                ParamSpec("r", 0, 255, 230, "blush colour, red"),
                ParamSpec("g", 0, 255, 110, "blush colour, green"),
                ParamSpec("b", 0, 255, 120, "blush colour, blue"),
            ),
        ),
        EffectSpec("sharpen", "mild unsharp mask on luma outside the skin (eyes, brows, hair)"),
        EffectSpec("denoise", "spatial denoise of the whole frame for low-light or compressed input", whole_frame=True),
        EffectSpec("debug", "draws boxes, IDs, keypoints and landmarks", whole_frame=True),
    )
}


class EffectError(ValueError):
    """A requested effect setting that cannot be applied; the message is for the client."""


def _check(setting: EffectSetting, *, face_id: int | None) -> EffectSetting:
    where = f" for face {face_id}" if face_id is not None else ""
    spec = EFFECTS.get(setting.name)
    if spec is None:
        raise EffectError(
            f"unknown effect {setting.name!r}{where}; valid effects: {', '.join(EFFECTS)} (see GetCapabilities)"
        )
    if not 0.0 <= setting.strength <= 1.0 or setting.strength != setting.strength:
        raise EffectError(
            f"effect {setting.name!r}{where}: strength {setting.strength:g} is out of range; valid range is 0..1"
        )
    if face_id is not None and spec.whole_frame:
        raise EffectError(f"effect {setting.name!r} applies to the whole frame and cannot be set per face")
    params = {p.name: p.default for p in spec.params}
    known = {p.name: p for p in spec.params}
    for name, value in setting.params.items():
        p = known.get(name)
        if p is None:
            valid = ", ".join(known) or "none"
            raise EffectError(f"effect {setting.name!r}{where}: unknown parameter {name!r}; valid parameters: {valid}")
        if not p.min <= value <= p.max:
            raise EffectError(
                f"effect {setting.name!r}{where}: parameter {name!r}={value:g} is out of range; "
                f"valid range is {p.min:g}..{p.max:g}"
            )
        params[name] = float(value)
    return EffectSetting(setting.name, float(setting.strength), params)


def validate(settings: EffectSettings) -> EffectSettings:
    """Checks every setting and fills in parameter defaults; raises EffectError naming the problem."""

    def check_all(effects: tuple[EffectSetting, ...], face_id: int | None) -> tuple[EffectSetting, ...]:
        seen: set[str] = set()
        out = []
        for e in effects:
            if e.name in seen:
                raise EffectError(f"effect {e.name!r} is given twice; give each effect once")
            seen.add(e.name)
            out.append(_check(e, face_id=face_id))
        return tuple(out)

    return EffectSettings(
        effects=check_all(settings.effects, None),
        per_face={fid: check_all(effs, fid) for fid, effs in settings.per_face.items()},
        version=settings.version,
    )
