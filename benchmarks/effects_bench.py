"""Per-effect cost of the CPU effects at 640x360 and 1280x720, with one and two faces.

    python -m facestream.benchmarks.effects_bench [--reps 15] [--json out.json]

Frames are real photos from the shared media scaled to each size (one face: obama-720p.jpg,
two faces: two_people.jpg); faces come from the vision stage once per frame, outside the timing.
As reference, the same run times a plain H.264 decode (PyAV, to NV12) of a frame of the same size,
so each effect's cost can be read as a ratio to decoding.
"""
from __future__ import annotations

import argparse
import io
import json
import statistics
import time
from pathlib import Path

import av
import cv2
import numpy as np

from facestream.engines.effects.base import EffectSetting, EffectSettings
from facestream.engines.effects.cpu import CpuEffects
from facestream.engines.effects.registry import EFFECTS
from facestream.engines.frame import Frame
from facestream.engines.vision.face import Face

ROOT = Path(__file__).resolve().parents[1]
MEDIA = ROOT / ".." / "shared" / "media"
SIZES = ((640, 360), (1280, 720))
SCENES = (("1 face", "obama-720p.jpg"), ("2 faces", "two_people.jpg"))
FACE_ONLY = tuple(n for n, s in EFFECTS.items() if s.per_face)


def nv12(bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    h, w = bgr.shape[:2]
    flat = cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_I420).reshape(-1)
    u = flat[h * w : h * w * 5 // 4].reshape(h // 2, w // 2)
    v = flat[h * w * 5 // 4 :].reshape(h // 2, w // 2)
    return flat[: h * w].reshape(h, w).copy(), np.dstack([u, v]).copy()


def find_faces(y: np.ndarray, uv: np.ndarray) -> list[Face]:
    from facestream.engines.vision.cpu import CpuVision

    vision = CpuVision(detector="full", smoothing=False)
    try:
        return list(vision.process(Frame(y, uv, pts=0)))
    finally:
        vision.close()


def clip_frames(w: int, h: int, frames: int) -> list[np.ndarray]:
    with av.open(str(MEDIA / "short_hamilton_clip.mp4")) as src:
        out = []
        for f in src.decode(video=0):
            out.append(cv2.resize(f.to_ndarray(format="bgr24"), (w, h), interpolation=cv2.INTER_AREA))
            if len(out) == frames:
                return out
    return out


def decode_ms(w: int, h: int, frames: int = 60) -> float:
    """Median ms to decode one frame of H.264 of this size (the shared clip re-encoded by libx264
    at this size, decoded by PyAV on one thread, to NV12)."""
    buf = io.BytesIO()
    with av.open(buf, "w", format="h264") as out:
        stream = out.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.options = {"preset": "veryfast", "tune": "zerolatency"}
        for picture in clip_frames(w, h, frames):
            for packet in stream.encode(av.VideoFrame.from_ndarray(picture, format="bgr24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    times = []
    buf.seek(0)
    with av.open(buf, "r", format="h264") as src:
        dec = src.streams.video[0]
        dec.thread_type = "NONE"
        it = src.decode(dec)
        while True:
            t = time.perf_counter()
            try:
                frame = next(it)
            except StopIteration:
                break
            frame.to_ndarray(format="nv12")
            times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def effect_ms(y, uv, faces, settings: EffectSettings, reps: int) -> float:
    fx = CpuEffects()
    times = []
    for _ in range(reps):
        frame = Frame(y.copy(), uv.copy(), pts=0)
        t = time.perf_counter()
        fx.apply(frame, faces, settings)
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    cv2.setNumThreads(1)
    results = []
    for w, h in SIZES:
        decode = decode_ms(w, h)
        for scene, photo in SCENES:
            bgr = cv2.resize(cv2.imread(str(MEDIA / photo)), (w, h), interpolation=cv2.INTER_AREA)
            y, uv = nv12(bgr)
            faces = [f for f in find_faces(y, uv) if f.landmarks is not None]
            row = {"size": f"{w}x{h}", "scene": scene, "faces": len(faces), "decode_ms": decode}
            for name in EFFECTS:
                row[name] = effect_ms(y, uv, faces, EffectSettings((EffectSetting(name, 1.0),)), args.reps)
            row["all face effects"] = effect_ms(
                y, uv, faces, EffectSettings(tuple(EffectSetting(n, 1.0) for n in FACE_ONLY if n != "debug")), args.reps
            )
            results.append(row)
    names = list(EFFECTS) + ["all face effects"]
    print("| size | scene | decode ms | " + " | ".join(names) + " |")
    print("|" + "---|" * (3 + len(names)))
    for r in results:
        cells = [f"{r[n]:.1f} ({r[n] / r['decode_ms']:.1f}x)" for n in names]
        print(f"| {r['size']} | {r['scene']} ({r['faces']} found) | {r['decode_ms']:.2f} | " + " | ".join(cells) + " |")
    print("ms per frame, median; in brackets the ratio to decoding one frame of the same size (single thread).")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
