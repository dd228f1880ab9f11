#!/usr/bin/env bash
# One call on a GPU machine: install the GPU extras (carried wheels first), run the GPU tests and
# the GPU benchmark, and leave logs and results in $OUT (default: benchmarks/results/gpu-run).
#
#   bash benchmarks/gpu_run.sh            # from the repository root
#
# Wheels: put cupy-cuda12x / pynvvideocodec / tensorrt wheels (and their dependencies) in
# ./wheels or $WHEELS; they are installed with --no-index. Without wheels the script tries the
# package index, and carries on with what is importable (TensorRT missing: ONNX Runtime path).
set -u
cd "$(dirname "$0")/.."
OUT="${OUT:-benchmarks/results/gpu-run}"
mkdir -p "$OUT"
LOG="$OUT/gpu_run.log"
PY="${PY:-.venv/bin/python}"
[ -x "$PY" ] || PY=python3
exec > >(tee -a "$LOG") 2>&1
echo "== $(date -Is) facestream GPU run on $(hostname)"
nvidia-smi || echo "nvidia-smi not available"

if [ ! -x .venv/bin/python ] && [ "$PY" = python3 ]; then
  python3 -m venv .venv && PY=.venv/bin/python
  "$PY" -m pip install -q -e '.[dev]' || echo "!! pip install -e .[dev] failed"
fi
WHEELS="${WHEELS:-wheels}"
if [ -d "$WHEELS" ] && ls "$WHEELS"/*.whl >/dev/null 2>&1; then
  echo "== installing carried wheels from $WHEELS"
  "$PY" -m pip install -q --no-index --find-links "$WHEELS" "$WHEELS"/*.whl || echo "!! some carried wheels failed to install"
else
  echo "== no carried wheels; trying the package index for the gpu extras"
  for pkg in "cupy-cuda12x>=13" "pynvvideocodec>=2.0" "tensorrt>=10"; do
    timeout 300 "$PY" -m pip install -q "$pkg" || echo "!! could not install $pkg"
  done
fi
"$PY" - <<'PYEOF'
import importlib
for m in ("cupy", "PyNvVideoCodec", "tensorrt", "onnxruntime"):
    try:
        mod = importlib.import_module(m)
        print(f"{m}: {getattr(mod, '__version__', '?')}")
    except Exception as exc:
        print(f"{m}: NOT AVAILABLE ({exc})")
from facestream.engines.backend import gpu_plan, probe_gpu, resolve
print("probe:", probe_gpu())
for p in gpu_plan().placements():
    print("plan:", p)
print("auto ->", resolve("auto").name)
PYEOF

echo "== pytest -m gpu"
"$PY" -m pytest -m "gpu or tensorrt" -v -rs tests/gpu --junitxml="$OUT/pytest-gpu.xml" 2>&1 | tee "$OUT/pytest-gpu.log"
echo "pytest exit: ${PIPESTATUS[0]}"

echo "== CPU-side GPU checks (nvcc compile, backend choice, batching)"
"$PY" -m pytest -q tests/test_gpu_kernels_compile.py tests/test_gpu_backend_cpu.py tests/test_batching.py 2>&1 | tail -5

echo "== benchmark"
timeout 1500 "$PY" -m facestream.benchmarks.gpu_bench --out "$OUT/gpu_bench.json" ${BENCH_ARGS:-} \
  && cp "$OUT/gpu_bench.json" "benchmarks/results/" 2>/dev/null
echo "benchmark exit: $?"
echo "== done $(date -Is); logs in $OUT"
