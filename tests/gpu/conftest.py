"""Shared data for the GPU tests: the clip's Annex-B packets, PyAV's decode of it, faces found
by the CPU vision stage on a few frames. Everything here is skipped where there is no GPU.

The clip comes from FACESTREAM_MEDIA (tests/support.py); PyAV, the reference decoder, is imported
by the fixtures that use it, so a GPU host without it collects these tests and skips the ones
that need it with "pyav missing".
"""
from __future__ import annotations

from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from support import CLIP


def _pyav() -> ModuleType:
    return pytest.importorskip("av", reason="pyav missing: the reference decode needs PyAV")


def annexb_packets(path: Path) -> list[tuple[bytes, int]]:
    """(Annex-B access unit, pts) per packet of an MP4 H.264/HEVC file."""
    av = _pyav()
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        bsf = av.BitStreamFilterContext(f"{s.codec_context.name}_mp4toannexb", s)
        out = []
        for p in c.demux(s):
            for q in bsf.filter(p):
                if q.size:
                    out.append((bytes(q), int(q.pts or 0)))
        for q in bsf.filter(None):
            if q.size:
                out.append((bytes(q), int(q.pts or 0)))
    return out


@pytest.fixture(scope="session")
def clip_packets() -> list[tuple[bytes, int]]:
    if not CLIP.exists():
        pytest.fail(f"test media not found at {CLIP}; set FACESTREAM_MEDIA")
    return annexb_packets(CLIP)


@pytest.fixture(scope="session")
def clip_nv12() -> list[tuple[np.ndarray, np.ndarray]]:
    """PyAV's decode of the clip as (y, uv) NV12 planes."""
    from facestream.engines.codec.cpu import nv12_planes

    if not CLIP.exists():
        pytest.fail(f"test media not found at {CLIP}; set FACESTREAM_MEDIA")
    av = _pyav()
    with av.open(str(CLIP)) as c:
        out = []
        for f in c.decode(c.streams.video[0]):
            y, uv, _ = nv12_planes(f)
            out.append((y.copy(), uv.copy()))
        return out


@pytest.fixture(scope="session")
def clip_faces(clip_nv12):
    """(y, uv, faces) for every 25th frame of the clip, faces from the CPU vision stage."""
    from facestream.engines.frame import Frame
    from facestream.engines.vision.cpu import CpuVision

    vision = CpuVision(max_faces=4)
    out = []
    for i, (y, uv) in enumerate(clip_nv12):
        faces = vision.process(Frame(y=y, uv=uv, pts=i, index=i))
        if i % 25 == 0 and any(f.landmarks is not None for f in faces):
            out.append((y, uv, faces))
    assert out, "the CPU vision stage found no faces in the clip"
    return out
