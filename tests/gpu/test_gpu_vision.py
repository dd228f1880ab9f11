"""The GPU vision stage finds the same faces as the CPU one, through the shared batcher.

Frames are uploaded on the stream of the vision stage (or input maker) that reads them, and a
result made on one stream is waited for before another stream uses it."""
from __future__ import annotations

import threading

import numpy as np
import pytest

from facestream.engines.frame import Frame

pytestmark = pytest.mark.gpu


def _landmark_error(a, b) -> float:
    return float(np.abs(a[:, :2] - b[:, :2]).max())


def test_gpu_vision_matches_cpu(clip_nv12):
    import cupy as cp

    from facestream.engines.vision.cpu import CpuVision
    from facestream.engines.vision.gpu import GpuVision

    cpu, gpu = CpuVision(max_faces=2), GpuVision(max_faces=2)
    agree = total = 0
    for i, (y, uv) in enumerate(clip_nv12[:120]):
        fc = cpu.process(Frame(y=y, uv=uv, pts=i, index=i))
        with gpu.stream:
            frame = Frame(y=cp.asarray(y), uv=cp.asarray(uv), pts=i, index=i)
        fg = gpu.process(frame)
        total += 1
        if len(fc) == len(fg) and all(
            (a.landmarks is None) == (b.landmarks is None)
            and (a.landmarks is None or _landmark_error(a.landmarks, b.landmarks) < 0.05 * (a.box[2] - a.box[0]))
            for a, b in zip(fc, fg, strict=True)
        ):
            agree += 1
    gpu.close()
    # INT8 engines (TensorRT) against FP32 on the CPU: small landmark differences are expected
    assert agree >= 0.9 * total, f"{agree}/{total} frames agree"


def test_sessions_share_batches(clip_nv12):
    import cupy as cp

    from facestream.engines.vision.gpu import GpuVision, shared_models

    models = shared_models()
    visions = [GpuVision(max_faces=1) for _ in range(6)]
    before = {m: (b.stats.calls, b.stats.batches) for m, b in models._batchers.items()}

    def run(v):
        for i, (y, uv) in enumerate(clip_nv12[:40]):
            with v.stream:
                frame = Frame(y=cp.asarray(y), uv=cp.asarray(uv), pts=i, index=i)
            v.process(frame)

    threads = [threading.Thread(target=run, args=(v,)) for v in visions]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    for v in visions:
        v.close()
    mesh = models._batchers["mesh"].stats
    calls = mesh.calls - before.get("mesh", (0, 0))[0]
    batches = mesh.batches - before.get("mesh", (0, 0))[1]
    assert calls > 0 and batches < calls, (calls, batches)


@pytest.mark.tensorrt
def test_tensorrt_engines_cached_by_device(tmp_path):
    from facestream.engines.models.store import ModelStore
    from facestream.engines.models.tensorrt import EngineCache, TrtModel

    store = ModelStore(home=tmp_path)
    cache = EngineCache(store)
    plan = cache.get("full", "int8", 1)
    assert cache.timing_cache_path.exists()
    assert cache.key.folder in str(next((tmp_path / "engines").iterdir()))
    assert cache.get("full", "int8", 1) == plan          # second call: from the cache
    m = TrtModel(plan)
    m.run()
    out = m.fetch()
    assert set(out) >= {"scores", "boxes", "keypoints"}


@pytest.mark.tensorrt
def test_batched_mesh_engine_matches_batch_one(tmp_path, clip_faces):
    import cupy as cp

    from facestream.engines.models.store import ModelStore
    from facestream.engines.models.tensorrt import load_engines
    from facestream.engines.vision import geometry as geo
    from facestream.engines.vision.gpu_resample import GpuInputMaker

    engines = load_engines("mesh", "int8", ModelStore(home=tmp_path))
    if 8 not in engines:
        pytest.skip("onnx is not installed: no batched mesh engine")
    maker = GpuInputMaker(192)
    y, uv, faces = clip_faces[0]
    m = geo.roi_from_landmarks(faces[0].landmarks).matrix(192)
    with maker.stream:
        x = maker.affine(cp.asarray(y), cp.asarray(uv), m)
    maker.stream.synchronize()   # x is read on the engines' streams below
    one, eight = engines[1], engines[8]
    with one.stream:
        one.inputs["input"][...] = x
        one.run()
    a = one.fetch()
    with eight.stream:
        eight.inputs["input"][...] = cp.broadcast_to(x, eight.inputs["input"].shape)
        eight.run()
    b = eight.fetch()
    assert np.abs(a["landmarks"][0] - b["landmarks"][3]).max() < 0.5
