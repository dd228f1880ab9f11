"""Builds the before/after gallery of the beauty effects into docs/gallery/.

    python docs/make_gallery.py [--media ../shared/media] [--out docs/gallery]

For each effect one PNG: a row per photo (cropped around the faces), a column per strength,
the first column the untouched input. Faces come from the project's vision stage (CPU).
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

import cv2
import numpy as np

from facestream.engines.effects.base import EffectSetting, EffectSettings
from facestream.engines.effects.cpu import CpuEffects
from facestream.engines.effects.masks import FaceRegion
from facestream.engines.frame import Frame
from facestream.engines.vision.face import Face
from facestream.engines.vision.resample import bgr_to_nv12, nv12_to_bgr

ROOT = Path(__file__).resolve().parents[1]
# (photo, which face from the left) for the rows of every grid
ROWS = (("obama-720p.jpg", 0), ("two_people.jpg", 1), ("kit_with_rose.jpg", 0))
STRENGTHS = (0.0, 0.5, 1.0)
EFFECTS = ("smooth", "whiten", "slim", "eyes", "lips", "blush", "sharpen", "denoise", "debug")
TILE_H = 180


def find_faces(y: np.ndarray, uv: np.ndarray) -> list[Face]:
    from facestream.engines.vision.cpu import CpuVision

    vision = CpuVision(detector="full", smoothing=False)
    try:
        return [f for f in vision.process(Frame(y, uv, pts=0))]
    finally:
        vision.close()


def crop_box(face: Face, h: int, w: int) -> tuple[slice, slice]:
    r = FaceRegion(face.landmarks, h, w, margin=0.12)
    return slice(r.y0, r.y1), slice(r.x0, r.x1)


def label(img: np.ndarray, text: str) -> np.ndarray:
    bar = np.full((22, img.shape[1], 3), 255, np.uint8)
    cv2.putText(bar, text, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    return np.vstack([bar, img])


def tile(bgr: np.ndarray) -> np.ndarray:
    s = TILE_H / bgr.shape[0]
    return cv2.resize(bgr, (max(1, round(bgr.shape[1] * s)), TILE_H), interpolation=cv2.INTER_AREA)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--media", type=Path, default=ROOT / ".." / "shared" / "media")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "gallery")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    fx = CpuEffects()
    photos = []
    for name, which in ROWS:
        y, uv = bgr_to_nv12(cv2.imread(str(args.media / name)))
        faces = sorted((f for f in find_faces(y, uv) if f.landmarks is not None), key=lambda f: float(f.box[0]))
        photos.append((y, uv, faces, crop_box(faces[which], *y.shape)))
    for effect in EFFECTS:
        rows = []
        for y, uv, faces, box in photos:
            tiles = []
            for s in STRENGTHS:
                frame = Frame(y.copy(), uv.copy(), pts=0)
                if s > 0:
                    fx.apply(frame, faces, EffectSettings((EffectSetting(effect, s),)))
                text = "input" if s == 0 else f"{effect} {s:g}"
                tiles.append(label(tile(nv12_to_bgr(frame.y, frame.uv)[box]), text))
            row = np.hstack([np.pad(t, ((0, 0), (0, 4), (0, 0)), constant_values=255) for t in tiles])
            rows.append(row)
        width = max(r.shape[1] for r in rows)
        rows = [np.pad(r, ((0, 4), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
        path = args.out / f"{effect}.png"
        cv2.imwrite(str(path), np.vstack(rows), [cv2.IMWRITE_PNG_COMPRESSION, 9])
        print(path, os.path.getsize(path) // 1024, "KiB")
    # all face effects together at a moderate setting
    combo = tuple(EffectSetting(n, 0.6) for n in ("smooth", "whiten", "slim", "eyes", "lips", "blush", "sharpen"))
    rows = []
    for y, uv, faces, box in photos:
        frame = Frame(y.copy(), uv.copy(), pts=0)
        fx.apply(frame, faces, EffectSettings(combo))
        rows.append(np.hstack([label(tile(nv12_to_bgr(y, uv)[box]), "input"),
                               label(tile(nv12_to_bgr(frame.y, frame.uv)[box]), "all face effects 0.6")]))
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 4), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    path = args.out / "combined.png"
    cv2.imwrite(str(path), np.vstack(rows), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    print(path, os.path.getsize(path) // 1024, "KiB")


if __name__ == "__main__":
    main()
