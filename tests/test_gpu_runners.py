"""The GPU vision's model runners: which one a host gets and why, and the PyTorch conversion of the
models against ONNX Runtime on real faces.

The selection tests run everywhere, with the runtimes' availability probes patched. The PyTorch
tests run wherever torch and onnx2torch import (on the CPU, and on CUDA where there is a GPU: the
`gpu` variants); elsewhere they skip.
"""
from __future__ import annotations

import itertools

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from facestream.engines.models import build as B
from facestream.engines.models import tensorrt, torch_models
from facestream.engines.models.batches import model_batches, with_batch
from facestream.engines.models.postprocess import iou
from facestream.engines.models.rewrite import explicit_pads
from facestream.engines.models.specs import SPECS
from facestream.engines.models.store import ModelStore
from facestream.engines.vision import geometry as geo
from facestream.engines.vision import gpu, gpu_runners
from facestream.engines.vision.resample import InputMaker

RUNTIMES = ("tensorrt", "torch", "onnxruntime-cuda")       # the GPU runtimes, in the order auto tries them
CLASSES = {"tensorrt": gpu_runners.TrtRunner, "torch": gpu_runners.TorchRunner,
           "onnxruntime-cuda": gpu_runners.OrtCudaRunner, "onnxruntime": gpu_runners.HostOrtRunner}
PHOTOS = ["two_people.jpg", "kit_with_rose.jpg", "obama-720p.jpg", "johnsnow_test1.jpg"]
REL = 1e-4     # FP32 parity, as tests/models/test_parity.py holds the FP32 models to TFLite's


# ------------------------------------------------------------------------------ runner selection

def _availability(monkeypatch, present: dict[str, bool]) -> None:
    """Patches the runtimes' own probes: TensorRT's import, PyTorch's CUDA check, ONNX Runtime's providers."""
    trt = (True, "10.13.0") if present["tensorrt"] else (False, "TensorRT is not installed (tensorrt)")
    torch = (True, "PyTorch 2.11 CUDA 13.0") if present["torch"] else (False, "PyTorch 2.11 sees no CUDA device")
    providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if present["onnxruntime-cuda"] \
        else ["CPUExecutionProvider"]
    monkeypatch.setattr(tensorrt, "available", lambda: trt)
    monkeypatch.setattr(torch_models, "available", lambda: torch)
    monkeypatch.setattr(ort, "get_available_providers", lambda: providers)


def _no_device(monkeypatch, failing: tuple[str, ...] = ()) -> list[str]:
    """Runner constructors that load nothing (no GPU here), those named in `failing` raising as a
    runtime that imports but cannot run would; returns the names made, in order."""
    made: list[str] = []
    for name, cls in CLASSES.items():
        def init(self, model, store, name=name):
            made.append(name)
            if name in failing:
                raise RuntimeError("CUDA error: no kernel image is available for execution on the device")
            self.spec, self.mode, self.batch_sizes = SPECS[model], "test", (1,)
        monkeypatch.setattr(cls, "__init__", init)
    return made


@pytest.mark.parametrize("present", list(itertools.product((False, True), repeat=3)),
                         ids=lambda p: "+".join(n for n, ok in zip(RUNTIMES, p, strict=True) if ok) or "none")
def test_auto_takes_the_first_available_runtime(monkeypatch, present):
    available = dict(zip(RUNTIMES, present, strict=True))
    _availability(monkeypatch, available)
    made = _no_device(monkeypatch)
    expected = next((n for n in RUNTIMES if available[n]), "onnxruntime")
    passed_over = [CLASSES[n].available()[1] for n in RUNTIMES[:RUNTIMES.index(expected) if expected in RUNTIMES
                                                                 else len(RUNTIMES)]]

    placement = gpu.vision_placement("gpu:0")
    assert placement.stage == "vision"
    assert placement.device == ("cpu" if expected == "onnxruntime" else "gpu:0")
    assert placement.engine == {"tensorrt": "tensorrt 10.13.0 (int8 engines, cuda graphs)",
                                "torch": "pytorch 2.11 cuda 13.0 (fp32, cuda graphs)",
                                "onnxruntime-cuda": f"onnxruntime {ort.__version__} cuda (fp32, io binding)",
                                "onnxruntime": "onnxruntime (fp32 models), inputs cut on the GPU"}[expected]
    assert placement.reason.split("; ")[:len(passed_over)] == passed_over

    models = gpu.GpuModels(ModelStore())
    runner = models.make_runner("mesh")
    assert type(runner) is CLASSES[expected] and made == [expected]
    assert models.kind == expected
    assert all(why in models.detail for why in passed_over)


def test_a_runtime_that_fails_to_load_passes_to_the_next(monkeypatch):
    _availability(monkeypatch, {"tensorrt": False, "torch": True, "onnxruntime-cuda": True})
    made = _no_device(monkeypatch, failing=("torch",))
    models = gpu.GpuModels(ModelStore())
    runner = models.make_runner("full")
    assert made == ["torch", "onnxruntime-cuda"] and type(runner) is gpu_runners.OrtCudaRunner
    assert "PyTorch 2.11 CUDA 13.0 failed to load the full model (RuntimeError: CUDA error" in models.detail


def test_a_named_runtime_is_not_replaced(monkeypatch):
    _availability(monkeypatch, {"tensorrt": False, "torch": True, "onnxruntime-cuda": True})
    _no_device(monkeypatch, failing=("torch",))
    with pytest.raises(RuntimeError, match="no kernel image"):
        gpu.GpuModels(ModelStore(), engine="torch").make_runner("mesh")
    with pytest.raises(RuntimeError, match="TensorRT is not installed"):
        gpu.GpuModels(ModelStore(), engine="tensorrt").make_runner("mesh")
    with pytest.raises(ValueError, match="engine must be 'auto' or one of"):
        gpu.GpuModels(ModelStore(), engine="cuda")


def test_the_backend_plan_reports_the_runner_auto_picks():
    """On this host, unpatched: gpu_plan's vision placement is vision_placement's."""
    from facestream.engines.backend import probe_gpu
    from facestream.engines.gpu_backend import gpu_plan

    probe = probe_gpu()
    dev = probe.device.split(" ")[0] if probe.device else "gpu:0"
    assert gpu_plan().vision == gpu.vision_placement(dev)
    name = next(n for n, cls, _ in gpu.candidates() if cls is not None)
    assert gpu_plan().vision.device == (dev if CLASSES[name].on_device else "cpu")


# ------------------------------------------------------------------------------ conversion

@pytest.fixture(scope="module")
def frames(clip_frames, photo):
    return [(f.y, f.uv) for f in clip_frames[::50]] + [(p.y, p.uv) for p in map(photo, PHOTOS)]


@pytest.fixture(scope="module")
def detector_inputs(frames) -> dict[str, list[np.ndarray]]:
    """Letterboxed frames (and their mirrors) as each detector takes them."""
    return {m: B.detector_inputs(SPECS[m], frames) for m in ("short", "full")}


@pytest.fixture(scope="module")
def mesh_crops(frames) -> list[np.ndarray]:
    """Face crops as the runtime cuts them, from the FP32 detector's detections."""
    det, spec = ModelStore().inference("full", "fp32"), SPECS["full"]
    dim, mim = InputMaker(spec.size, spec.input_scale, spec.input_offset), InputMaker(192)
    crops = []
    for y, uv in frames:
        x, (s, px, py) = dim.letterbox(y, uv)
        sc, bx, kp = det.run(["scores", "boxes", "keypoints"], {"input": x})
        for i in np.nonzero(sc[0] > 0.6)[0]:
            roi = geo.roi_from_detection((bx[0, i] * spec.size - [px, py, px, py]) / s,
                                         (kp[0, i] * spec.size - [px, py]) / s)
            crops.append(mim.affine(y, uv, roi.matrix(192)).copy())
    assert len(crops) >= 8
    return crops


def _rel(a, b) -> float:
    return float(np.abs(np.asarray(a) - b).max() / np.abs(b).max())


def _same_detections(scores, boxes, ref_scores, ref_boxes) -> None:
    """The same faces kept by the in-graph suppression, with the same scores and boxes."""
    kept, ref_kept = scores > 0, ref_scores > 0
    assert kept.sum() == ref_kept.sum()
    assert np.abs(np.sort(scores[kept]) - np.sort(ref_scores[ref_kept])).max(initial=0) <= REL
    for b in ref_boxes[ref_kept]:
        assert max(iou(b, o) for o in boxes[kept]) > 0.999


def test_explicit_pads_are_exact():
    """The auto_pad rewrite the conversion applies gives ONNX Runtime's results bit for bit."""
    for model in SPECS:
        original = onnx.load_from_string(ModelStore().read(model, "fp32"))
        rewritten = onnx.load_from_string(original.SerializeToString())
        count = explicit_pads(rewritten)
        assert count == sum(1 for n in original.graph.node for a in n.attribute
                            if a.name == "auto_pad" and a.s != b"NOTSET")
        assert not any(a.name == "auto_pad" for n in rewritten.graph.node for a in n.attribute)
        x = np.random.default_rng(1).uniform(-1, 1, (1, 3, SPECS[model].size, SPECS[model].size)).astype(np.float32)
        a, b = (ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"input": x})
                for m in (original, rewritten))
        assert all(np.array_equal(p, q) for p, q in zip(a, b, strict=True))


def _torch():
    torch = pytest.importorskip("torch", reason="PyTorch is not installed")
    pytest.importorskip("onnx2torch", reason=f"onnx2torch is not installed ({torch_models.INSTALL})")
    return torch


def _device(name: str):
    torch = _torch()
    if name == "cuda" and not torch.cuda.is_available():
        pytest.skip("PyTorch sees no CUDA device")
    return name


DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)]


@pytest.mark.parametrize("model", ["short", "full"])
def test_converted_detector_matches_onnxruntime(model, detector_inputs):
    """Every output of the converted graph, raw regressors and scores included, on real faces."""
    torch = _torch()
    onnx_bytes = ModelStore().read(model, "fp32")
    module, names = torch_models.to_torch(onnx_bytes)
    ref = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    found = 0
    for x in detector_inputs[model][::2]:
        expected = dict(zip(names, ref.run(names, {"input": x}), strict=True))
        with torch.no_grad():
            got = {k: v.numpy() for k, v in zip(names, module(torch.from_numpy(x)), strict=True)}
        assert _rel(got["raw_regressors"], expected["raw_regressors"]) <= REL
        assert _rel(got["raw_scores"], expected["raw_scores"]) <= REL
        _same_detections(got["scores"][0], got["boxes"][0], expected["scores"][0], expected["boxes"][0])
        found += int((expected["scores"][0] > 0).sum())
    assert found >= 5


@pytest.mark.parametrize("device", DEVICES)
def test_torch_models_match_onnxruntime_in_padded_batches(device, mesh_crops, detector_inputs):
    """TorchModel as the torch runner uses it: five face crops in one mesh batch of 8 (padded),
    three detector inputs one image after the other; on CUDA replayed from CUDA graphs."""
    torch = _torch()
    _device(device)
    store = ModelStore()
    for model, inputs in (("mesh", mesh_crops[:5]), ("short", detector_inputs["short"][:3]),
                          ("full", detector_inputs["full"][:3])):
        tm = torch_models.load(model, store, device)
        assert tm.sizes == ((1, 8) if model == "mesh" else (1,))
        assert tm.mode == ("cuda graphs" if device == "cuda" else "eager")
        out = tm.new_outputs(8, pin=device == "cuda")
        x = torch.from_numpy(np.concatenate(inputs)).to(device)
        if device == "cuda":
            torch.cuda.synchronize()        # x was copied on the default stream, the model reads it on its own
        tm.run(x, out)
        if device == "cuda":
            tm.stream.synchronize()
        ref = store.inference(model, "fp32")
        for i, x in enumerate(inputs):
            expected = dict(zip(tm.names, ref.run(list(tm.names), {"input": x}), strict=True))
            got = {k: v[i:i + 1].numpy() for k, v in out.items()}
            if model == "mesh":
                assert _rel(got["landmarks"], expected["landmarks"]) <= REL
                assert abs(float(got["face_score"][0, 0]) - float(expected["face_score"][0, 0])) <= REL
            else:
                _same_detections(got["scores"][0], got["boxes"][0], expected["scores"][0], expected["boxes"][0])


def test_converted_models_read_nothing_back_from_the_device():
    """On the meta device (shapes, no data) a forward fails wherever it would read a device
    tensor on the host: there are no such reads, so CUDA graph capture is possible and a call
    never waits for the GPU."""
    torch = _torch()
    store = ModelStore()
    for model in SPECS:
        for batch in model_batches(model):
            module, names = torch_models.to_torch(with_batch(store.read(model, "fp32"), batch))
            torch_models.to_device(module, "meta")
            size = SPECS[model].size
            with torch.no_grad():
                out = module(torch.empty((batch, 3, size, size), device="meta"))
            assert [o.shape[0] for o in out] == [batch] * len(names)


@pytest.mark.gpu
def test_torch_runner_reads_cupy_batches_on_its_stream(mesh_crops):
    """The runner as the batcher drives it: a CuPy batch written on the runner's stream, handed to
    PyTorch by DLPack, outputs back as host arrays with the batch's rows."""
    _device("cuda")
    import cupy as cp

    store = ModelStore()
    runner = gpu_runners.TorchRunner("mesh", store)
    assert runner.batch_sizes == (1, 8) and runner.mode == "cuda graphs"
    ref = store.inference("mesh", "fp32")
    for rows in (1, 3, 8):
        with runner.stream:
            batch = cp.asarray(np.concatenate(mesh_crops[:rows]))
        out = runner.run(batch)
        assert out["landmarks"].shape == (rows, 468, 3)
        for i in range(rows):
            expected = ref.run(["landmarks"], {"input": mesh_crops[i]})[0]
            assert _rel(out["landmarks"][i:i + 1], expected) <= REL
