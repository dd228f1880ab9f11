"""The baseline a user would write instead of facestream: OpenCV + MediaPipe in one loop.

    decode (cv2.VideoCapture) -> MediaPipe face mesh (tracking) -> skin smoothing
    (bilateral filter inside the face oval, feathered mask) -> encode

Runs in the MediaPipe environment (benchmarks/peers/setup_mediapipe.sh):

    benchmarks/peers/.venv-mediapipe/bin/python benchmarks/peers/opencv_mediapipe.py CLIP FRAMES OUT.json

Two encoders are timed: cv2.VideoWriter with "mp4v" (MPEG-4 Part 2, what OpenCV's wheels can
write out of the box) and libx264 through PyAV with the settings facestream's CPU encoder uses
(superfast, zerolatency, one thread up to 720p), so the second is like for like on the codec. The whole loop is timed,
decode and encode included, one frame at a time as a live pipeline would run.
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
import time

import cv2
import mediapipe as mp
import numpy as np

OVAL = sorted({i for pair in mp.solutions.face_mesh.FACEMESH_FACE_OVAL for i in pair})


def smooth_faces(bgr: np.ndarray, result) -> np.ndarray:
    if not result.multi_face_landmarks:
        return bgr
    h, w = bgr.shape[:2]
    for face in result.multi_face_landmarks:
        pts = np.array([(face.landmark[i].x * w, face.landmark[i].y * h) for i in OVAL], np.float32)
        x0, y0 = np.maximum(pts.min(0).astype(int) - 8, 0)
        x1, y1 = np.minimum(pts.max(0).astype(int) + 8, [w, h])
        if x1 - x0 < 8 or y1 - y0 < 8:
            continue
        roi = bgr[y0:y1, x0:x1]
        mask = np.zeros(roi.shape[:2], np.uint8)
        cv2.fillConvexPoly(mask, cv2.convexHull((pts - [x0, y0]).astype(np.int32)), 255)
        k = max(3, (min(x1 - x0, y1 - y0) // 10) | 1)
        alpha = cv2.GaussianBlur(mask, (k, k), 0).astype(np.float32)[..., None] / 255.0
        smooth = cv2.bilateralFilter(roi, 9, 40, 7)
        bgr[y0:y1, x0:x1] = (roi * (1 - alpha) + smooth * alpha).astype(np.uint8)
    return bgr


class Mp4vWriter:
    def __init__(self, path: str, w: int, h: int, fps: float) -> None:
        self.w = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
        if not self.w.isOpened():
            raise RuntimeError("cv2.VideoWriter could not open an mp4v writer")

    def write(self, bgr: np.ndarray) -> None:
        self.w.write(bgr)

    def close(self) -> None:
        self.w.release()


class X264Writer:
    def __init__(self, path: str, w: int, h: int, fps: float) -> None:
        from fractions import Fraction

        import av

        self.av = av
        self.out = av.open(path, "w")
        self.s = self.out.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        self.s.width, self.s.height, self.s.pix_fmt = w, h, "yuv420p"
        self.s.options = {"preset": "superfast", "tune": "zerolatency"}
        if w * h <= 1280 * 720:
            self.s.codec_context.thread_count = 1

    def write(self, bgr: np.ndarray) -> None:
        for p in self.s.encode(self.av.VideoFrame.from_ndarray(bgr, format="bgr24")):
            self.out.mux(p)

    def close(self) -> None:
        for p in self.s.encode():
            self.out.mux(p)
        self.out.close()


def run(clip: str, n: int, writer_cls, out_path: str, max_faces: int) -> dict:
    cap = cv2.VideoCapture(clip)
    fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
    w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    writer = writer_cls(out_path, w, h, fps)
    frames = found = 0
    with mp.solutions.face_mesh.FaceMesh(static_image_mode=False, max_num_faces=max_faces) as mesh:
        t = time.perf_counter()
        while frames < n:
            ok, bgr = cap.read()
            if not ok:
                if frames == 0:
                    break
                cap.set(cv2.CAP_PROP_POS_FRAMES, 0)  # loop the clip for long runs
                continue
            result = mesh.process(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
            found += bool(result.multi_face_landmarks)
            writer.write(smooth_faces(bgr, result))
            frames += 1
        writer.close()
        seconds = time.perf_counter() - t
    cap.release()
    return {"frames": frames, "seconds": seconds, "fps": frames / seconds,
            "ms_per_frame": seconds * 1000 / max(1, frames), "frames_with_face": found,
            "width": w, "height": h, "output_bytes": os.path.getsize(out_path)}


def main(argv: list[str]) -> int:
    clip, n, out = argv[1], int(argv[2]), argv[3]
    max_faces = int(argv[4]) if len(argv) > 4 else 1
    with tempfile.TemporaryDirectory() as tmp:
        # one short warm-up so model loading is not in the timing
        run(clip, 5, Mp4vWriter, os.path.join(tmp, "warm.mp4"), max_faces)
        res = {
            "opencv_version": cv2.__version__,
            "mediapipe_version": mp.__version__,
            "smoothing": "bilateral filter (d=9, sigmaColor=40, sigmaSpace=7) inside the face-mesh oval, feathered",
            "mp4v": run(clip, n, Mp4vWriter, os.path.join(tmp, "out_mp4v.mp4"), max_faces),
            "x264": run(clip, n, X264Writer, os.path.join(tmp, "out_x264.mp4"), max_faces),
        }
    with open(out, "w") as fh:
        json.dump(res, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
