"""The benchmark's input: the shared clip tiled 2x2 (1080p on the GPU run) with 1 to 4 faces a
frame, encoded once, and read back as the client sends it."""
from __future__ import annotations

import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from facestream.benchmarks.gpu_bench.config import FPS, SINGER_FRAMES, TILE_PHASE, TILE_STRIDE
from facestream.benchmarks.gpu_bench.report import Deadline


def _clip_planes(src: Path, frames: range, tile: tuple[int, int]) -> list[tuple[np.ndarray, ...]]:
    """The clip's `frames` as (Y, U, V) planes scaled to the tile size."""
    import cv2

    from facestream.engines.codec.cpu import pyav

    tw, th = tile
    out: list[tuple[np.ndarray, ...]] = []
    with pyav().open(str(src)) as c:
        for i, f in enumerate(c.decode(video=0)):
            if i < frames.start:
                continue
            if i >= frames.stop:
                break
            yuv = f.to_ndarray(format="yuv420p")
            h, w = f.height, f.width
            y, u, v = yuv[:h], yuv[h: h + h // 4].reshape(h // 2, w // 2), yuv[h + h // 4:].reshape(h // 2, w // 2)
            out.append((cv2.resize(y, (tw, th), interpolation=cv2.INTER_LINEAR),
                        cv2.resize(u, (tw // 2, th // 2), interpolation=cv2.INTER_LINEAR),
                        cv2.resize(v, (tw // 2, th // 2), interpolation=cv2.INTER_LINEAR)))
    return out


def face_tiles(i: int) -> list[int]:
    """The tiles (0..3, row by row) that show the singer in frame i: 1, 2, 3, 4, 1, ... of them,
    changing every TILE_PHASE frames, starting at a tile that moves on each time."""
    phase = i // TILE_PHASE
    return [(phase + k) % 4 for k in range(1 + phase % 4)]


def tiled_frame(i: int, tiles: list[tuple[np.ndarray, ...]], size: tuple[int, int]) -> np.ndarray:
    """Frame i of the tiled video as one yuv420p array (H * 3 / 2, W)."""
    w, h = size
    tw, th = w // 2, h // 2
    y = np.full((h, w), 128, np.uint8)
    u = np.full((h // 2, w // 2), 128, np.uint8)
    v = np.full((h // 2, w // 2), 128, np.uint8)
    for k in face_tiles(i):
        ty, tu, tv = tiles[(i + k * TILE_STRIDE) % len(tiles)]
        r, c = divmod(k, 2)
        y[r * th:(r + 1) * th, c * tw:(c + 1) * tw] = ty
        u[r * th // 2:(r + 1) * th // 2, c * tw // 2:(c + 1) * tw // 2] = tu
        v[r * th // 2:(r + 1) * th // 2, c * tw // 2:(c + 1) * tw // 2] = tv
    return np.concatenate([y, u.reshape(h // 4, w), v.reshape(h // 4, w)])


def make_input(src: Path, out: Path, size: tuple[int, int], frames: int, deadline: Deadline) -> dict[str, Any]:
    """Writes the tiled clip to `out` (MP4, libx264, no B-frames); stops early at the deadline."""
    from facestream.engines.codec.cpu import pyav

    av = pyav()
    t = time.perf_counter()
    tiles = _clip_planes(src, SINGER_FRAMES, (size[0] // 2, size[1] // 2))
    faces: dict[int, int] = {}
    with av.open(str(out), "w", format="mp4") as c:
        st = c.add_stream("libx264", rate=int(FPS))
        st.width, st.height, st.pix_fmt = size[0], size[1], "yuv420p"
        st.codec_context.gop_size = 60
        st.codec_context.max_b_frames = 0
        st.options = {"preset": "veryfast", "tune": "zerolatency", "crf": "20"}
        n = 0
        while n < frames and not deadline.over:
            frame = av.VideoFrame.from_ndarray(tiled_frame(n, tiles, size), format="yuv420p")
            frame.pts, frame.time_base = n, Fraction(1, int(FPS))
            for p in st.encode(frame):
                c.mux(p)
            faces[len(face_tiles(n))] = faces.get(len(face_tiles(n)), 0) + 1
            n += 1
        for p in st.encode(None):
            c.mux(p)
    return {"width": size[0], "height": size[1], "frames": n, "source": f"{src.name}, 2x2 tiles",
            "frames_by_tiles_showing_the_singer": dict(sorted(faces.items())), "bytes": out.stat().st_size,
            "seconds": round(time.perf_counter() - t, 2)}


def annexb_packets(path: Path) -> list[tuple[bytes, int]]:
    """(Annex-B access unit, pts) for every packet of an H.264 MP4, as the client sends them."""
    from facestream.engines.codec.cpu import pyav

    av = pyav()
    out = []
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        bsf = av.BitStreamFilterContext("h264_mp4toannexb", s)
        for p in [*c.demux(s), None]:
            for q in bsf.filter(p):
                if q.size:
                    out.append((bytes(q), int(q.pts or 0)))
    return out
