"""What the run ran on and the GPU's state while it ran: package versions, nvidia-smi samples and
the memory pools, so that each figure in the JSON can be read against its machine."""
from __future__ import annotations

import gc
import os
import platform
import subprocess
import sys
from importlib import metadata
from typing import Any

from facestream.benchmarks.gpu_bench.config import DISTRIBUTIONS


def versions(backend: str) -> dict[str, Any]:
    """Python, the CPU cores and the versions of what the figures depend on; on the gpu backend
    also the device, its driver and CUDA."""
    from facestream.engines.backend import probe_gpu

    v: dict[str, Any] = {"python": platform.python_version(), "cpu_cores": os.cpu_count()}
    for dist in DISTRIBUTIONS:
        try:
            v[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    if backend != "gpu":
        return v
    import cupy as cp

    g = probe_gpu()
    v.update(device=g.name, compute_capability=g.compute_capability, memory_gb=g.memory_gb, cuda_driver=g.driver,
             cuda_runtime=cp.cuda.runtime.runtimeGetVersion(), nvidia_driver=_smi("driver_version"))
    return v


def _smi(fields: str) -> str | None:
    """nvidia-smi's CSV answer for GPU 0's `fields`, or None where it does not answer."""
    try:
        out = subprocess.run(["nvidia-smi", "-i", "0", f"--query-gpu={fields}", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


def gpu_load() -> dict[str, float | None]:
    """One sample of the GPU's and NVDEC's utilisation (%) and the memory in use (MiB), from nvidia-smi."""
    both = (_smi("utilization.gpu,memory.used") or "").split(",")
    return {"gpu_percent": _number(both[0]) if len(both) == 2 else None,
            "memory_used_mb": _number(both[1]) if len(both) == 2 else None,
            "nvdec_percent": _number(_smi("utilization.decoder"))}


def gpu_memory() -> dict[str, float | None]:
    """GPU memory in MiB: CuPy's pool (in use, held), PyTorch's allocator (where PyTorch runs
    here) and the device's total in use (nvidia-smi: also NVDEC surfaces and contexts)."""
    out: dict[str, float | None] = dict.fromkeys(("cupy_used_mb", "cupy_held_mb", "torch_allocated_mb",
                                                  "torch_reserved_mb", "device_used_mb"))
    if "cupy" not in sys.modules:
        return out
    import cupy as cp

    pool = cp.get_default_memory_pool()
    out["cupy_used_mb"], out["cupy_held_mb"] = pool.used_bytes() / 2**20, pool.total_bytes() / 2**20
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_initialized():
        out["torch_allocated_mb"] = torch.cuda.memory_allocated() / 2**20
        out["torch_reserved_mb"] = torch.cuda.memory_reserved() / 2**20
    out["device_used_mb"] = _number(_smi("memory.used"))
    return out


def release_memory() -> None:
    """Frees what the pools hold but nothing uses, so the next measurement starts level."""
    gc.collect()
    if "cupy" in sys.modules:
        import cupy as cp

        cp.get_default_memory_pool().free_all_blocks()
        cp.get_default_pinned_memory_pool().free_all_blocks()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_initialized():
        torch.cuda.empty_cache()
