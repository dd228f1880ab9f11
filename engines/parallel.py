"""One thread pool for per-face work inside a frame (meshes, effects), shared by all sessions.

ONNX Runtime, OpenCV and NumPy's array loops release the GIL, so the faces of one frame can be
worked on side by side: a frame with several faces comes out sooner for the same total work.
Sharing one pool the size of the machine keeps many sessions from oversubscribing the cores.
"""
from __future__ import annotations

import functools
import os
from concurrent.futures import ThreadPoolExecutor


@functools.cache
def face_pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=os.cpu_count() or 1, thread_name_prefix="face")
