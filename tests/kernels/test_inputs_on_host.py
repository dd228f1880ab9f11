"""GpuInputMaker itself, with resample.cu built for the host, against InputMaker: the detector's
letterbox and the mesh's rotated crop give the models the same inputs as on the CPU (within
2 steps of 8-bit RGB; the kernels follow OpenCV's arithmetic, so in practice the same values),
on real frames, at frame sizes that scale down by fractional and whole factors and scale up."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from facestream.engines.models.specs import SPECS
from facestream.engines.vision import geometry as geo
from facestream.engines.vision.gpu_resample import GpuInputMaker
from facestream.engines.vision.resample import InputMaker, bgr_to_nv12, nv12_to_bgr

from .host_kernels import HostStream, checks

MAX_STEPS = 2
# frame sizes derived from a real frame: whole-factor and 2x downscales, upscales (2x and
# fractional, frames smaller than the model input), odd aspect ratios
SIZES = ((1920, 1080), (384, 216), (256, 144), (200, 112), (176, 144), (96, 54), (64, 36), (190, 100), (250, 250))


def _makers(host, model: str):
    spec = SPECS[model]
    cpu = InputMaker(spec.size, spec.input_scale, spec.input_offset)
    gpu = GpuInputMaker(spec.size, spec.input_scale, spec.input_offset, stream=HostStream(), runtime=host)
    return cpu, gpu, spec.input_scale / 255.0


def _steps(got: np.ndarray, want: np.ndarray, step: float) -> float:
    """Largest difference in 8-bit RGB steps (to a thousandth: the float32 inputs carry rounding)."""
    return round(float(np.abs(got - want).max() / step), 3)


@pytest.mark.parametrize("model", ["short", "full"])
@checks("letterbox_nv12", "nv12_to_input")
def test_detector_letterbox_matches_input_maker(host, scenes, model):
    cpu, gpu, step = _makers(host, model)
    bgr = nv12_to_bgr(scenes[0].y, scenes[0].uv)
    frames = [(s.name, s.y, s.uv) for s in scenes]
    frames += [(f"{w}x{h}", *bgr_to_nv12(cv2.resize(bgr, (w, h), interpolation=cv2.INTER_AREA))) for w, h in SIZES]
    for name, y, uv in frames:
        want, geom_cpu = cpu.letterbox(y, uv)
        got, geom_gpu = gpu.letterbox(y, uv)
        assert np.allclose(geom_cpu, geom_gpu), name
        steps = _steps(got, want, step)
        assert steps <= MAX_STEPS, f"{name}: {steps} steps"


@checks("affine_input")
def test_mesh_crop_matches_input_maker(host, scenes):
    cpu, gpu, step = _makers(host, "mesh")
    size = SPECS["mesh"].size
    for scene in scenes:
        for face in scene.faces:
            m = geo.roi_from_landmarks(face.landmarks).matrix(size)
            want = cpu.affine(scene.y, scene.uv, m).copy()
            steps = _steps(gpu.affine(scene.y, scene.uv, m), want, step)
            assert steps <= MAX_STEPS, f"{scene.name}: {steps} steps"


@checks("affine_input")
def test_mesh_crop_fills_the_given_batch_slot(host, scenes):
    cpu, gpu, _ = _makers(host, "mesh")
    size = SPECS["mesh"].size
    scene = scenes[0]
    m = geo.roi_from_landmarks(scene.faces[0].landmarks).matrix(size)
    batch = np.zeros((3, 3, size, size), np.float32)
    assert gpu.affine(scene.y, scene.uv, m, out=batch[1:2]) is not None
    assert np.allclose(batch[1:2], cpu.affine(scene.y, scene.uv, m), atol=1e-4)
    assert not batch[0].any() and not batch[2].any()
