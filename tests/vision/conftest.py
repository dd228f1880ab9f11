from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from facestream.engines.frame import Frame
from facestream.engines.vision.resample import bgr_to_nv12

MEDIA = Path(__file__).resolve().parents[2].parent / "shared" / "media"
CLIP = MEDIA / "short_hamilton_clip.mp4"


def photo_frame(name: str, index: int = 0) -> Frame:
    y, uv = bgr_to_nv12(cv2.imread(str(MEDIA / name)))
    return Frame(y=y, uv=uv, pts=index, index=index)


def decode_clip(path: Path = CLIP) -> list[Frame]:
    import av

    frames = []
    with av.open(str(path)) as c:
        for i, fr in enumerate(c.decode(video=0)):
            a = fr.reformat(format="nv12").to_ndarray()
            h = fr.height
            frames.append(Frame(y=np.ascontiguousarray(a[:h]),
                                uv=np.ascontiguousarray(a[h:h * 3 // 2].reshape(h // 2, -1, 2)),
                                pts=i, index=i))
    return frames


@pytest.fixture(scope="session")
def clip_frames() -> list[Frame]:
    if not CLIP.exists():
        pytest.fail(f"test media missing: {CLIP}")
    return decode_clip()


@pytest.fixture(scope="session")
def photo():
    return photo_frame
