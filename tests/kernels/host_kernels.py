"""The CUDA kernel files built for the host and launched the way CuPy launches RawModule functions.

HostRuntime is a KernelRuntime (engines/kernel_runtime.py) whose arrays are NumPy arrays and whose
modules are the .cu sources compiled by the C++ compiler with cuda_shim.h, so GpuEffects and
GpuInputMaker run unchanged on a CPU. Every launch also checks what a GPU would not report: the
number and types of the arguments against the kernel's parameters (CuPy passes a NumPy scalar's
bytes as they are, and a Python int as 64 bits), the launch limits, and that no buffer a kernel
may write overlaps another of its arguments (a race on the GPU that the host's thread order hides).
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import re
import shutil
import subprocess
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from facestream.engines.kernel_runtime import KernelRuntime

SHIM = Path(__file__).with_name("cuda_shim.h")
# -ffp-contract=off: each float operation rounds as written (the kernels spell out the fused
# multiply-adds they rely on), so a host run is one exact reading of the source.
FLAGS = ("-O2", "-std=c++17", "-shared", "-fPIC", "-ffp-contract=off")
KERNEL = re.compile(r'extern\s+"C"\s+__global__\s+void\s+(\w+)\s*\(')
DTYPES = {"int32": np.int32, "int64": np.int64, "float32": np.float32, "float64": np.float64, "uint8": np.uint8}
MAX_BLOCK_THREADS = 1024
MAX_GRID = (2**31 - 1, 65535, 65535)


def kernel_names(code: str) -> list[str]:
    """The extern "C" __global__ kernels defined in a kernel source, in order."""
    return KERNEL.findall(code)


def checks(*kernels: str) -> Callable[[Callable], Callable]:
    """Declares the kernels a test compares with the reference: the test fails unless each is
    launched while it runs (tests/kernels/conftest.py), and every kernel of every kernel file must
    be declared by some test (test_kernel_coverage.py)."""

    def mark(test: Callable) -> Callable:
        test.__dict__["kernels"] = kernels
        return test

    return mark


def find_compiler() -> str | None:
    """The C++ compiler to build with: $CXX, else g++ (CUDA's host compiler on Linux)."""
    return shutil.which(os.environ.get("CXX", "g++"))


class HostStream:
    """Stands in for a CUDA stream: a host launch has finished when it returns."""

    def __enter__(self) -> HostStream:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def synchronize(self) -> None:
        return None


def _dims(value: Any) -> tuple[int, int, int]:
    dims = (value,) if isinstance(value, int) else tuple(int(v) for v in value)
    if not 1 <= len(dims) <= 3:
        raise ValueError(f"launch dimensions {value!r}")
    return dims + (1,) * (3 - len(dims))  # type: ignore[return-value]


class HostKernel:
    """One kernel of a host module, called as `kernel(grid, block, args, stream=None)`."""

    def __init__(self, lib: ctypes.CDLL, name: str, launched: Counter[str]) -> None:
        self.name = name
        sig = getattr(lib, f"fs_signature_{name}")
        sig.restype = ctypes.c_char_p
        self.params = [p for p in sig().decode().split(",") if p]
        self._launch = getattr(lib, f"fs_launch_{name}")
        self._launch.restype = None
        self._launch.argtypes = (ctypes.POINTER(ctypes.c_uint),) * 2 + (ctypes.POINTER(ctypes.c_void_p),)
        self._launched = launched

    def _argument(self, i: int, param: str, value: Any) -> tuple[np.ndarray, bool]:
        """The array whose memory holds argument i (for a pointer: the buffer it points to)."""
        where = f"{self.name} argument {i} ({param})"
        if param.endswith("*"):
            if not isinstance(value, np.ndarray):
                raise TypeError(f"{where}: expected an array, got {type(value).__name__}")
            want = np.dtype(DTYPES[param.removeprefix("const ").removesuffix("*")])
            if value.dtype != want:
                raise TypeError(f"{where}: array of {value.dtype}")
            return value, True
        if isinstance(value, np.generic):
            scalar = value
        elif isinstance(value, bool):
            scalar = np.bool_(value)
        elif isinstance(value, int):
            scalar = np.int64(value)
        elif isinstance(value, float):
            scalar = np.float64(value)
        else:
            raise TypeError(f"{where}: unsupported {type(value).__name__}")
        if scalar.dtype != np.dtype(DTYPES[param]):
            raise TypeError(f"{where}: given {scalar.dtype}, which the GPU would read as other bits")
        return np.array(scalar), False

    def __call__(self, grid: Any, block: Any, args: tuple, stream: Any = None, shared_mem: int = 0) -> None:
        if shared_mem:
            raise ValueError("the host build has no shared memory")
        g, b = _dims(grid), _dims(block)
        too_big = b[0] * b[1] * b[2] > MAX_BLOCK_THREADS or any(n > m for n, m in zip(g, MAX_GRID, strict=True))
        if min(g + b) < 1 or too_big:
            raise ValueError(f"{self.name}: invalid launch grid {g} block {b}")
        if len(args) != len(self.params):
            raise TypeError(f"{self.name} takes {len(self.params)} arguments, given {len(args)}")
        held = [self._argument(i, p, a) for i, (p, a) in enumerate(zip(self.params, args, strict=True))]
        for i, (param, (arr, is_ptr)) in enumerate(zip(self.params, held, strict=True)):
            if not is_ptr or param.startswith("const "):
                continue
            for j, (other, other_ptr) in enumerate(held):
                if j != i and other_ptr and np.may_share_memory(arr, other):
                    raise ValueError(f"{self.name}: argument {i} is written and overlaps argument {j}")
        slots = [ctypes.c_void_p(arr.ctypes.data) for arr, _ in held]
        argv = (ctypes.c_void_p * max(1, len(held)))(
            *[ctypes.addressof(s) if is_ptr else arr.ctypes.data for s, (arr, is_ptr) in zip(slots, held, strict=True)]
        )
        self._launch((ctypes.c_uint * 3)(*g), (ctypes.c_uint * 3)(*b), argv)
        self._launched[self.name] += 1


class HostModule:
    """A kernel source built as a shared library; the host counterpart of cupy.RawModule."""

    def __init__(self, path: Path, names: list[str], launched: Counter[str]) -> None:
        self._lib = ctypes.CDLL(str(path))
        self._kernels = {n: HostKernel(self._lib, n, launched) for n in names}

    def get_function(self, name: str) -> HostKernel:
        return self._kernels[name]


class HostCompiler:
    """Builds kernel sources into shared libraries under `build_dir`, one per distinct source."""

    def __init__(self, cxx: str, build_dir: Path) -> None:
        self.cxx = cxx
        self.build_dir = build_dir
        self.launched: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._building: dict[str, threading.Lock] = {}

    def library(self, code: str) -> Path:
        """The shared library of `code`, compiled on first use."""
        key = hashlib.sha256("\0".join((code, SHIM.read_text(), self.cxx, *FLAGS)).encode()).hexdigest()[:24]
        out = self.build_dir / f"{key}.so"
        with self._lock:
            lock = self._building.setdefault(key, threading.Lock())
        with lock:
            if not out.exists():
                src = self.build_dir / f"{key}.cu"
                src.write_text(code)
                wrapper = self.build_dir / f"{key}.cpp"
                launchers = "".join(f"FS_HOST_KERNEL({n})\n" for n in kernel_names(code))
                wrapper.write_text(f'#include "{SHIM}"\n#include "{src}"\n{launchers}')
                tmp = out.with_suffix(".so.tmp")
                proc = subprocess.run([self.cxx, *FLAGS, "-o", str(tmp), str(wrapper)], capture_output=True, text=True)
                if proc.returncode != 0:
                    raise RuntimeError(f"host build of the kernels failed:\n{proc.stderr}")
                os.replace(tmp, out)
        return out

    def build(self, codes: Iterable[str]) -> None:
        """Compiles several sources side by side."""
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            list(pool.map(self.library, codes))

    def __call__(self, code: str) -> HostModule:
        return HostModule(self.library(code), kernel_names(code), self.launched)


class HostRuntime(KernelRuntime):
    """NumPy arrays and host-built kernel modules; `launched` counts the launches of each kernel."""

    def __init__(self, compiler: HostCompiler) -> None:
        super().__init__(np, compiler, HostStream, lambda array, stream: np.array(array))
        self.compiler = compiler

    @property
    def launched(self) -> Counter[str]:
        return self.compiler.launched

    @contextmanager
    def recording(self) -> Iterator[set[str]]:
        """The set, filled on exit, of the kernels launched inside the block."""
        before = Counter(self.launched)
        ran: set[str] = set()
        yield ran
        ran.update(k for k, n in self.launched.items() if n > before[k])
