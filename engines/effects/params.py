"""The effects' constants and parameter defaults, shared by the CPU reference and the GPU kernels.

Both implementations read them from here, so a change to an effect's math changes both sides.
"""
from __future__ import annotations

from .base import EffectSetting
from .registry import EFFECTS

# smooth: self-guided filter of luma, radius SMOOTH_RADIUS * face size, eps = SMOOTH_EPS^2,
# blended over skin with weight strength * SMOOTH_MAX.
SMOOTH_RADIUS = 0.025
SMOOTH_EPS = 12.0
SMOOTH_MAX = 0.9
# whiten: tone_curve with beta = 1 + WHITEN_BETA * strength, blended over skin.
WHITEN_BETA = 1.7
# sharpen: y + w * SHARPEN_AMOUNT * strength * (y - gauss(y, SHARPEN_SIGMA)), w = oval * (1 - skin).
SHARPEN_AMOUNT = 1.2
SHARPEN_SIGMA = 1.0
# lips, blush: chroma moved towards the colour's (Cb, Cr) by weight mask * strength * MAX.
LIPS_MAX = 0.55
BLUSH_MAX = 0.30
# denoise: self-guided filter, luma radius 2 with eps = (DENOISE_EPS_Y * (0.25 + strength))^2,
# chroma (at chroma resolution) radius 2 with eps = (DENOISE_EPS_C * (0.25 + strength))^2.
DENOISE_EPS_Y = 8.0
DENOISE_EPS_C = 6.0

# Effects applied per face from its landmarks (the debug overlay is drawn over the whole frame).
FACE_EFFECTS = tuple(name for name, spec in EFFECTS.items() if spec.per_face and name != "debug")
# The order effects run in within a face: luma ones on the luma plane, chroma ones on the chroma plane.
LUMA_EFFECTS = ("smooth", "whiten", "sharpen")
CHROMA_EFFECTS = ("blush", "lips")


def effect_params(setting: EffectSetting) -> dict[str, float]:
    """The effect's parameters: its declared defaults, overridden by what the setting gives."""
    out = {p.name: p.default for p in EFFECTS[setting.name].params}
    out.update(setting.params)
    return out
