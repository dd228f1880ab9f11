#!/usr/bin/env bash
# Builds the facestream server image with podman; the build itself needs no network.
#
#   deploy/build-image.sh [cpu|gpu]      # default cpu; the image name is the last line of stdout
#
# The project is made into a wheel and its dependencies are downloaded as wheels for the image's
# Python (3.11 for cpu, 3.12 for gpu) beforehand; the Containerfile installs them with --no-index.
#
# Environment:
#   BASE_IMAGE  base of both stages. cpu default: a Debian bookworm made here with mmdebstrap
#               (python3, python3-venv, ca-certificates) and imported into podman; gpu default:
#               docker.io/nvidia/cuda:13.0.2-runtime-ubuntu24.04, pulled from its registry.
#   IMAGE       image name (default localhost/facestream), tagged :VARIANT and :VARIANT-INPUTS
#   PYTHON      the Python (with pip and setuptools) that makes the wheels (default .venv/bin/python)
#   FACESTREAM_IMAGE_CACHE  where the base tarball and the dependency wheels are kept, keyed by
#               their inputs (default /tmp/cache/facestream-image)
#   CONTAINERS_CONF  podman settings (default deploy/containers.conf: runc, no default ulimits)
#
# An image whose inputs (Containerfile, base image, wheels) have not changed is not built again.
set -euo pipefail

VARIANT=${1:-cpu}
case "$VARIANT" in
  cpu) PY_VERSION=3.11; EXTRAS="" ;;
  gpu) PY_VERSION=3.12; EXTRAS="[gpu]" ;;
  *) echo "usage: $0 [cpu|gpu]" >&2; exit 2 ;;
esac
DEPLOY=$(cd "$(dirname "$0")" && pwd)
REPO=$(dirname "$DEPLOY")
CACHE=${FACESTREAM_IMAGE_CACHE:-/tmp/cache/facestream-image}
IMAGE=${IMAGE:-localhost/facestream}
if [ -z "${PYTHON:-}" ]; then
  if [ -x "$REPO/.venv/bin/python" ]; then PYTHON=$REPO/.venv/bin/python; else PYTHON=python3; fi
fi
export CONTAINERS_CONF=${CONTAINERS_CONF:-$DEPLOY/containers.conf}

log() { echo "build-image: $*" >&2; }
# Runs a command with its output kept in a log, shown only when it fails.
quiet() { "$@" >"$WORK/step.log" 2>&1 || { cat "$WORK/step.log" >&2; log "failed: $*"; exit 1; }; }
key16() { sha256sum | cut -c1-16; }

command -v podman >/dev/null || { log "podman is not installed (Debian: apt-get install podman runc)"; exit 1; }
mkdir -p "$CACHE"
WORK=$(mktemp -d "$CACHE/context.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
started=$SECONDS

# The base: a Debian made here unless BASE_IMAGE names one (the gpu image always pulls its CUDA base).
debian_base() {
  command -v mmdebstrap >/dev/null || { log "mmdebstrap is not installed: install it, or set BASE_IMAGE"; exit 1; }
  # merged /usr made by mmdebstrap's hook rather than the usrmerge package (which brings Perl);
  # no manuals, translations or documentation other than the copyright files
  local args=(--variant=apt --include=python3,python3-venv,ca-certificates
              --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr
              --dpkgopt=path-exclude=/usr/share/man/* --dpkgopt=path-exclude=/usr/share/locale/*
              --dpkgopt=path-exclude=/usr/share/doc/* --dpkgopt=path-include=/usr/share/doc/*/copyright
              bookworm)
  local key; key=$(printf '%s\n' "${args[@]}" | key16)
  local name=localhost/facestream-base:bookworm-$key
  if ! podman image exists "$name"; then
    local tar=$CACHE/base-$key.tar
    if [ ! -s "$tar" ]; then
      log "making the Debian base with mmdebstrap"
      quiet mmdebstrap "${args[@]}" "$CACHE/base-$key.part.tar"
      mv "$CACHE/base-$key.part.tar" "$tar"
    fi
    podman import --quiet "$tar" "$name" >/dev/null
  fi
  echo "$name"
}
if [ -n "${BASE_IMAGE:-}" ]; then
  BASE=$BASE_IMAGE
elif [ "$VARIANT" = cpu ]; then
  BASE=$(debian_base)
else
  BASE=docker.io/nvidia/cuda:13.0.2-runtime-ubuntu24.04
fi
podman image exists "$BASE" || podman pull --quiet "$BASE" >/dev/null
BASE_ID=$(podman image inspect --format '{{.Id}}' "$BASE")

# The project's wheel, built from a copy of what git would commit (tracked and new files).
mkdir -p "$WORK/src" "$WORK/wheels/project" "$WORK/wheels/deps"
"$PYTHON" - "$REPO" "$WORK/src" <<'EOF'
import shutil, subprocess, sys
from pathlib import Path

repo, dest = Path(sys.argv[1]), Path(sys.argv[2])
listed = subprocess.run(["git", "-C", str(repo), "ls-files", "-z", "--cached", "--others", "--exclude-standard",
                         "--", "pyproject.toml", "README.md", "proto", "server", "engines", "client", "benchmarks"],
                        check=True, capture_output=True).stdout.decode().split("\0")
for name in filter(None, listed):
    if (repo / name).is_file():
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(repo / name, dest / name)
EOF
quiet "$PYTHON" -m pip wheel --no-deps --no-build-isolation --wheel-dir "$WORK/wheels/project" "$WORK/src"
WHEEL=$(ls "$WORK"/wheels/project/facestream-*.whl)

# Its dependencies as wheels for the image's Python, cached by the dependency list.
DEPS_KEY=$("$PYTHON" - "$REPO/pyproject.toml" "$VARIANT" "$PY_VERSION" <<'EOF' | key16
import json, sys, tomllib

project = tomllib.load(open(sys.argv[1], "rb"))["project"]
extras = project["optional-dependencies"]["gpu"] if sys.argv[2] == "gpu" else []
print(json.dumps([project["dependencies"], extras, sys.argv[3]]))
EOF
)
DEPS=$CACHE/deps-$VARIANT-$DEPS_KEY
if [ ! -e "$DEPS/.complete" ]; then
  log "downloading the dependency wheels for Python $PY_VERSION into $DEPS"
  rm -rf "$DEPS"
  quiet "$PYTHON" -m pip download --dest "$DEPS" --only-binary=:all: --python-version "$PY_VERSION" \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux_2_5_x86_64 --platform manylinux1_x86_64 \
    "$WHEEL$EXTRAS"
  rm -f "$DEPS"/facestream-*.whl
  touch "$DEPS/.complete"
fi
cp -l "$DEPS"/*.whl "$WORK/wheels/deps/" 2>/dev/null || cp "$DEPS"/*.whl "$WORK/wheels/deps/"
cp "$DEPLOY/Containerfile.$VARIANT" "$WORK/Containerfile"

# The image, unless one with the same inputs exists.
KEY=$({
  cat "$WORK/Containerfile"
  echo "$BASE_ID"
  (cd "$WORK/wheels/deps" && sha256sum ./*.whl)
  "$PYTHON" - "$WHEEL" <<'EOF'
import hashlib, sys, zipfile

digest = hashlib.sha256()
with zipfile.ZipFile(sys.argv[1]) as wheel:  # the contents: the zip's own timestamps vary between builds
    for name in sorted(wheel.namelist()):
        digest.update(name.encode() + b"\0" + wheel.read(name))
print(digest.hexdigest())
EOF
} | key16)
TAG=$IMAGE:$VARIANT-$KEY
if podman image exists "$TAG"; then
  log "up to date: $TAG"
else
  log "building $TAG on $BASE"
  podman build --quiet --network=none --pull=never --build-arg "BASE=$BASE" -t "$TAG" "$WORK" >/dev/null
fi
podman tag "$TAG" "$IMAGE:$VARIANT"
# Earlier builds of this variant give their space back (the layer cache of this one stays).
podman images --format '{{.Repository}}:{{.Tag}}' | grep -F "$IMAGE:$VARIANT-" | grep -vxF "$TAG" \
  | xargs -r podman rmi >/dev/null 2>&1 || true
log "done in $((SECONDS - started)) s; $(podman image inspect --format '{{.Size}}' "$TAG") bytes"
echo "$TAG"
