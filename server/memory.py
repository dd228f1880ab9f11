"""Hands freed memory back to the operating system once the server goes idle.

Sessions allocate and free large buffers (frames, codec contexts, model arenas); glibc keeps
freed heap pages mapped, so without a trim the resident size stays at its high-water mark after
a burst of sessions (or of refused streams). A trim shortly after streams end keeps RSS a faithful
signal for operators.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging

log = logging.getLogger("facestream.memory")

_libc = None
try:
    _name = ctypes.util.find_library("c")
    if _name:
        _libc = ctypes.CDLL(_name)
        _libc.malloc_trim.argtypes = [ctypes.c_size_t]
except (OSError, AttributeError):  # not glibc
    _libc = None


def settle() -> None:
    """Once the server has loaded its models: what exists now lives as long as the process, so the
    collections of `release` need not walk it again (they hold the GIL while they run)."""
    gc.collect()
    gc.freeze()


def release() -> None:
    """Collects reference cycles (a failed session's exception and frames can hold its buffers), then
    returns free heap pages to the OS (where libc supports it)."""
    gc.collect()
    if _libc is not None:
        try:
            _libc.malloc_trim(0)
        except Exception:  # pragma: no cover
            log.debug("malloc_trim failed", exc_info=True)
