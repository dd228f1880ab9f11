"""MediaPipe 0.10.14 on the benchmark's frames: face detection alone, face mesh alone.

Runs inside the MediaPipe environment (benchmarks/peers/setup_mediapipe.sh), never in the
project's own, since MediaPipe pins protobuf < 5:

    benchmarks/peers/.venv-mediapipe/bin/python benchmarks/peers/mediapipe_peer.py CLIP FRAMES OUT.json

Frames are decoded to RGB before the clock starts, so the numbers are the models and MediaPipe's
graph only. Each measurement uses a fresh graph after a warm-up, so tracking starts at frame 0.
"""
from __future__ import annotations

import json
import sys
import time

import av
import mediapipe as mp


def load_frames(clip: str, n: int) -> list:
    frames = []
    with av.open(clip) as c:
        while len(frames) < n:
            before = len(frames)
            c.seek(0)
            for f in c.decode(video=0):
                frames.append(f.to_ndarray(format="rgb24"))
                if len(frames) >= n:
                    break
            if len(frames) == before:
                break
    return frames


def bench(make, frames, warm: int = 5) -> dict:
    with make() as s:
        for f in frames[:warm]:
            s.process(f)
    with make() as s:
        found = 0
        t = time.perf_counter()
        for f in frames:
            r = s.process(f)
            found += bool(getattr(r, "detections", None) or getattr(r, "multi_face_landmarks", None))
        seconds = time.perf_counter() - t
    return {"frames": len(frames), "seconds": seconds, "fps": len(frames) / seconds,
            "ms_per_frame": seconds * 1000 / len(frames), "frames_with_face": found}


def main(argv: list[str]) -> int:
    clip, n, out = argv[1], int(argv[2]), argv[3]
    max_faces = int(argv[4]) if len(argv) > 4 else 1
    frames = load_frames(clip, n)
    fd, fm = mp.solutions.face_detection, mp.solutions.face_mesh
    res = {
        "mediapipe_version": mp.__version__,
        "max_num_faces": max_faces,
        "face_detection_short": bench(lambda: fd.FaceDetection(model_selection=0, min_detection_confidence=0.5),
                                      frames),
        "face_detection_full": bench(lambda: fd.FaceDetection(model_selection=1, min_detection_confidence=0.5),
                                     frames),
        # the face mesh graph tracks: detection on the first frame and when the face is lost,
        # the mesh on the previous frame's region otherwise (the same scheme as our vision stage)
        "face_mesh": bench(lambda: fm.FaceMesh(static_image_mode=False, max_num_faces=max_faces), frames),
    }
    with open(out, "w") as fh:
        json.dump(res, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
