"""The fake camera's video, and what a viewer would notice in a picture that came back through
WebRTC: which source frame it shows, and how far it is from that frame and from the server's own
output, in and around the faces."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av
import cv2
import numpy as np

from facestream.client import FaceStreamClient
from facestream.client.live import raw_config
from facestream.client.sink import nv12_to_bgr
from facestream.engines.frame import Frame
from facestream.proto import pb

from support import CLIP

# One scene of the clip, a face the server finds and beautifies in (nearly) every frame.
CAMERA_FRAMES = range(85, 211)


def write_y4m(path: Path, frames: range) -> None:
    """The clip's frames `frames` as a YUV4MPEG2 file, which Chromium's fake camera plays in a loop."""
    with av.open(str(CLIP)) as container, path.open("wb") as out:
        stream = container.streams.video[0]
        rate = stream.average_rate
        for i, frame in enumerate(container.decode(stream)):
            if i not in frames:
                continue
            yuv = frame.reformat(format="yuv420p")
            if out.tell() == 0:
                out.write(f"YUV4MPEG2 W{yuv.width} H{yuv.height} F{rate.numerator}:{rate.denominator} "
                          "Ip A1:1 C420jpeg\n".encode())
            out.write(b"FRAME\n")
            sizes = [(yuv.width, yuv.height)] + [((yuv.width + 1) // 2, (yuv.height + 1) // 2)] * 2
            for plane, (w, h) in zip(yuv.planes, sizes, strict=True):
                out.write(np.frombuffer(memoryview(plane), np.uint8).reshape(-1, plane.line_size)[:h, :w].tobytes())


def bgr(frame: Frame) -> np.ndarray:
    h, w = frame.y.shape
    return nv12_to_bgr(frame.y.tobytes() + frame.uv.tobytes(), w, h)


def best_match(picture: np.ndarray, sources: list[np.ndarray]) -> int:
    """The index of the source picture closest to `picture` (compared at quarter size)."""
    small = cv2.resize(picture, None, fx=0.25, fy=0.25, interpolation=cv2.INTER_AREA).astype(np.float32)
    errors = [float(np.mean((cv2.resize(s, None, fx=0.25, fy=0.25, interpolation=cv2.INTER_AREA) - small) ** 2))
              for s in sources]
    return int(np.argmin(errors))


async def server_output(client: FaceStreamClient, frame: Frame, effects: dict[str, float]
                        ) -> tuple[np.ndarray, list[pb.Face]]:
    """The frame processed by the server on its own: the picture and its faces."""
    h, w = frame.y.shape
    async with client.live(raw_config(w, h, effects=effects, realtime=False)) as live:
        await live.send(frame.y.tobytes() + frame.uv.tobytes(), pts=0)
        await live.end()
        packet = [r.packet async for r in live.results()][0]
    return nv12_to_bgr(packet.data, w, h), list(packet.faces)


def face_mask(shape: tuple[int, ...], faces: list[pb.Face], grow: float = 0.2) -> np.ndarray:
    """The faces' boxes, grown by `grow` of their size on every side (effects reach the chin and hair)."""
    mask = np.zeros(shape[:2], bool)
    for f in faces:
        dx, dy = f.box.width * grow, f.box.height * grow
        x0, y0 = max(0, int(f.box.x - dx)), max(0, int(f.box.y - dy))
        mask[y0 : int(f.box.y + f.box.height + dy) + 1, x0 : int(f.box.x + f.box.width + dx) + 1] = True
    return mask


@dataclass
class Differences:
    """Mean absolute differences in code values (BGR)."""

    face_from_source: float     # the beautified face against the original face
    face_from_server: float     # ... against the server's own output of the same frame
    rest_from_source: float     # everything outside the faces against the original: codec noise

    def __str__(self) -> str:
        return (f"face vs source {self.face_from_source:.1f}, face vs server output {self.face_from_server:.1f}, "
                f"rest vs source {self.rest_from_source:.1f}")


def differences(picture: np.ndarray, source: np.ndarray, server: np.ndarray, mask: np.ndarray) -> Differences:
    def mad(a: np.ndarray, b: np.ndarray, where: np.ndarray) -> float:
        return float(np.mean(np.abs(a.astype(np.int16) - b.astype(np.int16))[where]))

    return Differences(mad(picture, source, mask), mad(picture, server, mask), mad(picture, source, ~mask))
