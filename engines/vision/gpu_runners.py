"""Device model runners for the GPU vision: one model on a batch of model inputs on the device.

Each runner class is picked by name from gpu.RUNNERS and has `available() -> (ok, detail)` (what
it runs on, or why it cannot run here), a `(model, store)` constructor, and `spec`, `stream`,
`max_batch` and `run(batch)`: batch is an (n, 3, S, S) CuPy array written on `stream`, the
outputs named by `spec.outputs` come back as host NumPy arrays with n rows. CuPy, TensorRT and
ONNX Runtime are imported only when a runner is made.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..models.specs import SPECS
from ..models.store import ModelStore
from .ort_runner import OrtRunner


class TrtRunner:
    """TensorRT engines of the INT8 Q/DQ model, one per batch size (the mesh has 1 and 8, the
    detectors 1: a batch larger than every engine runs row by row on the same stream, with one
    wait at the end), replayed from CUDA graphs where TensorRT allows capture."""

    precision = "int8"

    @staticmethod
    def available() -> tuple[bool, str]:
        from ..models.tensorrt import available

        ok, why = available()
        return ok, (f"TensorRT {why}, INT8 engines" if ok else why)

    def __init__(self, model: str, store: ModelStore) -> None:
        import cupy as cp

        from ..models.tensorrt import load_engines

        self.spec = SPECS[model]
        self.stream = cp.cuda.Stream(non_blocking=True)
        self.engines = load_engines(model, self.precision, store, stream=self.stream)
        self.max_batch = max(self.engines) if len(self.engines) > 1 else 8

    def run(self, batch: Any) -> dict[str, np.ndarray]:
        import cupy as cp

        n = len(batch)
        names = list(self.spec.outputs)
        fits = [b for b in self.engines if b >= n]
        if fits:
            eng = self.engines[min(fits)]
            with self.stream:
                cp.copyto(next(iter(eng.inputs.values()))[:n], batch)
                eng.run()
            return eng.fetch(names, rows=n)
        eng = self.engines[1]
        inp = next(iter(eng.inputs.values()))
        rows: list[dict[str, Any]] = []
        with self.stream:
            for i in range(n):
                cp.copyto(inp, batch[i:i + 1])
                eng.run()
                rows.append({k: eng.outputs[k].copy() for k in names})
            host = {k: cp.concatenate([r[k] for r in rows]).get(stream=self.stream) for k in names}
        self.stream.synchronize()
        return host


class HostOrtRunner:
    """ONNX Runtime's CPU provider fed from the device: a batch of model inputs (a few hundred KB
    of crops, not frames) crosses to pinned host memory once, then runs as on the CPU backend."""

    precision = "fp32"     # ONNX Runtime's CPU provider runs FP32 fastest (benchmarks/vision_bench.py)
    max_batch = 8

    @staticmethod
    def available() -> tuple[bool, str]:
        return True, "ONNX Runtime CPU provider, model-input crops copied to the host"

    def __init__(self, model: str, store: ModelStore, threads: int = 1) -> None:
        import cupy as cp

        self.spec = SPECS[model]
        self.stream = cp.cuda.Stream(non_blocking=True)
        self.host = OrtRunner(store.inference(model, self.precision, threads), self.spec)
        shape = (self.max_batch, 3, self.spec.size, self.spec.size)
        count = int(np.prod(shape))
        self._pinned = np.frombuffer(cp.cuda.alloc_pinned_memory(4 * count), np.float32, count).reshape(shape)

    def run(self, batch: Any) -> dict[str, np.ndarray]:
        n = len(batch)
        batch.get(stream=self.stream, out=self._pinned[:n])
        self.stream.synchronize()
        return self.host.run(self._pinned[:n])


class DeviceGather:
    """Builds a batcher round's batch in one device buffer of `runner`'s: each caller's inputs
    copied on the runner's stream once the caller's ready event has passed."""

    def __init__(self, runner: Any) -> None:
        import cupy as cp

        self.stream = runner.stream
        size = runner.spec.size
        with self.stream:
            self._buf = cp.empty((runner.max_batch, 3, size, size), cp.float32)

    def __call__(self, items) -> Any:
        import cupy as cp

        n = 0
        with self.stream:
            for x, ready in items:
                if ready is not None:
                    self.stream.wait_event(ready)
                cp.copyto(self._buf[n:n + len(x)], x)
                n += len(x)
        return self._buf[:n]
