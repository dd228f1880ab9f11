"""GPU vision: the face tracker with model inputs cut on the GPU (gpu_resample) and the models run
by process-wide device runners, each behind a batcher shared by all sessions.

Device runners, by name (RUNNERS; "auto" takes the first available in AUTO, and the next one
where making it fails):
  tensorrt          the INT8 Q/DQ models built into TensorRT engines (models/tensorrt.py), run on
                    device buffers, replayed from CUDA graphs;
  torch             where TensorRT is not installed but PyTorch sees the GPU: the FP32 models
                    converted to PyTorch modules (models/torch_models.py), replayed from CUDA graphs;
  onnxruntime-cuda  where onnxruntime-gpu is installed: the FP32 models on ONNX Runtime's CUDA
                    provider, inputs and outputs bound to device buffers;
  onnxruntime       else: the FP32 models on ONNX Runtime's CPU provider; only the model-input
                    crops (a few hundred KB) cross to the host.
Each is batched across sessions. The frame stays on the device; the detector and mesh outputs
(a few KB) come back to the host, where tracking runs.
"""
from __future__ import annotations

import contextlib
import functools
import importlib
import logging
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np

from ..backend import Placement
from ..batching import DEFAULT_BUDGET_MS, Batcher, check_budget
from ..frame import Frame
from ..models.specs import DEFAULT_DETECTOR, SPECS, ModelSpec, detector_spec
from ..models.store import ModelStore, default_store
from ..stages import Stage
from .face import Face
from .gpu_resample import GpuInputMaker
from .tracker import FaceTracker, TrackerSettings

log = logging.getLogger("facestream.vision.gpu")

# "module:class" of each device runner (gpu_runners.py says what a runner class provides),
# imported only when picked: an engine that is not installed costs nothing.
RUNNERS: dict[str, str] = {
    "tensorrt": ".gpu_runners:TrtRunner",
    "torch": ".gpu_runners:TorchRunner",
    "onnxruntime-cuda": ".gpu_runners:OrtCudaRunner",
    "onnxruntime": ".gpu_runners:HostOrtRunner",
}
AUTO = ("tensorrt", "torch", "onnxruntime-cuda", "onnxruntime")     # the order "auto" tries them in


def runner_class(name: str) -> Any:
    module, _, cls = RUNNERS[name].partition(":")
    return getattr(importlib.import_module(module, __package__), cls)


def candidates(engine: str = "auto") -> Iterator[tuple[str, Any, str]]:
    """The runners `engine` ("auto" or a name in RUNNERS) tries, in order, each probed only when
    reached: (name, class, detail) where it is available, (name, None, why not) where not."""
    for name in AUTO if engine == "auto" else (engine,):
        cls = runner_class(name)
        ok, detail = cls.available()
        yield name, cls if ok else None, detail


def vision_placement(device: str, engine: str = "auto") -> Placement:
    """Where the vision models run on this host and why, without loading any: the first available
    runner, with the reasons the ones before it were passed over."""
    skipped: list[str] = []
    for _, cls, detail in candidates(engine):
        if cls is None:
            skipped.append(detail)
            continue
        label, how = cls.plan(detail)
        return Placement(Stage.VISION, device if cls.on_device else "cpu", label, "; ".join([*skipped, how]))
    return Placement(Stage.VISION, "cpu", "unavailable", "; ".join(skipped))


class BatchedRunner:
    """A session's model runner on a shared batcher: its inputs, written on the session's stream,
    join the other sessions' calls in one batch. Counts as an active session until closed."""

    def __init__(self, batcher: Batcher, spec: ModelSpec, stream: Any) -> None:
        self.spec = spec
        self.stream = stream
        self._batcher = batcher
        self._closed = False
        batcher.register()

    def run(self, batch: Any) -> dict[str, np.ndarray]:
        import cupy as cp

        ready = cp.cuda.Event(disable_timing=True)
        ready.record(self.stream)
        return self._batcher.run(batch, ready)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._batcher.unregister()


class GpuModels:
    """Process-wide device runners and their batchers, made on first use and shared by sessions.

    engine: "auto" or a name in RUNNERS. budget_ms: how long a batch waits for the calls of other
    sessions (batching.DEFAULT_BUDGET_MS; the server's --batch-budget-ms).
    """

    def __init__(self, store: ModelStore | None = None, engine: str = "auto",
                 budget_ms: float = DEFAULT_BUDGET_MS) -> None:
        if engine != "auto" and engine not in RUNNERS:
            raise ValueError(f"engine must be 'auto' or one of {sorted(RUNNERS)}, not {engine!r}")
        self.store = store or default_store()
        self.engine = engine
        self._batchers: dict[str, Batcher] = {}
        self._modes: dict[str, str] = {}     # how each model's runner runs (CUDA graphs or not, ...)
        self._lock = threading.Lock()
        self.budget_ms = check_budget(budget_ms)
        self.kind = ""          # the RUNNERS name in use, once a model is loaded
        self.detail = ""

    def set_budget(self, budget_ms: float) -> None:
        """The batching budget of every model, those already running included."""
        check_budget(budget_ms)
        with self._lock:
            self.budget_ms = budget_ms
            for b in self._batchers.values():
                b.set_budget(budget_ms)

    def batcher(self, model: str) -> Batcher:
        with self._lock:
            b = self._batchers.get(model)
            if b is None:
                from .gpu_runners import DeviceGather

                runner = self.make_runner(model)
                b = Batcher(runner, DeviceGather(runner), self.budget_ms)
                self._modes[model] = runner.mode
                self._batchers[model] = b
            return b

    def runner(self, model: str, stream: Any) -> BatchedRunner:
        """A session's runner for `model`, its inputs written on `stream`; close it when the session ends."""
        return BatchedRunner(self.batcher(model), SPECS[model], stream)

    def make_runner(self, model: str) -> Any:
        """A new runner for `model`: the engine's, or with "auto" the first in AUTO that is available
        and loads; `kind` and `detail` say which, and why the ones before it were passed over."""
        skipped: list[str] = []
        for name, cls, detail in candidates(self.engine):
            if cls is None:
                skipped.append(detail)
                continue
            try:
                runner = cls(model, self.store)
            except Exception as exc:  # a runtime that imports but cannot run here: the next one
                if self.engine != "auto":
                    raise
                skipped.append(f"{detail} failed to load the {model} model ({type(exc).__name__}: {exc})")
                log.warning("%s", skipped[-1])
                continue
            if skipped and self.kind != name:
                log.warning("%s: the GPU backend runs the vision models on %s", "; ".join(skipped), detail)
            self.kind, self.detail = name, "; ".join([*skipped, f"{detail} ({runner.mode})"])
            return runner
        raise RuntimeError("; ".join(skipped))

    def warm_up(self, models=(DEFAULT_DETECTOR, "mesh")) -> None:
        import cupy as cp

        for m in models:
            size = SPECS[m].size
            self.batcher(m).run(cp.zeros((1, 3, size, size), cp.float32))

    def stats(self) -> dict[str, dict]:
        return {m: vars(b.stats) | {"mean_batch": b.stats.mean_batch, "batch_sizes": b.runner.batch_sizes,
                                    "mode": self._modes[m]}
                for m, b in self._batchers.items()}


_models: GpuModels | None = None
_models_lock = threading.Lock()


def shared_models(store: ModelStore | None = None, budget_ms: float | None = None) -> GpuModels:
    """The process's GpuModels, made by the first call with `store` (later calls' store is not
    used). `budget_ms`, where given, is the batching budget from then on, whichever call made the
    models: the server hands over its --batch-budget-ms this way."""
    global _models
    with _models_lock:
        if _models is None:
            _models = GpuModels(store)
        if budget_ms is not None:
            _models.set_budget(budget_ms)
        return _models


class GpuVision:
    """Implements the Vision protocol on CuPy frames (one instance per video session).

    stream: the session's CUDA stream (model inputs are cut on it). models: the device runners
    (default: shared_models(store)). detector, with_landmarks: as CpuVision; the other keyword
    arguments are TrackerSettings. The session's stream is current in the calling thread only, so
    the meshes of a frame run one after the other: on the GPU the concurrency comes from
    batching the models across sessions.
    """

    def __init__(self, stream=None, models: GpuModels | None = None, store: ModelStore | None = None,
                 detector: str = DEFAULT_DETECTOR, with_landmarks: bool = True, **settings) -> None:
        import cupy as cp

        detector_spec(detector)
        tracker_settings = TrackerSettings(**settings)
        self.stream = stream if stream is not None else cp.cuda.Stream(non_blocking=True)
        self.models = models or shared_models(store)
        with contextlib.ExitStack() as undo:     # a failed start leaves no runner registered
            det = undo.enter_context(contextlib.closing(self.models.runner(detector, self.stream)))
            mesh = undo.enter_context(contextlib.closing(self.models.runner("mesh", self.stream))) \
                if with_landmarks else None
            self.tracker = FaceTracker(det, mesh, functools.partial(GpuInputMaker, stream=self.stream),
                                       tracker_settings)
            undo.pop_all()
        self.stats = self.tracker.stats

    def process(self, frame: Frame) -> list[Face]:
        with self.stream:
            return self.tracker.process(frame)

    def close(self) -> None:
        self.tracker.close()
