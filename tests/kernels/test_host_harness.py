"""The host launch refuses what a GPU launch would silently get wrong, so the kernel checks also
vouch for how GpuEffects and GpuInputMaker call the kernels."""
from __future__ import annotations

import numpy as np
import pytest

from facestream.engines.effects.gpu import BLOCK1, grid1

PACKAGE = "facestream.engines.effects"


def test_arguments_must_have_the_parameter_types(host):
    lips_mask = host.function(PACKAGE, "masks.cu", "lips_mask")
    a = np.ones(8, np.float32)
    out = np.empty_like(a)
    with pytest.raises(TypeError, match="int64"):       # a Python int travels as 64 bits
        lips_mask(grid1(8), BLOCK1, (a, a, out, 8))
    with pytest.raises(TypeError, match="float64"):
        lips_mask(grid1(8), BLOCK1, (a.astype(np.float64), a, out, np.int32(8)))
    with pytest.raises(TypeError, match="takes 4 arguments"):
        lips_mask(grid1(8), BLOCK1, (a, a, out))
    lips_mask(grid1(8), BLOCK1, (a, a * 0.25, out, np.int32(8)))
    assert np.allclose(out, 0.75)


def test_a_written_buffer_may_not_overlap_another_argument(host):
    geometry = host.function(PACKAGE, "masks.cu", "geometry")
    a = np.ones(16, np.float32)
    with pytest.raises(ValueError, match="overlaps"):
        geometry(grid1(8), BLOCK1, (a[:8], a[4:12], a[8:], np.int32(8)))


def test_launch_limits_are_the_gpus(host):
    geometry = host.function(PACKAGE, "masks.cu", "geometry")
    a = np.ones(8, np.float32)
    with pytest.raises(ValueError, match="invalid launch"):
        geometry((1, 1, 1), (2048, 1, 1), (a, a, np.empty_like(a), np.int32(8)))
