"""The packaged FP32 models as PyTorch modules, for GPUs without TensorRT (the `torch` runner).

Conversion, in memory, once per model and batch size (batches.model_batches); nothing is written:
  1. the FP32 ONNX file from the store (SHA-256 checked), fixed at the batch size (batches.with_batch);
  2. auto_pad made explicit (rewrite.explicit_pads): onnx2torch converts explicit padding only;
  3. onnx2torch.convert: a torch.fx module whose outputs follow the graph's outputs;
  4. moved to the device, except the integer constants (shapes, axes, pads, the top-K count).
     onnx2torch's Reshape, Slice, Pad, Resize, TopK and ReduceSum read those as Python numbers:
     read from the GPU, each would wait for the GPU at every call, and CUDA graph capture would
     fail. Nothing else is read on the host (the detectors' decoding and suppression are
     fixed-shape tensor ops), which the tests check by running the modules on the meta device.

Run: TorchModel keeps one input buffer of its largest batch size. On CUDA, each batch size's
forward is captured once into a CUDA graph on the model's stream and replayed; where capture
fails the forward runs eagerly and `mode` says why. On the CPU it runs eagerly (parity tests).
FP32 means FP32: TF32 convolutions are turned off, so the results match ONNX Runtime's.

PyTorch, onnx and onnx2torch are imported lazily: importing this module needs none of them.
"""
from __future__ import annotations

import contextlib
import importlib.util
import logging
from collections.abc import Sequence
from typing import Any

from ..batching import split_rows
from .batches import model_batches, with_batch
from .specs import SPECS
from .store import ModelStore

log = logging.getLogger("facestream.torch")

PRECISION = "fp32"
INSTALL = "pip install 'facestream[gpu-torch]'"


def short_version(version: str) -> str:
    """"2.11.0+cu130" -> "2.11"."""
    return ".".join(version.split("+")[0].split(".")[:2])


def available() -> tuple[bool, str]:
    """(True, "PyTorch 2.11 CUDA 13.0") where PyTorch sees a CUDA device and onnx2torch is
    installed, else (False, why)."""
    if importlib.util.find_spec("torch") is None:
        return False, "PyTorch is not installed"
    try:
        import torch
    except Exception as exc:  # a broken install raises its own errors
        return False, f"PyTorch does not load: {exc}"
    version = f"PyTorch {short_version(torch.__version__)}"
    if not torch.cuda.is_available():
        return False, f"{version} sees no CUDA device" + ("" if torch.version.cuda else " (a CPU-only build)")
    missing = [m for m in ("onnx", "onnx2torch") if importlib.util.find_spec(m) is None]
    if missing:
        return False, f"{version} is installed but {' and '.join(missing)} not ({INSTALL})"
    return True, f"{version} CUDA {torch.version.cuda}"


def to_torch(onnx_bytes: bytes) -> tuple[Any, list[str]]:
    """The model as a torch.fx module (on the CPU) and its output names, in the module's order."""
    import onnx
    from onnx2torch import convert

    from .rewrite import explicit_pads

    model = onnx.load_from_string(onnx_bytes)
    explicit_pads(model)
    return convert(model).eval(), [o.name for o in model.graph.output]


def to_device(module: Any, device: Any) -> Any:
    """`module` moved to `device`, its integer constants kept on the host (see the module doc)."""
    host = {name: b for name, b in module.named_buffers() if not b.is_floating_point()}
    module.to(device)
    for name, b in host.items():
        owner, _, attr = name.rpartition(".")
        setattr(module.get_submodule(owner), attr, b)
    return module


class TorchModel:
    """One model at fixed batch sizes on one device.

    modules: {batch size: converted module}; outputs: the modules' output names in order;
    names: the outputs `run` returns; size: the square input size. stream: on CUDA, the torch
    stream everything runs on (a new one by default). use_graphs: capture CUDA graphs on CUDA.
    """

    def __init__(self, modules: dict[int, Any], outputs: Sequence[str], names: Sequence[str], size: int,
                 device: Any = "cpu", stream: Any = None, use_graphs: bool = True) -> None:
        import torch

        self.device = torch.device(device)
        self.cuda = self.device.type == "cuda"
        if self.cuda:
            torch.backends.cudnn.allow_tf32 = False
        self.stream = stream if stream is not None or not self.cuda else torch.cuda.Stream(self.device)
        self.sizes = tuple(sorted(modules))
        self.names = tuple(names)
        self._outputs = list(outputs)
        self._modules = {b: to_device(m, self.device) for b, m in modules.items()}
        self.graphs: dict[int, Any] = {}
        self.mode = "eager"
        with self._on_stream(), torch.no_grad():
            self.input = torch.zeros((self.sizes[-1], 3, size, size), device=self.device)
            # a first forward of each size: output shapes, and lazy set-up done outside any capture
            self._static = {b: self._forward(b) for b in self.sizes}
        self.shapes = {k: tuple(v.shape[1:]) for k, v in self._static[self.sizes[0]].items()}
        if self.cuda and use_graphs:
            self._capture()

    def _on_stream(self):
        import torch

        return torch.cuda.stream(self.stream) if self.cuda else contextlib.nullcontext()

    def _forward(self, batch: int) -> dict[str, Any]:
        out = self._modules[batch](self.input[:batch])
        out = [out] if not isinstance(out, (list, tuple)) else list(out)
        if len(out) != len(self._outputs):
            raise RuntimeError(f"the converted model has {len(out)} outputs, the ONNX model {len(self._outputs)}")
        named = dict(zip(self._outputs, out, strict=True))
        return {k: named[k] for k in self.names}

    def _capture(self) -> None:
        """One CUDA graph per batch size, each with its own memory pool (the sizes replay in any
        order, so one's temporaries must not live where another's outputs are); eager forwards
        where capture fails."""
        import torch

        graphs, static = {}, {}
        try:
            for b in self.sizes:
                with self._on_stream(), torch.no_grad():
                    self._forward(b)        # warm-up on the capture stream (cuDNN handles are per stream)
                self.stream.synchronize()
                graph = torch.cuda.CUDAGraph()
                with torch.no_grad(), torch.cuda.graph(graph, stream=self.stream, capture_error_mode="thread_local"):
                    static[b] = self._forward(b)
                graphs[b] = graph
        except Exception as exc:  # an op that cannot be captured: eager forwards, the reason kept
            self.mode = f"eager (CUDA graph capture failed: {type(exc).__name__}: {exc})"
            log.warning("the PyTorch models run without CUDA graphs: %s", exc)
            return
        self.graphs, self._static = graphs, static
        self.mode = "cuda graphs"

    def _step(self, batch: int) -> dict[str, Any]:
        graph = self.graphs.get(batch)
        if graph is None:
            return self._forward(batch)
        graph.replay()
        return self._static[batch]

    def new_outputs(self, rows: int, pin: bool = False) -> dict[str, Any]:
        """Host tensors for `rows` rows of every output `run` writes (pinned: for copies from CUDA)."""
        import torch

        return {k: torch.empty((rows, *self.shapes[k]), dtype=torch.float32, pin_memory=pin) for k in self.names}

    def run(self, x: Any, out: dict[str, Any]) -> None:
        """Runs the rows of `x` (a tensor on this device, any number of rows; on CUDA, written on
        `stream` or waited for) in batches of the model's sizes, the last one padded, and copies
        each output's rows into out[name][:len(x)]. On CUDA everything is queued on `stream`, the
        copies into pinned memory too: wait for the stream before reading `out`."""
        import torch

        with self._on_stream(), torch.no_grad():
            for start, rows, batch in split_rows(len(x), self.sizes):
                self.input[:rows].copy_(x[start:start + rows])
                result = self._step(batch)
                for k in self.names:
                    out[k][start:start + rows].copy_(result[k][:rows], non_blocking=self.cuda)


def load(model: str, store: ModelStore, device: Any = "cuda", stream: Any = None,
         use_graphs: bool = True) -> TorchModel:
    """`model` ("short", "full" or "mesh") from `store`'s FP32 file, at its batch sizes, on `device`."""
    spec = SPECS[model]
    onnx_bytes = store.read(model, PRECISION)
    modules: dict[int, Any] = {}
    outputs: list[str] = []
    for b in model_batches(model):
        modules[b], outputs = to_torch(with_batch(onnx_bytes, b))
    return TorchModel(modules, outputs, spec.outputs, spec.size, device, stream, use_graphs)
