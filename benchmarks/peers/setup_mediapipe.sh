#!/usr/bin/env bash
# Create benchmarks/peers/.venv-mediapipe with MediaPipe 0.10.14 (legacy `solutions` API).
# MediaPipe 0.10.14 pins protobuf < 5, which clashes with the project's own environment,
# so it lives in a virtual environment of its own. Safe to run again: an existing
# environment with the right version is kept.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="${MEDIAPIPE_VENV:-$here/.venv-mediapipe}"
python="${PYTHON:-python3}"
if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c 'import mediapipe, sys; sys.exit(mediapipe.__version__ != "0.10.14")' 2>/dev/null; then
    echo "$venv"
    exit 0
fi
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip >&2
"$venv/bin/python" -m pip install --quiet "mediapipe==0.10.14" "numpy<2" "opencv-contrib-python-headless<4.11" "av" >&2
"$venv/bin/python" -c 'import mediapipe; print("mediapipe", mediapipe.__version__)' >&2
echo "$venv"
