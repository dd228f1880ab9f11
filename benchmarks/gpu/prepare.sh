#!/usr/bin/env bash
# Gathers, on a machine that reaches PyPI, what the GPU test machine lacks, into DIR (inside the
# repository and git-ignored, e.g. .gpu-bundle, so that the device call carries it):
#
#   bash benchmarks/gpu/prepare.sh .gpu-bundle
#
#   DIR/wheels.tar.xz   the wheels, repacked uncompressed and xz-compressed together:
#                         main/      PyNvVideoCodec (trimmed), PyAV, pytest-asyncio,
#                                    grpcio-health-checking, grpcio-reflection, PyJWT,
#                                    onnx2torch (pure Python: the vision models on the image's
#                                    PyTorch where TensorRT is missing)
#                         fallback/  grpcio and protobuf as new as the generated stubs need,
#                                    installed by run.sh only where the image's own are older
#   DIR/media/          the test clip and photos (from FACESTREAM_MEDIA, default ../shared/media)
#   DIR/bundle.json     what is in it, for which Python, made by which recipe
#
# Environment: PYTHON (the Python whose pip downloads, default python3), FACESTREAM_BUNDLE_PYTHON
# (the target's Python version, default 3.12: the GPU image's), FACESTREAM_MEDIA.
# The tracked files plus DIR must stay under 60 MiB (what one device call may carry, with room
# for what it sends besides); the script fails when they do not.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
DIR="${1:?usage: prepare.sh DIR}"
PYTHON="${PYTHON:-python3}"
TARGET_PY="${FACESTREAM_BUNDLE_PYTHON:-3.12}"
MEDIA="${FACESTREAM_MEDIA:-$ROOT/../shared/media}"
LIMIT=$((60 * 1024 * 1024))

# PyAV 19 is not on the index (18.1.0 is the newest, and the pyproject allows <20). The grpc
# companions match the pinned grpcio (pyproject.toml); PyJWT is the server's, for HS256 tokens.
# onnx2torch needs onnx, torch and torchvision, which the image has (installed with --no-deps).
MAIN=(pynvvideocodec==2.2.4 av==18.1.0 pytest-asyncio==1.5.0 grpcio-health-checking==1.85.1
      grpcio-reflection==1.85.1 pyjwt==2.15.1 onnx2torch==1.5.15)
# The committed stubs refuse grpcio older than 1.85.1 and protobuf older than 7.35.1.
FALLBACK=(grpcio==1.85.1 protobuf==7.36.2)
PLATFORMS=()
for tag in manylinux_2_28 manylinux_2_27 manylinux_2_24 manylinux_2_17 manylinux2014; do
  PLATFORMS+=(--platform "${tag}_x86_64")
done

mkdir -p "$DIR"
DIR="$(cd "$DIR" && pwd)"
STAGE="$(mktemp -d "${TMPDIR:-/tmp}/facestream-bundle.XXXXXX")"
trap 'rm -rf "$STAGE"' EXIT

download() {  # download KIND PACKAGE...
  local kind=$1
  shift
  "$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: --python-version "$TARGET_PY" \
    --implementation cp "${PLATFORMS[@]}" --dest "$STAGE/download/$kind" "$@"
  "$PYTHON" "$HERE/repack_wheels.py" "$STAGE/download/$kind" "$STAGE/wheels/$kind"
}

echo "== wheels for CPython $TARGET_PY, manylinux x86_64"
download main "${MAIN[@]}"
download fallback "${FALLBACK[@]}"

echo "== compressing"
rm -rf "${DIR:?}/wheels.tar.xz" "${DIR:?}/media" "${DIR:?}/bundle.json"
tar -C "$STAGE/wheels" -cf - main fallback | xz -T0 -6 >"$DIR/wheels.tar.xz"

echo "== media from $MEDIA"
[ -f "$MEDIA/short_hamilton_clip.mp4" ] || { echo "no test clip in $MEDIA (set FACESTREAM_MEDIA)" >&2; exit 1; }
mkdir -p "$DIR/media"
cp "$MEDIA"/*.mp4 "$MEDIA"/*.jpg "$DIR/media/"
[ -f "$MEDIA/README.md" ] && cp "$MEDIA/README.md" "$DIR/media/"

recipe="$(cat "$HERE/prepare.sh" "$HERE/repack_wheels.py" | sha256sum | cut -c1-16)"
"$PYTHON" - "$DIR/bundle.json" "$TARGET_PY" "$recipe" "$STAGE/wheels" <<'EOF'
import json, sys, time
from pathlib import Path
out, python, recipe, wheels = sys.argv[1], sys.argv[2], sys.argv[3], Path(sys.argv[4])
names = {kind: sorted(p.name for p in (wheels / kind).glob("*.whl")) for kind in ("main", "fallback")}
Path(out).write_text(json.dumps({"python": python, "recipe": recipe, "made": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                                 "wheels": names}, indent=2) + "\n")
EOF

bundle=$(du -cb "$DIR" | tail -1 | cut -f1)
tracked=0
if git -C "$ROOT" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  # files deleted in the work tree but still in the index are left out (du reports them missing)
  tracked=$(cd "$ROOT" && { git ls-files -z | du --files0-from=- -cb 2>/dev/null || true; } | tail -1 | cut -f1)
fi
total=$((bundle + tracked))
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
echo "== sizes: wheels.tar.xz $(mib "$(stat -c %s "$DIR/wheels.tar.xz")"), media $(mib "$(du -cb "$DIR/media" | tail -1 | cut -f1)")"
echo "bundle $(mib "$bundle") + tracked files $(mib "$tracked") = $(mib "$total") (limit $(mib "$LIMIT"))"
if [ "$total" -gt "$LIMIT" ]; then
  echo "too large for one device call: shrink the bundle or the tracked files" >&2
  exit 1
fi
