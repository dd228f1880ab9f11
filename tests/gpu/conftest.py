"""Shared data for the GPU tests: the clip's Annex-B packets, PyAV's decode of it, faces found
by the CPU vision stage on a few frames. Everything here is skipped where there is no GPU."""
from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
CLIP = REPO.parent / "shared" / "media" / "short_hamilton_clip.mp4"


def annexb_packets(path: Path) -> list[tuple[bytes, int]]:
    """(Annex-B access unit, pts) per packet of an MP4 H.264/HEVC file."""
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
        pytest.fail(f"test media not found at {CLIP}")
    return annexb_packets(CLIP)


@pytest.fixture(scope="session")
def clip_nv12() -> list[tuple[np.ndarray, np.ndarray]]:
    """PyAV's decode of the clip as (y, uv) NV12 planes."""
    from facestream.engines.codec.cpu import nv12_planes

    with av.open(str(CLIP)) as c:
        return [tuple(a.copy() for a in nv12_planes(f)) for f in c.decode(c.streams.video[0])]


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


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)
