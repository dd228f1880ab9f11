"""Peers the benchmark compares with. They run in their own virtual environment
(setup_mediapipe.sh, shared with the vision benchmark): MediaPipe 0.10.14 pins protobuf < 5.

`run_peers` sets the environment up if needed (or takes an existing one) and runs
mediapipe_peer.py and opencv_mediapipe.py on the same clip and frame count as our run.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent / "peers"
SETUP = HERE / "setup_mediapipe.sh"
SCRIPTS = {"mediapipe": HERE / "mediapipe_peer.py", "opencv_mediapipe": HERE / "opencv_mediapipe.py"}


def mediapipe_python(setup: bool = True) -> tuple[str | None, str]:
    """The MediaPipe environment's python and a note; creates the environment when `setup`."""
    venv = os.environ.get("MEDIAPIPE_VENV", str(HERE / ".venv-mediapipe"))
    py = Path(venv) / "bin" / "python"
    if py.exists() and not setup:
        return str(py), "existing environment"
    if not setup:
        return None, f"no MediaPipe environment at {venv} (run {SETUP})"
    try:
        out = subprocess.run(["bash", str(SETUP)], check=True, capture_output=True, text=True, timeout=1800)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        tail = (getattr(exc, "stderr", "") or "")[-400:]
        return None, f"MediaPipe environment could not be set up: {tail.strip()}"
    return str(Path(out.stdout.strip().splitlines()[-1]) / "bin" / "python"), "set up by setup_mediapipe.sh"


def run_peer(python: str, name: str, clip: str, frames: int, max_faces: int = 1,
             timeout: float = 900) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.json"
        proc = subprocess.run([python, str(SCRIPTS[name]), clip, str(frames), str(out), str(max_faces)],
                              capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0 or not out.exists():
            return {"error": f"{SCRIPTS[name].name} failed ({proc.returncode}): {proc.stderr[-600:].strip()}"}
        return json.loads(out.read_text())


def run_peers(clip: str, frames: int, *, setup: bool = True, max_faces: int = 1, log=None) -> dict[str, Any]:
    log = log or (lambda msg: print(msg, file=sys.stderr))
    python, note = mediapipe_python(setup)
    if python is None:
        log(f"peers skipped: {note}")
        return {"skipped": note}
    res: dict[str, Any] = {"python": python, "environment": note, "frames": frames, "max_num_faces": max_faces}
    for name in SCRIPTS:
        log(f"peer: {name} on {frames} frames")
        res[name] = run_peer(python, name, clip, frames, max_faces)
    return res
