"""GpuEffects itself, with its kernel files built for the host and NumPy arrays standing in for
CuPy's, against CpuEffects on real faces: every effect moves the same pixels by the same amounts
(max difference <= 2 code values on each 8-bit plane, as on a GPU)."""
from __future__ import annotations

import numpy as np
import pytest

from facestream.engines.effects.base import EffectSetting, EffectSettings
from facestream.engines.effects.cpu import CpuEffects
from facestream.engines.effects.gpu import GpuEffects
from facestream.engines.effects.masks import FaceRegion

from .host_kernels import checks

MAX_DIFF = 2
FACE_EFFECTS = ("smooth", "whiten", "sharpen", "lips", "blush", "slim", "eyes")
MASKS = ("fill_polys", "gauss_h", "gauss_v", "geometry", "skin_chroma")
GUIDED = ("load_u8", "box_h", "box_v", "guided_ab", "guided_q", "store_u8")
# The kernels each effect runs (beyond these, GpuEffects may share masks between effects).
EFFECT_KERNELS = {
    "smooth": MASKS + GUIDED + ("smooth_blend",),
    "whiten": MASKS + ("load_u8", "whiten_blend", "store_u8"),
    "sharpen": MASKS + ("load_u8", "sharpen_blend", "store_u8"),
    "lips": ("fill_polys", "lips_mask", "gauss_h", "gauss_v", "chroma_fx"),
    "blush": MASKS + ("chroma_fx",),
    "slim": ("warp_plane",),
    "eyes": ("warp_plane",),
    "denoise": GUIDED,
}


def _diff(a: np.ndarray, b: np.ndarray) -> int:
    return int(np.abs(a.astype(np.int16) - b.astype(np.int16)).max())


def _run_both(host, scene, settings: EffectSettings):
    cpu = scene.frame()
    CpuEffects().apply(cpu, scene.faces, settings)
    gpu = scene.frame()
    GpuEffects(runtime=host).apply(gpu, scene.faces, settings)
    return cpu, gpu


@pytest.mark.parametrize("name", FACE_EFFECTS + ("denoise",))
def test_each_effect_matches_the_cpu_reference(host, scenes, name):
    changed = 0
    with host.recording() as ran:
        for strength in (0.5, 1.0):
            settings = EffectSettings(effects=(EffectSetting(name, strength),))
            for scene in scenes:
                cpu, gpu = _run_both(host, scene, settings)
                where = f"{name} at {strength} on {scene.name}"
                assert _diff(cpu.y, gpu.y) <= MAX_DIFF, f"{where}: Y differs by {_diff(cpu.y, gpu.y)}"
                assert _diff(cpu.uv, gpu.uv) <= MAX_DIFF, f"{where}: UV differs by {_diff(cpu.uv, gpu.uv)}"
                changed = max(changed, _diff(cpu.y, scene.y), _diff(cpu.uv, scene.uv))
    assert changed >= 5, f"{name} hardly changed any picture (at most {changed} code values)"
    assert set(EFFECT_KERNELS[name]) <= ran


@checks(*sorted({k for ks in EFFECT_KERNELS.values() for k in ks}))
def test_all_effects_together_match(host, scenes):
    settings = EffectSettings(effects=tuple(EffectSetting(n, 0.8) for n in FACE_EFFECTS + ("denoise", "debug")))
    for scene in scenes:
        cpu, gpu = _run_both(host, scene, settings)
        assert _diff(cpu.y, gpu.y) <= MAX_DIFF, f"{scene.name}: Y differs by {_diff(cpu.y, gpu.y)}"
        assert _diff(cpu.uv, gpu.uv) <= MAX_DIFF, f"{scene.name}: UV differs by {_diff(cpu.uv, gpu.uv)}"


def test_per_face_settings_apply_to_their_face_only(host, scenes):
    scene = next(s for s in scenes if s.name == "two_people.jpg")
    first, second = (FaceRegion(f.landmarks, *scene.y.shape) for f in scene.faces[:2])
    assert first.x1 <= second.x0 or second.x1 <= first.x0, "the two faces' regions overlap"
    settings = EffectSettings(per_face={scene.faces[0].id: (EffectSetting("whiten", 1.0), EffectSetting("eyes", 1.0))})
    cpu, gpu = _run_both(host, scene, settings)
    assert _diff(cpu.y, gpu.y) <= MAX_DIFF and _diff(cpu.uv, gpu.uv) <= MAX_DIFF
    assert not np.array_equal(gpu.y[first.luma], scene.y[first.luma])
    assert np.array_equal(gpu.y[second.luma], scene.y[second.luma])


def test_pixels_outside_the_faces_are_untouched(host, scenes):
    settings = EffectSettings(effects=tuple(EffectSetting(n, 1.0) for n in FACE_EFFECTS))
    for scene in scenes:
        gpu = scene.frame()
        GpuEffects(runtime=host).apply(gpu, scene.faces, settings)
        outside = np.ones(scene.y.shape, bool)
        for face in scene.faces:
            outside[FaceRegion(face.landmarks, *scene.y.shape).luma] = False
        assert np.array_equal(gpu.y[outside], scene.y[outside]), scene.name
        assert not np.array_equal(gpu.y, scene.y), scene.name
