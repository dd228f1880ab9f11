"""Paths of the test media and helpers shared by the test modules (fixtures live in conftest.py)."""
from __future__ import annotations

import os
from pathlib import Path

import av
import cv2
import numpy as np

from facestream.engines.frame import Frame
from facestream.engines.vision.resample import bgr_to_nv12

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


def photo_frame(name: str, index: int = 0) -> Frame:
    """A shared photo as an NV12 frame (cropped to even size)."""
    y, uv = bgr_to_nv12(cv2.imread(str(MEDIA / name)))
    return Frame(y=y, uv=uv, pts=index, index=index)


def decode_clip(path: Path = CLIP) -> list[Frame]:
    """Every frame of a clip as NV12 frames numbered from 0."""
    frames = []
    with av.open(str(path)) as c:
        for i, fr in enumerate(c.decode(video=0)):
            a = fr.reformat(format="nv12").to_ndarray()
            h = fr.height
            frames.append(Frame(y=np.ascontiguousarray(a[:h]),
                                uv=np.ascontiguousarray(a[h:h * 3 // 2].reshape(h // 2, -1, 2)),
                                pts=i, index=i))
    return frames
