"""Where the CUDA kernels of the GPU stages run.

A KernelRuntime pairs the array module that the kernels' buffers come from with a compiler from
kernel source text to a module whose functions launch as cupy.RawModule's do:
`module.get_function(name)(grid, block, args, stream=stream)`. The GPU backend uses CuPy and
NVRTC (`cupy_runtime()`). GpuEffects and GpuInputMaker take a runtime so that the very same
kernel files can also be built for the host and driven with NumPy arrays: that is how they are
checked against the CPU reference on machines without a GPU (tests/kernels).
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from importlib import resources
from typing import Any

import numpy as np

NVRTC_OPTIONS = ("--std=c++14",)


def kernel_source(package: str, name: str) -> str:
    """Text of kernels/<name> shipped in `package` (facestream.engines.effects or .vision)."""
    return resources.files(package).joinpath("kernels", name).read_text()


class KernelRuntime:
    """Array module, kernel compiler, stream factory and device-to-host copy of one kind of device."""

    def __init__(self, xp: Any, compiler: Callable[[str], Any], new_stream: Callable[[], Any],
                 to_host: Callable[[Any, Any], np.ndarray]) -> None:
        self.xp = xp
        self._compiler = compiler
        self._new_stream = new_stream
        self._to_host = to_host
        self._modules: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()

    def stream(self) -> Any:
        """A new stream, not synchronised with the default one."""
        return self._new_stream()

    def module(self, package: str, name: str) -> Any:
        """The compiled kernels/<name> of `package`, compiled once per runtime."""
        with self._lock:
            mod = self._modules.get((package, name))
            if mod is None:
                mod = self._modules[(package, name)] = self._compiler(kernel_source(package, name))
        return mod

    def function(self, package: str, name: str, kernel: str) -> Any:
        return self.module(package, name).get_function(kernel)

    def to_host(self, array: Any, stream: Any) -> np.ndarray:
        """A host copy of `array`, read after the work queued on `stream` has finished."""
        return self._to_host(array, stream)


_cupy: KernelRuntime | None = None
_cupy_lock = threading.Lock()


def cupy_runtime() -> KernelRuntime:
    """CuPy arrays and NVRTC-compiled modules (the GPU backend's runtime), one per process."""
    global _cupy
    import cupy as cp

    def to_host(array, stream) -> np.ndarray:
        out = cp.asnumpy(array, stream=stream)
        stream.synchronize()
        return out

    with _cupy_lock:
        if _cupy is None:
            _cupy = KernelRuntime(
                cp,
                lambda code: cp.RawModule(code=code, options=NVRTC_OPTIONS),
                lambda: cp.cuda.Stream(non_blocking=True),
                to_host,
            )
        return _cupy
