"""The CUDA kernel files shipped under engines/*/kernels/ and the kernels they define."""
from __future__ import annotations

from pathlib import Path

import facestream.engines
from facestream.engines.kernel_runtime import kernel_source

from .host_kernels import kernel_names

ENGINES = Path(facestream.engines.__file__).resolve().parent
KERNEL_FILES = tuple(
    (f"facestream.engines.{path.parent.parent.name}", path.name) for path in sorted(ENGINES.glob("*/kernels/*.cu"))
)


def all_kernels() -> dict[str, str]:
    """Kernel name -> "package/file" for every extern "C" kernel of every kernel file."""
    return {
        kernel: f"{package}/{name}"
        for package, name in KERNEL_FILES
        for kernel in kernel_names(kernel_source(package, name))
    }
