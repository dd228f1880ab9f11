"""GPU vision: the CPU vision stage's tracking logic with model inputs cut on the GPU
(gpu_resample) and models run through a process-wide, cross-session batcher per model.

Model engines, in order of preference:
  tensorrt     the INT8 Q/DQ models built into TensorRT engines (models/tensorrt.py), run on
               device buffers, batched across sessions, replayed from CUDA graphs;
  onnxruntime  where TensorRT is not installed: the same ONNX models on ONNX Runtime's CPU
               provider; only the model-input crops (a few hundred KB) cross to the host.
Either way the frame stays on the device; the detector and mesh outputs (a few KB) come back to
the host, where tracking runs.
"""
from __future__ import annotations

import logging
import threading
from typing import Any

import numpy as np

from ..batching import Batcher
from ..frame import Frame
from ..models.specs import SPECS
from ..models.store import ModelStore, default_store
from .cpu import CpuVision
from .face import Face
from .gpu_resample import GpuInputMaker

log = logging.getLogger("facestream.vision.gpu")

ORT_PRECISION = "fp32"     # ONNX Runtime's CPU provider runs FP32 fastest (benchmarks/vision_bench.py)
TRT_PRECISION = "int8"


class _Runner:
    """Gathers a batch of model-input crops (each ready after its CUDA event) into one buffer."""

    stream: Any
    _buf: Any

    def _alloc(self, model: str, max_batch: int) -> None:
        import cupy as cp

        self.model = model
        self.max_batch = max_batch
        spec = SPECS[model]
        with self.stream:
            self._buf = cp.empty((max_batch, 3, spec.size, spec.size), cp.float32)

    def gather(self, items) -> None:
        import cupy as cp

        with self.stream:
            for i, (x, ready) in enumerate(items):
                if ready is not None:
                    self.stream.wait_event(ready)
                cp.copyto(self._buf[i:i + 1], x)


class TrtRunner(_Runner):
    """Batch runner on TensorRT engines: per batch size one engine (the mesh has 1 and 8, the
    detectors 1, run once per row on the same stream with one wait at the end)."""

    def __init__(self, model: str, store: ModelStore) -> None:
        from ..models.tensorrt import load_engines

        import cupy as cp

        self.stream = cp.cuda.Stream(non_blocking=True)
        self.engines = load_engines(model, TRT_PRECISION, store, stream=self.stream)
        self._alloc(model, max(self.engines) if len(self.engines) > 1 else 8)
        self.graphs = {b: e.graph is not None for b, e in self.engines.items()}

    def run(self, n: int) -> dict[str, np.ndarray]:
        import cupy as cp

        fits = [b for b in self.engines if b >= n]
        if fits and min(fits) > 1:
            eng = self.engines[min(fits)]
            with self.stream:
                inp = next(iter(eng.inputs.values()))
                cp.copyto(inp[:n], self._buf[:n])
                eng.run()
            return eng.fetch(rows=n)
        eng = self.engines[1]
        inp = next(iter(eng.inputs.values()))
        rows: list[dict[str, np.ndarray]] = []
        with self.stream:
            for i in range(n):
                cp.copyto(inp, self._buf[i:i + 1])
                eng.run()
                rows.append({k: v.copy() for k, v in eng.outputs.items()})
        host = {k: cp.concatenate([r[k] for r in rows]).get(stream=self.stream) for k in eng.outputs}
        self.stream.synchronize()
        return host


class OrtRunner(_Runner):
    """Batch runner on ONNX Runtime (CPU provider): the crops are copied to the host, once per batch."""

    def __init__(self, model: str, store: ModelStore, threads: int = 1) -> None:
        import cupy as cp

        self.stream = cp.cuda.Stream(non_blocking=True)
        self.session = store.session(model, ORT_PRECISION, threads)
        self.outputs = [o.name for o in self.session.get_outputs()]
        self._alloc(model, 8)
        self._host = cp.cuda.alloc_pinned_memory(self._buf.nbytes)
        self._host_arr = np.frombuffer(self._host, np.float32, self._buf.size).reshape(self._buf.shape)

    def run(self, n: int) -> dict[str, np.ndarray]:
        self._buf[:n].get(stream=self.stream, out=self._host_arr[:n])
        self.stream.synchronize()
        rows = [self.session.run(self.outputs, {"input": self._host_arr[i:i + 1]}) for i in range(n)]
        return {name: np.concatenate([r[j] for r in rows]) for j, name in enumerate(self.outputs)}


class GpuModels:
    """Process-wide model runners and their batchers, created on first use and shared by sessions."""

    def __init__(self, store: ModelStore | None = None, engine: str = "auto") -> None:
        self.store = store or default_store()
        self.engine = engine
        self._batchers: dict[str, Batcher] = {}
        self._lock = threading.Lock()
        self.kind = ""          # "tensorrt" or "onnxruntime", once a model is loaded
        self.detail = ""

    def batcher(self, model: str) -> Batcher:
        with self._lock:
            b = self._batchers.get(model)
            if b is None:
                b = Batcher(self._runner(model))
                self._batchers[model] = b
            return b

    def _runner(self, model: str):
        if self.engine in ("auto", "tensorrt"):
            from ..models.tensorrt import available

            ok, why = available()
            if ok:
                runner = TrtRunner(model, self.store)
                self.kind, self.detail = "tensorrt", f"TensorRT {why}, INT8 engines"
                return runner
            if self.engine == "tensorrt":
                raise RuntimeError(why)
            if self.kind != "onnxruntime":
                log.warning("%s: the GPU backend runs the vision models on ONNX Runtime (CPU), "
                            "with only the model-input crops copied to the host", why)
            self.detail = f"{why}; ONNX Runtime CPU provider, model-input crops copied to the host"
        runner = OrtRunner(model, self.store)
        self.kind = "onnxruntime"
        return runner

    def warm_up(self, models=("full", "mesh")) -> None:
        import cupy as cp

        for m in models:
            b = self.batcher(m)
            size = SPECS[m].size
            b.run(cp.zeros((1, 3, size, size), cp.float32))

    def stats(self) -> dict[str, dict]:
        return {m: vars(b.stats) | {"mean_batch": b.stats.mean_batch} for m, b in self._batchers.items()}


_models: GpuModels | None = None
_models_lock = threading.Lock()


def shared_models(store: ModelStore | None = None) -> GpuModels:
    global _models
    with _models_lock:
        if _models is None:
            _models = GpuModels(store)
        return _models


class _BatchedSession:
    """Looks like an ONNX Runtime session to CpuVision (`run(names, {"input": x})`), but takes a
    CuPy input written on the session's stream and sends it through the shared batcher."""

    def __init__(self, batcher: Batcher, stream) -> None:
        self.batcher = batcher
        self.stream = stream
        batcher.register()
        self._closed = False

    def run(self, names, feeds):
        import cupy as cp

        ready = cp.cuda.Event(disable_timing=True)
        ready.record(self.stream)
        out = self.batcher.run(feeds["input"], ready)
        return [out[n] for n in names]

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.batcher.unregister()


class _SessionStore:
    """Hands CpuVision batched GPU sessions in place of ONNX Runtime ones."""

    def __init__(self, models: GpuModels, stream) -> None:
        self.models, self.stream = models, stream
        self.opened: list[_BatchedSession] = []

    def session(self, model: str, precision: str = "int8", threads: int = 1):
        s = _BatchedSession(self.models.batcher(model), self.stream)
        self.opened.append(s)
        return s


class GpuVision(CpuVision):
    """Implements the Vision protocol on CuPy frames; tracking as in CpuVision."""

    def __init__(self, stream=None, models: GpuModels | None = None, **kwargs) -> None:
        import cupy as cp

        self.stream = stream if stream is not None else cp.cuda.Stream(non_blocking=True)
        self.models = models or shared_models(kwargs.get("store"))
        self._gpu_store = _SessionStore(self.models, self.stream)
        kwargs["store"] = self._gpu_store
        # The session's CUDA stream is current in the calling thread only; on the GPU the
        # concurrency comes from batching the models across sessions.
        kwargs.setdefault("parallel", False)
        super().__init__(**kwargs)
        det = self._det_spec
        self._det_in = GpuInputMaker(det.size, det.input_scale, det.input_offset, stream=self.stream)

    def _new_mesh_input(self) -> GpuInputMaker:
        m = self._mesh_spec
        return GpuInputMaker(m.size, m.input_scale, m.input_offset, stream=self.stream)

    def process(self, frame: Frame) -> list[Face]:
        with self.stream:
            return super().process(frame)

    def close(self) -> None:
        for s in self._gpu_store.opened:
            s.close()
        self._gpu_store.opened = []
        super().close()
