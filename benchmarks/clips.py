"""Test clips at other sizes, made from the shared clip once per run (nothing is downloaded)."""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av


def parse_size(text: str) -> tuple[int, int]:
    """"1280x720" -> (1280, 720); even sizes only (NV12)."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"size {text!r} is not WIDTHxHEIGHT, for example 1280x720") from None
    if w < 16 or h < 16 or w % 2 or h % 2:
        raise ValueError(f"size {text!r}: width and height must be even and at least 16")
    return w, h


def scaled_clip(clip: Path, size: tuple[int, int], folder: Path) -> Path:
    """`clip` scaled to `size` (bicubic), H.264 Constrained Baseline (no B-frames: as a live source, and as
    the shared clip, whose pictures are never reordered, so the decoder holds none back) at near-transparent
    quality (CRF 16), same frame rate and timestamps, written to `folder` once and reused while the source
    is unchanged."""
    w, h = size
    out_path = folder / f"{clip.stem}-{w}x{h}-baseline.mp4"
    if out_path.exists() and out_path.stat().st_mtime >= clip.stat().st_mtime:
        return out_path
    folder.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_suffix(".part.mp4")
    with av.open(str(clip)) as src, av.open(str(tmp), "w") as dst:
        sin = src.streams.video[0]
        rate = sin.average_rate or Fraction(30)
        enc = dst.add_stream("libx264", rate=rate)
        enc.width, enc.height, enc.pix_fmt = w, h, "yuv420p"
        enc.time_base = sin.time_base
        enc.options = {"crf": "16", "preset": "medium", "profile": "baseline"}
        for frame in src.decode(sin):
            scaled = frame.reformat(width=w, height=h, format="yuv420p", interpolation="BICUBIC")
            scaled.pts, scaled.time_base = frame.pts, frame.time_base
            for packet in enc.encode(scaled):
                dst.mux(packet)
        for packet in enc.encode():
            dst.mux(packet)
    tmp.replace(out_path)
    return out_path
