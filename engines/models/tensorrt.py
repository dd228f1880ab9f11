"""TensorRT engines built from the packaged INT8 Q/DQ ONNX models, cached under FACESTREAM_HOME.

Build: a strongly typed network (the Q/DQ nodes fix every precision, no builder precision
flags), fixed input shapes, the detector's decoding and suppression inside the engine (they are
ONNX ops in the model), a timing cache shared by all builds on the same GPU. Engines are keyed
by GPU model, compute capability, TensorRT version, the model file's SHA-256 and the batch size:

    FACESTREAM_HOME/engines/<gpu>-sm<cc>-trt<version>/<model>.<precision>.<sha12>.b<batch>.plan
    FACESTREAM_HOME/engines/<gpu>-sm<cc>-trt<version>/timing.cache

Run: `TrtModel` owns an execution context, device buffers for every I/O tensor (bound once with
set_tensor_address), pinned host buffers for the outputs, and a CUDA stream; `run()` enqueues
execute_async_v3 on that stream, replayed from a captured CUDA graph where TensorRT allows
capture (it falls back to plain enqueue otherwise).

TensorRT and CuPy are imported lazily: importing this module needs neither.
"""
from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .batches import model_batches, with_batch
from .specs import SPECS
from .store import ModelStore, default_store

log = logging.getLogger("facestream.tensorrt")

WORKSPACE_BYTES = 1 << 30
_build_lock = threading.Lock()


def available() -> tuple[bool, str]:
    """(True, version) when TensorRT imports, else (False, why)."""
    try:
        import tensorrt as trt
    except ImportError as exc:
        return False, f"TensorRT is not installed ({exc.name or exc})"
    except Exception as exc:  # a broken install raises its own errors
        return False, f"TensorRT does not load: {exc}"
    return True, trt.__version__


@dataclass(frozen=True)
class DeviceKey:
    name: str
    major: int
    minor: int
    trt_version: str

    @property
    def folder(self) -> str:
        slug = re.sub(r"[^A-Za-z0-9]+", "-", self.name).strip("-").lower()
        return f"{slug}-sm{self.major}{self.minor}-trt{self.trt_version}"


def device_key(device: int = 0) -> DeviceKey:
    import cupy as cp
    import tensorrt as trt

    props = cp.cuda.runtime.getDeviceProperties(device)
    name = props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"])
    return DeviceKey(name, int(props["major"]), int(props["minor"]), trt.__version__)


class EngineCache:
    """Finds or builds the engine of one model variant for this GPU."""

    def __init__(self, store: ModelStore | None = None, device: int = 0) -> None:
        self.store = store or default_store()
        self.device = device
        self._key: DeviceKey | None = None

    @property
    def key(self) -> DeviceKey:
        if self._key is None:
            self._key = device_key(self.device)
        return self._key

    @property
    def folder(self) -> Path:
        return self.store.home / "engines" / self.key.folder

    @property
    def timing_cache_path(self) -> Path:
        return self.folder / "timing.cache"

    def engine_path(self, model: str, precision: str, batch: int, onnx_bytes: bytes) -> Path:
        sha = hashlib.sha256(onnx_bytes).hexdigest()[:12]
        return self.folder / f"{SPECS[model].name}.{precision}.{sha}.b{batch}.plan"

    def get(self, model: str, precision: str = "int8", batch: int = 1) -> bytes:
        """Serialized engine bytes, from the cache or freshly built (and then cached)."""
        onnx_bytes = self.store.read(model, precision)
        path = self.engine_path(model, precision, batch, onnx_bytes)
        if path.exists():
            return path.read_bytes()
        with _build_lock:
            if path.exists():
                return path.read_bytes()
            log.info("building TensorRT engine %s (one-off; cached for later starts)", path.name)
            plan = self.build(with_batch(onnx_bytes, batch))
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".tmp{os.getpid()}")
            tmp.write_bytes(plan)
            tmp.replace(path)
            return plan

    def build(self, onnx_bytes: bytes) -> bytes:
        import tensorrt as trt

        logger = trt.Logger(trt.Logger.WARNING)
        builder = trt.Builder(logger)
        flags = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
        network = builder.create_network(flags)
        parser = trt.OnnxParser(network, logger)
        if not parser.parse(onnx_bytes):
            errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise RuntimeError(f"TensorRT could not parse the ONNX model: {errors}")
        config = builder.create_builder_config()
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, WORKSPACE_BYTES)
        cache_bytes = self.timing_cache_path.read_bytes() if self.timing_cache_path.exists() else b""
        cache = config.create_timing_cache(cache_bytes)
        config.set_timing_cache(cache, ignore_mismatch=False)
        plan = builder.build_serialized_network(network, config)
        if plan is None:
            raise RuntimeError("TensorRT failed to build the engine (see the log above)")
        self.timing_cache_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.timing_cache_path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_bytes(bytes(memoryview(config.get_timing_cache().serialize())))
        tmp.replace(self.timing_cache_path)
        return bytes(memoryview(plan))


class TrtModel:
    """One deserialized engine with its context, bound device buffers and its own stream.

    `inputs` / `outputs` map tensor names to CuPy arrays (fixed shapes); `run()` enqueues one
    inference on `stream`; `fetch()` copies the outputs to pinned host arrays on the same stream
    and waits for them.
    """

    def __init__(self, plan: bytes, use_graph: bool = True, stream=None) -> None:
        import cupy as cp
        import tensorrt as trt

        self._logger = trt.Logger(trt.Logger.WARNING)
        self.runtime = trt.Runtime(self._logger)
        self.engine = self.runtime.deserialize_cuda_engine(plan)
        if self.engine is None:
            raise RuntimeError("TensorRT could not load the cached engine (rebuild: delete FACESTREAM_HOME/engines)")
        self.context = self.engine.create_execution_context()
        self.stream = stream if stream is not None else cp.cuda.Stream(non_blocking=True)
        self.inputs: dict[str, Any] = {}
        self.outputs: dict[str, Any] = {}
        self.host: dict[str, np.ndarray] = {}
        with self.stream:
            for i in range(self.engine.num_io_tensors):
                name = self.engine.get_tensor_name(i)
                shape = tuple(self.engine.get_tensor_shape(name))
                dtype = np.dtype(trt.nptype(self.engine.get_tensor_dtype(name)))
                buf = cp.zeros(shape, dtype)
                self.context.set_tensor_address(name, buf.data.ptr)
                if self.engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT:
                    self.inputs[name] = buf
                else:
                    self.outputs[name] = buf
                    mem = cp.cuda.alloc_pinned_memory(buf.nbytes)
                    self.host[name] = np.frombuffer(mem, dtype, buf.size).reshape(shape)
        self.batch = int(next(iter(self.inputs.values())).shape[0])
        self.graph = None
        self.graph_error = ""
        # one plain enqueue first: TensorRT finishes lazy set-up outside of any capture
        self._enqueue()
        self.stream.synchronize()
        if use_graph:
            self._capture()

    def _enqueue(self) -> None:
        if not self.context.execute_async_v3(self.stream.ptr):
            raise RuntimeError("TensorRT execute_async_v3 failed")

    def _capture(self) -> None:
        try:
            self.stream.begin_capture()
            try:
                self._enqueue()
            finally:
                graph = self.stream.end_capture()
            graph.upload(self.stream)
            self.graph = graph
        except Exception as exc:  # layers TensorRT cannot capture: plain enqueue
            self.graph = None
            self.graph_error = str(exc)
            log.info("TensorRT engine runs without a CUDA graph: %s", exc)

    def run(self) -> None:
        if self.graph is not None:
            self.graph.launch(self.stream)
        else:
            self._enqueue()

    def fetch(self, names=None, rows: int | None = None) -> dict[str, np.ndarray]:
        names = list(self.outputs) if names is None else names
        for n in names:
            src = self.outputs[n] if rows is None else self.outputs[n][:rows]
            src.get(stream=self.stream, out=self.host[n] if rows is None else self.host[n][:rows])
        self.stream.synchronize()
        return {n: (self.host[n] if rows is None else self.host[n][:rows]).copy() for n in names}


def load_engines(model: str, precision: str = "int8", store: ModelStore | None = None,
                 batches: tuple[int, ...] | None = None, use_graph: bool = True, stream=None) -> dict[int, TrtModel]:
    """{batch: TrtModel} for a model, building missing engines (batches.model_batches by default)."""
    cache = EngineCache(store)
    if batches is None:
        batches = model_batches(model)
    out = {}
    for b in batches:
        try:
            out[b] = TrtModel(cache.get(model, precision, b), use_graph=use_graph, stream=stream)
        except ImportError:
            if b == 1:
                raise
            log.info("onnx is not installed: %s runs at batch 1 only", model)
    return out
