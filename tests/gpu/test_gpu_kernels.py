"""Every GPU kernel against its CPU reference on real frames: max abs difference <= 2 code values
on the 8-bit planes (effects), and on the model inputs expressed in 8-bit RGB steps (resample).

The kernels run on the non-blocking streams of GpuEffects / GpuInputMaker: test data is uploaded
and results are read back on the stream that does the work (asnumpy with that stream waits for it).
"""
from __future__ import annotations

import numpy as np
import pytest

from facestream.engines.effects.base import EffectSetting, EffectSettings
from facestream.engines.effects.cpu import CpuEffects
from facestream.engines.frame import Frame

pytestmark = pytest.mark.gpu

MAX_DIFF = 2
FACE_EFFECTS = ["smooth", "whiten", "sharpen", "lips", "blush", "slim", "eyes"]


def _upload(stream, y, uv) -> Frame:
    import cupy as cp

    with stream:
        return Frame(y=cp.asarray(y), uv=cp.asarray(uv), pts=0)


def _run_both(y, uv, faces, settings):
    import cupy as cp

    from facestream.engines.effects.gpu import GpuEffects

    cpu = Frame(y=y.copy(), uv=uv.copy(), pts=0)
    CpuEffects().apply(cpu, faces, settings)
    fx = GpuEffects()
    gpu = _upload(fx.stream, y, uv)
    fx.apply(gpu, faces, settings)
    return cpu, cp.asnumpy(gpu.y, stream=fx.stream), cp.asnumpy(gpu.uv, stream=fx.stream)


def _diff(a, b) -> int:
    return int(np.abs(a.astype(np.int16) - b.astype(np.int16)).max())


@pytest.mark.parametrize("name", FACE_EFFECTS + ["denoise"])
@pytest.mark.parametrize("strength", [0.5, 1.0])
def test_effect_matches_cpu_reference(clip_faces, name, strength):
    for y, uv, faces in clip_faces:
        settings = EffectSettings(effects=(EffectSetting(name, strength),))
        cpu, gy, guv = _run_both(y, uv, faces, settings)
        assert _diff(cpu.y, gy) <= MAX_DIFF, f"{name} Y differs by {_diff(cpu.y, gy)}"
        assert _diff(cpu.uv, guv) <= MAX_DIFF, f"{name} UV differs by {_diff(cpu.uv, guv)}"


def test_all_effects_together_match(clip_faces):
    settings = EffectSettings(effects=tuple(EffectSetting(n, 0.8) for n in FACE_EFFECTS + ["denoise", "debug"]))
    for y, uv, faces in clip_faces:
        cpu, gy, guv = _run_both(y, uv, faces, settings)
        assert _diff(cpu.y, gy) <= MAX_DIFF and _diff(cpu.uv, guv) <= MAX_DIFF


def test_pixels_outside_faces_are_untouched(clip_faces):
    import cupy as cp

    from facestream.engines.effects.gpu import GpuEffects
    from facestream.engines.effects.masks import FaceRegion

    y, uv, faces = clip_faces[0]
    fx = GpuEffects()
    f = _upload(fx.stream, y, uv)
    fx.apply(f, faces, EffectSettings(effects=tuple(EffectSetting(n, 1.0) for n in FACE_EFFECTS)))
    out = cp.asnumpy(f.y, stream=fx.stream)
    mask = np.ones(y.shape, bool)
    for face in faces:
        if face.landmarks is not None:
            r = FaceRegion(face.landmarks, *y.shape)
            mask[r.luma] = False
    assert np.array_equal(out[mask], y[mask])


def test_polygon_fill_matches_opencv(clip_faces):
    import cupy as cp

    from facestream.engines.effects import mesh
    from facestream.engines.effects.gpu import GpuEffects, GpuRegion
    from facestream.engines.effects.masks import FaceRegion

    fx = GpuEffects()
    for y, uv, faces in clip_faces:
        frame = _upload(fx.stream, y, uv)
        for face in faces:
            if face.landmarks is None:
                continue
            r = FaceRegion(face.landmarks, *y.shape)
            g = GpuRegion(r, frame.y, frame.uv, fx.filters)
            for polys in ((mesh.FACE_OVAL,), (mesh.RIGHT_EYE, mesh.LEFT_EYE, mesh.LIPS_OUTER), (mesh.LIPS_INNER,)):
                got = cp.asnumpy(g.fill(*polys), stream=fx.stream)
                assert np.array_equal(got, r.fill(*polys))


def test_filters_match(clip_faces):
    import cupy as cp

    from facestream.engines.effects.filters import gaussian_blur, guided_filter
    from facestream.engines.effects.gpu import GpuFilters

    y = clip_faces[0][0].astype(np.float32)
    f = GpuFilters(cp.cuda.Stream(non_blocking=True))
    with f.stream:
        gy = cp.asarray(y)
    assert np.abs(cp.asnumpy(f.gaussian(gy, 2.5), stream=f.stream) - gaussian_blur(y, 2.5)).max() < 0.05
    assert np.abs(cp.asnumpy(f.guided(gy, 4, 144.0), stream=f.stream) - guided_filter(y, 4, 144.0)).max() < 0.05


@pytest.mark.parametrize("model", ["short", "full", "mesh"])
def test_model_inputs_match_input_maker(clip_faces, model):
    import cupy as cp

    from facestream.engines.models.specs import SPECS
    from facestream.engines.vision import geometry as geo
    from facestream.engines.vision.gpu_resample import GpuInputMaker
    from facestream.engines.vision.resample import InputMaker

    spec = SPECS[model]
    cpu = InputMaker(spec.size, spec.input_scale, spec.input_offset)
    gpu = GpuInputMaker(spec.size, spec.input_scale, spec.input_offset)
    step = spec.input_scale / 255.0       # one 8-bit RGB step in model-input units
    for y, uv, faces in clip_faces:
        frame = _upload(gpu.stream, y, uv)
        if spec.kind == "detector":
            want, geom_c = cpu.letterbox(y, uv)
            got, geom_g = gpu.letterbox(frame.y, frame.uv)
            assert np.allclose(geom_c, geom_g)
            assert np.abs(cp.asnumpy(got, stream=gpu.stream) - want).max() <= MAX_DIFF * step + 1e-5
        for face in faces:
            if face.landmarks is None:
                continue
            m = geo.roi_from_landmarks(face.landmarks).matrix(spec.size)
            want = cpu.affine(y, uv, m).copy()
            got = cp.asnumpy(gpu.affine(frame.y, frame.uv, m), stream=gpu.stream)
            assert np.abs(got - want).max() <= MAX_DIFF * step + 1e-5
