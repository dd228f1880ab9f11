"""Paths of the test media and helpers shared by the test modules (fixtures live in conftest.py)."""
from __future__ import annotations

import os
from pathlib import Path

import av
import numpy as np

REPO = Path(__file__).resolve().parents[1]
MEDIA = Path(os.environ.get("FACESTREAM_MEDIA", REPO.parent / "shared" / "media"))
CLIP = MEDIA / "short_hamilton_clip.mp4"
CLIP_FRAMES = 275


def target(srv) -> str:
    return f"127.0.0.1:{srv.port}"


def decode_file(path: str | Path) -> list[av.VideoFrame]:
    with av.open(str(path)) as c:
        return list(c.decode(c.streams.video[0]))


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def nv12(frame: av.VideoFrame) -> np.ndarray:
    """NV12 in video (limited) range; JPEG frames come in full range and are converted."""
    if frame.format.name.startswith("yuvj"):
        frame = frame.reformat(format="nv12", src_color_range="JPEG", dst_color_range="MPEG")
    return frame.to_ndarray(format="nv12")
