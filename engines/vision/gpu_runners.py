"""Device model runners for the GPU vision: one model on a batch of model inputs on the device.

Each runner class is picked by name from gpu.RUNNERS and has `available() -> (ok, detail)` (what
it runs on, or why it cannot run here), `plan(detail) -> (engine, reason)` (how it runs, for the
backend's reported placement), `on_device` (whether the models run on the GPU), a `(model, store)`
constructor, and `spec`, `stream`, `max_batch`, `batch_sizes` (the sizes it runs a batch at in
one go; batching.Batcher pads to them), `mode` (how it runs once made) and `run(batch)`: batch is
an (n, 3, S, S) CuPy array written on `stream`, the outputs named by `spec.outputs` come back as
host NumPy arrays with n rows. CuPy, TensorRT, PyTorch and ONNX Runtime are imported only when a
runner is asked or made.
"""
from __future__ import annotations

import importlib.util
from typing import Any

import numpy as np

from ..batching import split_rows
from ..models.batches import model_batches, with_batch
from ..models.specs import SPECS
from ..models.store import ModelStore
from .ort_runner import OrtRunner

ON_GPU = "inputs cut from NV12 on the GPU, calls batched across sessions"


def pinned(shape: tuple[int, ...]) -> np.ndarray:
    """A float32 host array in page-locked memory: copies from the device into it can be queued."""
    import cupy as cp

    count = int(np.prod(shape))
    return np.frombuffer(cp.cuda.alloc_pinned_memory(4 * count), np.float32, count).reshape(shape)


class TrtRunner:
    """TensorRT engines of the INT8 Q/DQ model, one per batch size (the mesh has 1 and 8, the
    detectors 1: a batch larger than every engine runs row by row on the same stream, with one
    wait at the end), replayed from CUDA graphs where TensorRT allows capture."""

    precision = "int8"
    on_device = True

    @staticmethod
    def available() -> tuple[bool, str]:
        from ..models.tensorrt import available

        ok, why = available()
        return ok, (f"TensorRT {why}" if ok else why)

    @staticmethod
    def plan(detail: str) -> tuple[str, str]:
        return (f"{detail.lower()} (int8 engines, cuda graphs)",
                f"TensorRT is installed: INT8 Q/DQ engines built once per GPU and cached, {ON_GPU}")

    def __init__(self, model: str, store: ModelStore) -> None:
        import cupy as cp

        from ..models.tensorrt import load_engines

        self.spec = SPECS[model]
        self.stream = cp.cuda.Stream(non_blocking=True)
        self.engines = load_engines(model, self.precision, store, stream=self.stream)
        self.max_batch = max(self.engines) if len(self.engines) > 1 else 8
        self.batch_sizes = tuple(sorted(self.engines))
        errors = [e.graph_error for e in self.engines.values() if e.graph is None]
        self.mode = f"enqueue ({errors[0]})" if errors else "cuda graphs"

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


class TorchRunner:
    """The FP32 models converted to PyTorch modules (models/torch_models.py), on the GPU.

    CuPy and PyTorch share the runner's stream (torch.cuda.ExternalStream over CuPy's): the
    batch, written on it by DeviceGather, is read through DLPack without a copy or a wait, each
    batch size's forward is replayed from a CUDA graph, and only the outputs' rows are copied to
    pinned host memory, with one wait at the end. The mesh runs at batch 1 and 8, the detectors
    at batch 1, one image after the other.
    """

    precision = "fp32"
    max_batch = 8
    on_device = True

    @staticmethod
    def available() -> tuple[bool, str]:
        from ..models.torch_models import available

        return available()

    @staticmethod
    def plan(detail: str) -> tuple[str, str]:
        return (f"{detail.lower()} (fp32, cuda graphs)",
                "the FP32 models converted to PyTorch (onnx2torch) run on the GPU from CUDA graphs, "
                f"{ON_GPU}; only boxes, scores and landmarks are copied to the host")

    def __init__(self, model: str, store: ModelStore) -> None:
        import cupy as cp
        import torch

        from ..models.torch_models import load

        self.spec = SPECS[model]
        self.stream = cp.cuda.Stream(non_blocking=True)
        self._torch_stream = torch.cuda.ExternalStream(self.stream.ptr)
        self.model = load(model, store, "cuda", stream=self._torch_stream)
        self.batch_sizes = self.model.sizes
        self.mode = self.model.mode
        self._host = self.model.new_outputs(self.max_batch, pin=True)

    def run(self, batch: Any) -> dict[str, np.ndarray]:
        import torch

        n = len(batch)
        # both libraries' current stream is the runner's: the DLPack hand-over needs no wait
        with self.stream, torch.cuda.stream(self._torch_stream):
            self.model.run(torch.from_dlpack(batch), self._host)
        self.stream.synchronize()
        return {k: v[:n].numpy().copy() for k, v in self._host.items()}


class _BoundSession:
    """One ONNX Runtime CUDA session at a fixed batch, its input and outputs bound once to CuPy
    buffers (I/O binding), run on `stream` (the provider's user_compute_stream)."""

    def __init__(self, onnx_bytes: bytes, names: tuple[str, ...], stream: Any) -> None:
        import cupy as cp
        import onnxruntime as ort

        device = cp.cuda.Device().id
        options = {"device_id": str(device), "user_compute_stream": str(stream.ptr)}
        self.session = ort.InferenceSession(onnx_bytes, providers=[("CUDAExecutionProvider", options)])
        if "CUDAExecutionProvider" not in self.session.get_providers():   # it falls back to the CPU quietly
            raise RuntimeError("ONNX Runtime's CUDA provider did not load (its CUDA or cuDNN libraries are "
                               "missing or do not match: see ONNX Runtime's log)")
        self.io = self.session.io_binding()
        shapes = {o.name: tuple(o.shape) for o in [*self.session.get_inputs(), *self.session.get_outputs()]}
        with stream:
            self.input = cp.zeros(shapes["input"], cp.float32)
            self.outputs = {k: cp.zeros(shapes[k], cp.float32) for k in names}
        self.io.bind_input("input", "cuda", device, np.float32, self.input.shape, self.input.data.ptr)
        for k, buf in self.outputs.items():
            self.io.bind_output(k, "cuda", device, np.float32, buf.shape, buf.data.ptr)

    def run(self) -> None:
        self.session.run_with_iobinding(self.io)


class OrtCudaRunner:
    """ONNX Runtime's CUDA provider (onnxruntime-gpu) on device memory: the FP32 models run on
    the runner's stream with inputs and outputs bound to CuPy buffers, so only the outputs' rows
    reach the host. The mesh runs at batch 1 and 8, the detectors at batch 1, row by row."""

    precision = "fp32"
    max_batch = 8
    on_device = True
    mode = "io binding"

    @staticmethod
    def available() -> tuple[bool, str]:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            return False, f"ONNX Runtime is not installed ({exc})"
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            return False, f"ONNX Runtime {ort.__version__} has no CUDA provider (onnxruntime-gpu is not installed)"
        return True, f"onnxruntime {ort.__version__} cuda"

    @staticmethod
    def plan(detail: str) -> tuple[str, str]:
        return (f"{detail.lower()} (fp32, io binding)",
                "the FP32 models run on ONNX Runtime's CUDA provider on bound device buffers, "
                f"{ON_GPU}; only boxes, scores and landmarks are copied to the host")

    def __init__(self, model: str, store: ModelStore) -> None:
        import cupy as cp

        self.spec = SPECS[model]
        self.stream = cp.cuda.Stream(non_blocking=True)
        # the batch-8 mesh is rewritten with onnx; without it, batch 1 only
        self.batch_sizes = model_batches(model) if importlib.util.find_spec("onnx") else (1,)
        onnx_bytes = store.read(model, self.precision)
        self._sessions = {b: _BoundSession(with_batch(onnx_bytes, b), self.spec.outputs, self.stream)
                          for b in self.batch_sizes}
        self._host = {k: pinned((self.max_batch, *buf.shape[1:])) for k, buf in self._sessions[1].outputs.items()}
        for s in self._sessions.values():
            s.run()     # cuDNN's algorithm search happens here, not in a session's first frame
        self.stream.synchronize()

    def run(self, batch: Any) -> dict[str, np.ndarray]:
        import cupy as cp

        with self.stream:
            for start, rows, size in split_rows(len(batch), self.batch_sizes):
                s = self._sessions[size]
                cp.copyto(s.input[:rows], batch[start:start + rows])
                s.run()
                for k, buf in s.outputs.items():
                    cp.asnumpy(buf[:rows], stream=self.stream, out=self._host[k][start:start + rows], blocking=False)
        self.stream.synchronize()
        return {k: v[:len(batch)].copy() for k, v in self._host.items()}


class HostOrtRunner:
    """ONNX Runtime's CPU provider fed from the device: a batch of model inputs (a few hundred KB
    of crops, not frames) crosses to pinned host memory once, then runs as on the CPU backend."""

    precision = "fp32"     # ONNX Runtime's CPU provider runs FP32 fastest (benchmarks/vision_bench.py)
    max_batch = 8
    batch_sizes = (1,)     # row by row: padding would only add work
    on_device = False
    mode = "cpu, row by row"

    @staticmethod
    def available() -> tuple[bool, str]:
        return True, "ONNX Runtime CPU provider, model-input crops copied to the host"

    @staticmethod
    def plan(detail: str) -> tuple[str, str]:
        return ("onnxruntime (fp32 models), inputs cut on the GPU",
                "models run on ONNX Runtime's CPU provider; only the model-input crops are copied to the "
                "host, the frame stays on the GPU")

    def __init__(self, model: str, store: ModelStore, threads: int = 1) -> None:
        import cupy as cp

        self.spec = SPECS[model]
        self.stream = cp.cuda.Stream(non_blocking=True)
        self.host = OrtRunner(store.inference(model, self.precision, threads), self.spec)
        self._pinned = pinned((self.max_batch, 3, self.spec.size, self.spec.size))

    def run(self, batch: Any) -> dict[str, np.ndarray]:
        n = len(batch)
        batch.get(stream=self.stream, out=self._pinned[:n])
        self.stream.synchronize()
        return self.host.run(self._pinned[:n])


class DeviceGather:
    """Builds a batcher round's batch in one device buffer of `runner`'s: each caller's inputs
    copied on the runner's stream once the caller's ready event has passed; the padding rows
    after them hold earlier inputs (or zeros), whose outputs are dropped."""

    def __init__(self, runner: Any) -> None:
        import cupy as cp

        self.stream = runner.stream
        size = runner.spec.size
        with self.stream:
            self._buf = cp.zeros((runner.max_batch, 3, size, size), cp.float32)

    def __call__(self, items, rows: int) -> Any:
        import cupy as cp

        n = 0
        with self.stream:
            for x, ready in items:
                if ready is not None:
                    self.stream.wait_event(ready)
                cp.copyto(self._buf[n:n + len(x)], x)
                n += len(x)
        return self._buf[:rows]
