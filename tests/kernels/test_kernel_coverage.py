"""Every kernel of every kernel file is compared with its reference by some CPU test here: a new
kernel without one fails this test."""
from __future__ import annotations

import importlib
from pathlib import Path

from .sources import all_kernels


def _declared() -> dict[str, list[str]]:
    """Kernel -> the tests of this folder that declare it with @checks."""
    out: dict[str, list[str]] = {}
    for path in sorted(Path(__file__).parent.glob("test_*.py")):
        module = importlib.import_module(f"{__package__}.{path.stem}")
        for name, test in vars(module).items():
            for kernel in getattr(test, "kernels", ()) if name.startswith("test_") else ():
                out.setdefault(kernel, []).append(f"{path.name}::{name}")
    return out


def test_every_kernel_has_a_cpu_check():
    kernels = all_kernels()
    declared = _declared()
    missing = sorted(f"{k} ({kernels[k]})" for k in kernels if k not in declared)
    assert not missing, f"kernels without a CPU check: {missing}"
    unknown = sorted(set(declared) - set(kernels))
    assert not unknown, f"checks declared for kernels that do not exist: {unknown}"
