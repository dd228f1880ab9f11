"""Paths of the test media and helpers shared by the test modules (fixtures live in conftest.py)."""
from __future__ import annotations

import asyncio
import os
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import grpc
import numpy as np

from facestream.client.failover import _CORE_WRITE_FAILURE
from facestream.engines.frame import Frame
from facestream.engines.vision.face import Face
from facestream.engines.vision.resample import bgr_to_nv12
from facestream.proto import pb, rpc

if TYPE_CHECKING:  # PyAV is imported where a helper decodes: the GPU tests collect without it
    import av

REPO = Path(__file__).resolve().parents[1]
MEDIA = Path(os.environ.get("FACESTREAM_MEDIA", REPO.parent / "shared" / "media"))
CLIP = MEDIA / "short_hamilton_clip.mp4"
CLIP_FRAMES = 275
BIN = Path(sys.executable).parent


def target(srv) -> str:
    return f"127.0.0.1:{srv.port}"


def decode_file(path: str | Path) -> list[av.VideoFrame]:
    import av

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


@dataclass
class Picture:
    """A test picture in NV12 with the faces the CPU vision found in it."""

    name: str
    y: np.ndarray
    uv: np.ndarray
    faces: list[Face]

    def frame(self) -> Frame:
        """A fresh frame of the picture, for a stage to modify in place."""
        return Frame(self.y.copy(), self.uv.copy(), pts=0)


def photo_frame(name: str, index: int = 0) -> Frame:
    """A shared photo as an NV12 frame (cropped to even size)."""
    y, uv = bgr_to_nv12(cv2.imread(str(MEDIA / name)))
    return Frame(y=y, uv=uv, pts=index, index=index)


def decode_clip(path: Path = CLIP) -> list[Frame]:
    """Every frame of a clip as NV12 frames numbered from 0."""
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


class Outcome:
    """How one stream ended, as the client saw it."""

    def __init__(self, code: grpc.StatusCode, details: str, responses: list) -> None:
        self.code, self.details, self.responses = code, details, responses

    @property
    def packets(self) -> list[pb.OutputPacket]:
        return [r.packet for r in self.responses if r.WhichOneof("msg") == "packet"]

    @property
    def stats(self) -> pb.SessionStats | None:
        return next((r.stats for r in self.responses if r.WhichOneof("msg") == "stats"), None)

    def __repr__(self) -> str:
        return f"Outcome({self.code.name}, {self.details!r}, {len(self.responses)} responses)"


async def stream(channel: grpc.aio.Channel, requests, metadata=(), timeout: float = 60.0) -> Outcome:
    """Sends `requests` on one Process stream and reads until it ends; stops writing once told
    of an error in band, the way a real client behaves."""
    call = rpc.FaceStreamStub(channel).Process(metadata=metadata, timeout=timeout)
    stop = asyncio.Event()

    async def write():
        try:
            for r in requests:
                if stop.is_set():
                    break
                await call.write(r)
            await call.done_writing()
        except (grpc.aio.AioRpcError, asyncio.InvalidStateError):
            pass

    writer = asyncio.create_task(write())
    responses = []
    try:
        while (r := await call.read()) is not grpc.aio.EOF:
            responses.append(r)
            if r.WhichOneof("msg") == "error":
                stop.set()
                await writer
                await call.done_writing()
    except (grpc.aio.AioRpcError, asyncio.InvalidStateError):
        pass
    await asyncio.gather(writer, return_exceptions=True)
    code, details = await call.code(), await call.details() or ""
    error = next((r.error for r in responses if r.WhichOneof("msg") == "error"), None)
    if error is not None and code == grpc.StatusCode.INTERNAL and details == _CORE_WRITE_FAILURE:
        # a write that met the call the server had just ended: grpc.aio replaces the status with this
        # (grpc/grpc#36066); the server's own, announced in band first, is what the client was told
        code = next(c for c in grpc.StatusCode if c.value[0] == error.code)
        details = error.message
    return Outcome(code, details, responses)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
