"""What a new user tries first, through the real client and a real `facestream serve`: photos,
odd frame sizes, still-image output, pictures larger than the server accepts, outputs that
cannot be written."""
from __future__ import annotations

import json
import subprocess
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from facestream.client.health import wait_serving

from support import BIN, CLIP, MEDIA, decode_file, free_port, psnr

PHOTO = MEDIA / "two_people.jpg"          # 1126x661: odd height
BIG_PHOTO = MEDIA / "obama-720p.jpg"      # 1280x720


@pytest.fixture(scope="module")
def served():
    """A CPU server that accepts at most 1200x700 pictures."""
    port = free_port()
    proc = subprocess.Popen(
        [str(BIN / "facestream"), "serve", "--port", str(port), "--backend", "cpu",
         "--max-width", "1200", "--max-height", "700"],
        env={"PATH": str(BIN)}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    address = f"127.0.0.1:{port}"
    try:
        wait_serving(address)
        yield address
    finally:
        proc.kill()
        proc.wait()


def client(address: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "facestream-client"), "--server", address, "process", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout)


def face_boxes(path: Path) -> list[tuple[int, ...]]:
    frames = [json.loads(line) for line in path.read_text().splitlines()]
    return [tuple(int(v) for v in f["box"]) for rec in frames for f in rec["faces"]]


@pytest.mark.parametrize("suffix", [".jpg", ".png"])
def test_a_photo_in_gives_a_photo_out(served, tmp_path, suffix):
    out, plain, faces = tmp_path / f"out{suffix}", tmp_path / f"plain{suffix}", tmp_path / "faces.jsonl"
    result = client(served, PHOTO, "-o", out, "--effects", "smooth=1,whiten=0.5", "--faces-json", faces, "-q")
    assert result.returncode == 0, result.stderr
    assert client(served, PHOTO, "-o", plain, "-q").returncode == 0
    src, got, ref = cv2.imread(str(PHOTO)), cv2.imread(str(out)), cv2.imread(str(plain))
    assert got.shape == ref.shape == src.shape == (661, 1126, 3)
    assert psnr(ref, src) > 30, "without effects the photo comes back as it went in"
    boxes = face_boxes(faces)
    assert len(boxes) == 2, "both faces of two_people.jpg are found"
    changed = np.abs(got.astype(int) - ref.astype(int)).max(axis=2) > 12
    inside = np.zeros_like(changed)
    for x, y, w, h in boxes:
        inside[max(0, y - h // 4):y + h + h // 4, max(0, x - w // 4):x + w + w // 4] = True
    assert changed[inside].mean() > 0.05, "the effects changed the faces"
    assert changed[~inside].mean() < 0.01, "the rest of the picture is as it was"


def test_an_odd_sized_photo_into_h264_is_padded_and_says_so(served, tmp_path):
    out = tmp_path / "out.mp4"
    result = client(served, PHOTO, "-o", out, "-q")
    assert result.returncode == 0, result.stderr
    frames = decode_file(out)
    assert len(frames) == 1
    assert (frames[0].width, frames[0].height) == (1126, 662)
    assert "padded" in result.stderr and "1126x661" in result.stderr


@pytest.fixture(scope="module")
def odd_clip(tmp_path_factory) -> Path:
    """The first 30 frames of the shared clip scaled to 853x479 (odd both ways), MJPEG in Matroska."""
    path = tmp_path_factory.mktemp("odd") / "odd.mkv"
    with av.open(str(CLIP)) as src, av.open(str(path), "w") as dst:
        stream = dst.add_stream("mjpeg", rate=Fraction(30000, 1001))
        stream.width, stream.height, stream.pix_fmt = 853, 479, "yuvj420p"
        stream.time_base = Fraction(1001, 30000)
        for i, frame in enumerate(src.decode(video=0)):
            if i == 30:
                break
            scaled = frame.reformat(width=853, height=479, format="yuvj420p",
                                    src_color_range="MPEG", dst_color_range="JPEG")
            scaled.pts, scaled.time_base = i, Fraction(1001, 30000)
            dst.mux(stream.encode(scaled))
        dst.mux(stream.encode(None))
    return path


@pytest.mark.parametrize("codec,suffix,size", [
    ("h264", ".mp4", (854, 480)),      # H.264 needs even sizes: padded, and said so
    ("mjpeg", ".mkv", (853, 479)),
    ("nv12", ".mkv", (853, 479)),
])
def test_odd_sized_video_works_end_to_end(served, tmp_path, odd_clip, codec, suffix, size):
    out = tmp_path / f"out{suffix}"
    result = client(served, odd_clip, "-o", out, "--codec", codec, "--effects", "smooth=0.6", "-q")
    assert result.returncode == 0, result.stderr
    frames = decode_file(out)
    assert len(frames) == 30
    assert {(f.width, f.height) for f in frames} == {size}
    ref = decode_file(odd_clip)
    got = frames[10].to_ndarray(format="rgb24")[:479, :853]
    assert psnr(got, ref[10].to_ndarray(format="rgb24")) > 25


def test_a_photo_larger_than_the_limits_is_refused_unless_fitted(served, tmp_path):
    out = tmp_path / "out.jpg"
    refused = client(served, BIG_PHOTO, "-o", out, timeout=60)
    assert refused.returncode == 2
    assert "1280x720" in refused.stderr and "1200x700" in refused.stderr and "--fit" in refused.stderr
    assert not out.exists()
    fitted = client(served, BIG_PHOTO, "-o", out, "--fit", "--effects", "eyes=0.5", "-q")
    assert fitted.returncode == 0, fitted.stderr
    assert "scaled 1280x720 down to 1200x675" in fitted.stderr
    assert cv2.imread(str(out)).shape == (675, 1200, 3)


@pytest.mark.parametrize("args,message", [
    (["-o", "{tmp}/out.xyz"], "unknown output type .xyz"),
    (["-o", "{tmp}/out.mp4", "--codec", "nv12"], "cannot hold RAW_NV12"),
    (["-o", "{tmp}/missing/out.mp4"], "does not exist"),
])
def test_an_output_that_cannot_be_written_is_refused_before_the_session(served, tmp_path, args, message):
    result = client(served, CLIP, *[a.format(tmp=tmp_path) for a in args], timeout=60)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert not list(tmp_path.glob("out.*"))


def test_a_video_into_a_still_image_is_refused(served, tmp_path):
    result = client(served, CLIP, "-o", tmp_path / "out.jpg", timeout=60)
    assert result.returncode == 2 and "is a still image but the input is a video" in result.stderr
