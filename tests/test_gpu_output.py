"""The gpu backend's output: raw NV12 that leaves the device in one copy, MJPEG encoded on the GPU
by nvJPEG that decodes to the picture the CPU backend's MJPEG shows, and the plan saying which.

The GPU tests are marked `gpu` and skip where there is none; the plan's report runs everywhere.
"""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from facestream.engines.codec.base import Codec, EncoderSettings
from facestream.engines.frame import Frame

from support import CLIP, decode_clip, psnr, target

gpu = pytest.mark.gpu


def _rgb(y: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """OpenCV's BT.601 limited-range conversion of NV12 planes, (H, W, 3) RGB."""
    h, w = y.shape
    return cv2.cvtColor(np.vstack([y, uv.reshape(h // 2, w)]), cv2.COLOR_YUV2RGB_NV12)


def _jpeg(data: bytes):
    """The JPEG decoded by FFmpeg: (its frame, its pixels as RGB)."""
    import av

    ctx = av.CodecContext.create("mjpeg", "r")
    (frame,) = ctx.decode(av.Packet(data))
    return frame, frame.to_ndarray(format="rgb24")


@pytest.fixture(scope="module")
def frames() -> list[Frame]:
    """Clip frames with one face, a turned face and three faces."""
    if not CLIP.exists():
        pytest.fail(f"test media not found at {CLIP}; set FACESTREAM_MEDIA")
    return [f for f in decode_clip() if f.index in (0, 100, 250)]


@pytest.fixture
def stream():
    import cupy as cp

    return cp.cuda.Stream(non_blocking=True)


def _on_device(frame: Frame, stream, width: int = 0, height: int = 0) -> Frame:
    """A copy of the frame on the device, in one NV12 buffer as the decoders make them; with a
    width and height, its top-left picture of that size (odd sizes padded as the pipeline pads)."""
    import cupy as cp

    from facestream.engines.codec.gpu import device_nv12

    y, uv = frame.y, frame.uv
    pad = (0, 0)
    if width and height:
        pad = (width & 1, height & 1)
        ew, eh = width + pad[0], height + pad[1]
        y, uv = y[:eh, :ew], uv[: eh // 2, : ew // 2]
        y = np.ascontiguousarray(y)
        y[:, width:] = y[:, width - 1: width]   # the repeated column and row of an odd-sized picture
        y[height:] = y[height - 1]
    with stream:
        dy, duv = device_nv12(cp, y.shape[1], y.shape[0])
    dy.set(np.ascontiguousarray(y), stream=stream)
    duv.set(np.ascontiguousarray(uv), stream=stream)
    return Frame(dy, duv, pts=frame.pts, index=frame.index, pad=pad)


def test_the_plan_says_where_each_output_is_encoded():
    from facestream.engines.codec.gpu_jpeg import nvjpeg_available
    from facestream.engines.gpu_backend import gpu_plan

    encode = gpu_plan().encode
    raw = encode["nv12"]
    assert raw.engine == "pinned-host copy"
    assert "one device-to-host copy per frame" in raw.reason and "nothing done on the CPU" in raw.reason
    ok, why = nvjpeg_available()
    mjpeg = encode["mjpeg"]
    if ok:
        assert mjpeg.engine.startswith("nvjpeg (torchvision") and mjpeg.device.startswith("gpu")
        assert "only the JPEG's bytes are copied to the host" in mjpeg.reason
    else:
        # the host path, saying why nvJPEG is not used
        assert mjpeg.device == "cpu" and "mjpeg" in mjpeg.engine
        assert f"no nvJPEG: {why}" in mjpeg.reason


@gpu
def test_raw_output_is_the_frame_copied_once(frames, stream):
    from facestream.engines.codec.gpu import make_encoder, nv12_span

    f = frames[0]
    h, w = f.y.shape
    dev = _on_device(f, stream)
    assert nv12_span(dev) is not None, "the planes are not one device buffer"
    enc = make_encoder(EncoderSettings(Codec.RAW_NV12, w, h), stream)
    (packet,) = enc.encode(dev)
    assert packet.pts == f.pts and packet.keyframe
    assert packet.data == f.y.tobytes() + f.uv.tobytes()
    # the next frame reuses the pinned buffer: the first packet's bytes are its own
    (second,) = enc.encode(_on_device(frames[1], stream))
    assert second.data == frames[1].y.tobytes() + frames[1].uv.tobytes()
    assert packet.data == f.y.tobytes() + f.uv.tobytes()


@gpu
def test_raw_output_of_separate_planes_and_of_odd_sizes(frames, stream):
    import cupy as cp

    from facestream.engines.codec.base import nv12_bytes
    from facestream.engines.codec.gpu import make_encoder, nv12_span

    f = frames[1]
    h, w = f.y.shape
    with stream:
        apart = Frame(cp.asarray(f.y), cp.asarray(f.uv), pts=7)   # two allocations: one copy per plane
    assert nv12_span(apart) is None
    (packet,) = make_encoder(EncoderSettings(Codec.RAW_NV12, w, h), stream).encode(apart)
    assert packet.data == f.y.tobytes() + f.uv.tobytes() and packet.pts == 7
    odd = _on_device(f, stream, 301, 171)
    (packet,) = make_encoder(EncoderSettings(Codec.RAW_NV12, 301, 171), stream).encode(odd)
    want = nv12_bytes(cp.asnumpy(odd.y, stream=stream), cp.asnumpy(odd.uv, stream=stream), 301, 171)
    assert len(packet.data) == 301 * 171 + 2 * 151 * 86 and packet.data == want


@gpu
def test_the_rgb_kernel_on_the_gpu_is_opencvs_conversion(frames, stream):
    import cupy as cp

    from facestream.engines.codec.gpu_jpeg import Nv12ToRgb

    convert = Nv12ToRgb(stream)
    for f in frames:
        dev = _on_device(f, stream)
        h, w = f.y.shape
        got = cp.asnumpy(convert(dev.y, dev.uv, w, h), stream=stream)
        assert np.array_equal(got.transpose(1, 2, 0), _rgb(f.y, f.uv)), f"frame {f.index}"


def _nvjpeg():
    from facestream.engines.codec.gpu_jpeg import nvjpeg_available

    ok, why = nvjpeg_available()
    if not ok:
        pytest.skip(f"nvJPEG is not available here: {why}")


@gpu
def test_gpu_mjpeg_shows_the_cpu_backends_picture(frames, stream):
    """Full-range JFIF like the CPU backend's (4:4:4 chroma there 4:2:0), decoding to the same
    picture: both within JPEG's error of the frame, and of each other."""
    _nvjpeg()
    from facestream.engines.codec import cpu as cpu_codec
    from facestream.engines.codec.gpu import make_encoder
    from facestream.engines.codec.gpu_jpeg import NvJpegEncoder

    for f in frames:
        h, w = f.y.shape
        settings = EncoderSettings(Codec.MJPEG, w, h)
        enc = make_encoder(settings, stream)
        assert isinstance(enc, NvJpegEncoder)
        (packet,) = enc.encode(_on_device(f, stream))
        (cpu_packet,) = cpu_codec.make_encoder(settings).encode(f)
        gpu_frame, gpu_rgb = _jpeg(packet.data)
        cpu_frame, cpu_rgb = _jpeg(cpu_packet.data)
        assert packet.keyframe and packet.pts == f.pts and packet.data[:2] == b"\xff\xd8"
        assert (gpu_frame.width, gpu_frame.height) == (w, h)
        assert gpu_frame.format.name == "yuvj444p" and cpu_frame.format.name == "yuvj420p"
        want = _rgb(f.y, f.uv)
        assert psnr(gpu_rgb, want) >= 35, f"frame {f.index}: GPU JPEG {psnr(gpu_rgb, want):.1f} dB"
        assert psnr(gpu_rgb, cpu_rgb) >= 32, f"frame {f.index}: GPU vs CPU JPEG {psnr(gpu_rgb, cpu_rgb):.1f} dB"


@gpu
def test_gpu_mjpeg_of_an_odd_sized_picture(frames, stream):
    _nvjpeg()
    from facestream.engines.codec.gpu import make_encoder

    f = frames[0]
    odd = _on_device(f, stream, 301, 171)
    (packet,) = make_encoder(EncoderSettings(Codec.MJPEG, 301, 171, quality=95), stream).encode(odd)
    frame, rgb = _jpeg(packet.data)
    assert (frame.width, frame.height) == (301, 171)
    want = _rgb(f.y[:172, :302], f.uv[:86, :151])[:171, :301]
    assert psnr(rgb, want) >= 35


@gpu
async def test_server_sends_raw_and_gpu_mjpeg(server_factory, media):
    from facestream.client import FaceStreamClient
    from facestream.engines.codec.gpu_jpeg import nvjpeg_available
    from facestream.proto import pb

    srv = await server_factory(backend="gpu")
    got: dict[int, list[bytes]] = {pb.CODEC_RAW_NV12: [], pb.CODEC_MJPEG: []}
    engines = {}
    async with FaceStreamClient(target(srv)) as client:
        for codec, out in got.items():
            result = await client.process(str(CLIP), output_codec=codec, effects={"smooth": 0.6, "lips": 0.4},
                                          backend=pb.BACKEND_GPU, on_frame=lambda fr, out=out: out.append(
                                              fr.packet.data))
            engines[codec] = next(s for s in result.started.stages if s.stage == "encode")
            assert result.frames == result.stats.frames_out == len(out) > 200
    assert all(len(d) == 640 * 360 * 3 // 2 for d in got[pb.CODEC_RAW_NV12])
    assert engines[pb.CODEC_RAW_NV12].engine == "pinned-host copy"
    frame, _ = _jpeg(got[pb.CODEC_MJPEG][0])
    assert (frame.width, frame.height) == (640, 360)
    if nvjpeg_available()[0]:
        assert engines[pb.CODEC_MJPEG].engine.startswith("nvjpeg")
        assert engines[pb.CODEC_MJPEG].device.startswith("gpu")
