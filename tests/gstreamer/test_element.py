"""The `facestream` element between a file source of the shared clip and a lossless encoder, against a real
server: every frame out with its timestamp, the faces changed and nothing else, settings changed while
playing, and a clear pipeline error when there is no server."""
from __future__ import annotations

import json
import shlex
import time
from pathlib import Path

import av
import numpy as np
import pytest

from .conftest import face_messages
from support import CLIP, CLIP_FRAMES, free_port, target

APP = Path(__file__).with_name("switch_property.py")
DECODE = f"filesrc location={shlex.quote(str(CLIP))} ! qtdemux ! avdec_h264 ! videoconvert ! videoscale"
MARGIN = 0.3   # of a face box, around it: the effects blend into the skin just outside the detector's box


def encode(path: Path) -> str:
    return f"videoconvert ! avenc_ffv1 ! matroskamux ! filesink location={shlex.quote(str(path))}"


def luma(path: Path) -> list[tuple[float, np.ndarray]]:
    """(time in seconds, Y plane) of every frame of a file."""
    out = []
    with av.open(str(path)) as c:
        for f in c.decode(video=0):
            plane = f.planes[0]
            y = np.frombuffer(memoryview(plane), np.uint8).reshape(-1, plane.line_size)[: f.height, : f.width]
            out.append((float(f.time), y.copy()))
    return out


def face_mask(shape: tuple[int, int], faces: list[dict]) -> np.ndarray:
    mask = np.zeros(shape, bool)
    for face in faces:
        x, y, w, h = face["box"]
        x0, y0 = max(0, int(x - MARGIN * w)), max(0, int(y - MARGIN * h))
        mask[y0 : int(y + h * (1 + MARGIN)) + 1, x0 : int(x + w * (1 + MARGIN)) + 1] = True
    return mask


@pytest.mark.parametrize("caps", ["video/x-raw,format=NV12", "video/x-raw,format=I420,width=321,height=181"],
                         ids=["nv12", "i420-odd-size"])
async def test_every_frame_comes_out_with_its_faces_changed_and_the_rest_not(gst, server, tmp_path, caps):
    ref, out = tmp_path / "ref.mkv", tmp_path / "out.mkv"
    plain = await gst.launch(f"{DECODE} ! {caps} ! {encode(ref)}")
    assert plain.returncode == 0, plain.stderr
    ran = await gst.launch(f"{DECODE} ! {caps} ! facestream server={target(server)} effects=smooth=1.0,eyes=0.6 "
                           f"! {encode(out)}")
    assert ran.returncode == 0, ran.stderr + ran.stdout[-3000:]
    before, after = luma(ref), luma(out)
    messages = face_messages(ran.stdout)
    assert len(before) == len(after) == len(messages) == CLIP_FRAMES
    assert [t for t, _ in after] == [t for t, _ in before], "the timestamps are kept"
    stamps = [int(m["timestamp"]) / 1e9 for m in messages]   # buffer pts: the file's times less the segment start
    assert [s - stamps[0] for s in stamps] == pytest.approx([t - before[0][0] for t, _ in before], abs=1e-3)
    assert {m["status"] for m in messages} == {"processed"}
    changed_in_faces = outside = changed = 0
    with_faces = 0
    for (_, a), (_, b), m in zip(before, after, messages, strict=True):
        faces = json.loads(m["faces"])
        diff = a != b   # lossless on both sides: any difference is the element's
        inside = face_mask(a.shape, faces)
        outside += int(np.count_nonzero(diff & ~inside))
        changed += int(np.count_nonzero(diff))
        if faces:
            with_faces += 1
            changed_in_faces += bool(np.count_nonzero(diff & inside))
    assert with_faces > CLIP_FRAMES // 2
    assert changed_in_faces >= 0.9 * with_faces, "the faces are changed"
    assert outside <= 0.01 * changed, "nothing but the faces is changed"


async def test_effects_changed_while_playing_apply_from_a_later_frame(gst, server, tmp_path):
    ref, out = tmp_path / "ref.mkv", tmp_path / "out.mkv"
    caps = "video/x-raw,format=NV12"
    plain = await gst.launch(f"{DECODE} ! {caps} ! {encode(ref)}")
    assert plain.returncode == 0, plain.stderr
    switch_at = 120
    ran = await gst.run(gst.python, str(APP), f"{DECODE} ! {caps} ! facestream name=fs server={target(server)} "
                        f"! {encode(out)}", str(switch_at), "fs", "effects", "smooth=1.0,eyes=0.8")
    assert ran.returncode == 0, ran.stderr
    messages = [json.loads(line) for line in ran.stdout.splitlines()]
    versions = [m["effects-version"] for m in messages]
    first = versions.index(1)
    assert len(messages) == CLIP_FRAMES and versions == [0] * first + [1] * (CLIP_FRAMES - first)
    assert first >= switch_at - 1, "the new settings start with a frame sent after the change"
    before, after = luma(ref), luma(out)
    assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(before[:first], after[:first], strict=True)), \
        "no effects until the change: the pictures pass unchanged"
    faced = [i for i in range(first, CLIP_FRAMES) if json.loads(messages[i]["faces"])]
    assert len(faced) > 60
    assert sum(not np.array_equal(before[i][1], after[i][1]) for i in faced) >= 0.9 * len(faced)


async def test_a_new_picture_size_mid_stream_gets_a_session_of_its_own(gst, server):
    switch_at = 100
    ran = await gst.run(gst.python, str(APP), f"{DECODE} ! capsfilter name=size caps=video/x-raw,format=NV12,"
                        f"width=640,height=360 ! facestream name=fs server={target(server)} effects=smooth=0.5 "
                        "! fakesink", str(switch_at), "size", "caps", "video/x-raw,format=NV12,width=320,height=180")
    assert ran.returncode == 0, ran.stderr
    messages = [json.loads(line) for line in ran.stdout.splitlines()]
    assert len(messages) == CLIP_FRAMES and {m["status"] for m in messages} == {"processed"}
    right_edges = [[x + w for x, _, w, _ in (f["box"] for f in json.loads(m["faces"]))] for m in messages]
    assert any(edge > 330 for edges in right_edges[: switch_at - 1] for edge in edges), "faces of the 640x360 frames"
    later = [edge for edges in right_edges[switch_at + 1 :] for edge in edges]
    assert later and max(later) <= 330, "faces found in the 320x180 frames"


async def test_no_server_is_a_pipeline_error_that_says_so(gst, tmp_path):
    port = free_port()
    start = time.monotonic()
    ran = await gst.launch(f"{DECODE} ! video/x-raw,format=NV12 ! facestream server=127.0.0.1:{port} ! fakesink",
                           timeout=60)
    assert ran.returncode != 0
    said = ran.stdout + ran.stderr
    assert f"could not start a facestream session at 127.0.0.1:{port}: UNAVAILABLE" in said, said
    assert "is the server running there?" in said
    assert time.monotonic() - start < 30
