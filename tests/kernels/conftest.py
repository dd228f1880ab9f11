"""Fixtures of the host kernel checks: the kernel files built once per test session with the C++
compiler, and real pictures (shared photos, clip frames, a face cut by the frame edge) with the
faces the CPU vision stage finds in them."""
from __future__ import annotations

import av
import cv2
import numpy as np
import pytest

from facestream.engines.frame import Frame
from facestream.engines.kernel_runtime import kernel_source
from facestream.engines.vision.face import Face
from facestream.engines.vision.resample import bgr_to_nv12

from .host_kernels import HostCompiler, HostRuntime, find_compiler
from .sources import KERNEL_FILES
from support import CLIP, MEDIA, Picture

PHOTOS = ("obama-720p.jpg", "two_people.jpg", "kit_with_rose.jpg", "obama_partial_face.jpg")
CLIP_FRAMES = (0, 100, 250)   # one face, one turned face, three faces


@pytest.fixture(scope="session")
def host(tmp_path_factory) -> HostRuntime:
    """Every kernel file compiled for the host (side by side, once per session)."""
    cxx = find_compiler()
    if cxx is None:
        pytest.skip("no C++ compiler (g++ or $CXX) to build the CUDA kernels for the host")
    compiler = HostCompiler(cxx, tmp_path_factory.mktemp("host-kernels"))
    compiler.build(kernel_source(package, name) for package, name in KERNEL_FILES)
    return HostRuntime(compiler)


@pytest.fixture(autouse=True)
def _declared_kernels_ran(request):
    """A test marked with @checks(...) fails unless each kernel it names was launched during it."""
    names = getattr(request.function, "kernels", None)
    if not names:
        yield
        return
    host = request.getfixturevalue("host")
    failed = request.session.testsfailed
    with host.recording() as ran:
        yield
    missing = sorted(set(names) - ran)
    if request.session.testsfailed == failed:   # a failed test need not have reached its kernels
        assert not missing, f"{request.node.name} declares kernels it never launched: {missing}"


def _faces(y: np.ndarray, uv: np.ndarray) -> list[Face]:
    from facestream.engines.vision.cpu import CpuVision

    vision = CpuVision(detector="full", smoothing=False)   # a fresh tracker per picture
    try:
        faces = [f for f in vision.process(Frame(y, uv, pts=0)) if f.landmarks is not None]
    finally:
        vision.close()
    assert faces, "the CPU vision stage found no face"
    return faces


@pytest.fixture(scope="session")
def scenes() -> list[Picture]:
    if not CLIP.exists():
        pytest.fail(f"test media not found at {MEDIA}; set FACESTREAM_MEDIA")
    out = []
    for name in PHOTOS:
        y, uv = bgr_to_nv12(cv2.imread(str(MEDIA / name)))
        out.append(Picture(name, y, uv, _faces(y, uv)))
    with av.open(str(CLIP)) as c:
        for i, f in enumerate(c.decode(video=0)):
            if i in CLIP_FRAMES:
                planes = f.to_ndarray(format="nv12")
                h = f.height
                y = np.ascontiguousarray(planes[:h])
                uv = np.ascontiguousarray(planes[h:].reshape(h // 2, f.width // 2, 2))
                out.append(Picture(f"clip frame {i}", y, uv, _faces(y, uv)))
            if i >= max(CLIP_FRAMES):
                break
    return out
