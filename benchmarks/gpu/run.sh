#!/usr/bin/env bash
# The GPU backend's check on a GPU machine, in one offline call (prepare the bundle first with
# benchmarks/gpu/prepare.sh on a machine with PyPI):
#
#   bash benchmarks/gpu/run.sh BUNDLE OUTDIR          # from anywhere; BUNDLE e.g. .gpu-bundle
#
# It runs with the machine's own Python (FACESTREAM_GPU_PYTHON, default python3): no venv, no
# package index, no build. The bundle's wheels go into a temporary folder put on PYTHONPATH,
# with a folder of links that maps the repository onto the `facestream.*` packages.
# Phases, each under `timeout` and each writing into OUTDIR as soon as it ends:
#   setup      unpack and install the bundle (grpcio/protobuf only where the image's are too old)
#   env        driver libraries (NVDEC, NVENC), versions, the backend plan       env.json
#   gpu-tests  pytest -m "gpu or tensorrt" tests/gpu tests/test_gpu_output*.py tests/test_gpu_runners.py  pytest-gpu.xml, .log
#   cpu-tests  the CPU-side checks of the GPU code (kernels compile, backend choice, batching)
#                                                                                pytest-cpu.log
#   gpu-bench  benchmarks/gpu_bench/ (its sections and their budgets: its docstring)
#                                                                                gpu_bench.json, .log
# plus run.log (all output) and summary.txt (per phase: pass, fail, timeout or skipped): 8 files.
# Budgets in seconds (environment): SETUP_S 30, ENV_S 30, GPU_TESTS_S 130, CPU_TESTS_S 60,
# BENCH_S 260 (the benchmark gets 25 s less, for starting and writing), TEST_TIMEOUT_S 100 (one
# test): 510 s, and at most 10 s more a phase for a command that ignores the interrupt at its
# budget's end (then it is killed), so under 9.5 minutes in all.
# Exit status: 0 when every phase passed; 3 when none failed but the GPU phases were skipped
# (no GPU here); 1 when a phase failed or ran out of time; 2 for a usage error.
set -u -o pipefail

if [ $# -ne 2 ] || [ ! -d "$1" ]; then
  echo "usage: run.sh BUNDLE OUTDIR  (BUNDLE: a folder made by benchmarks/gpu/prepare.sh)" >&2
  exit 2
fi
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
BUNDLE="$(cd "$1" && pwd)"
mkdir -p "$2"
OUTDIR="$(cd "$2" && pwd)"
PY="${FACESTREAM_GPU_PYTHON:-python3}"
SETUP_S="${SETUP_S:-30}"
ENV_S="${ENV_S:-30}"
GPU_TESTS_S="${GPU_TESTS_S:-130}"
CPU_TESTS_S="${CPU_TESTS_S:-60}"
BENCH_S="${BENCH_S:-260}"
TEST_TIMEOUT_S="${TEST_TIMEOUT_S:-100}"
NO_GPU=3

NAMES=()
STATUSES=()
TIMES=()
BUDGETS=()
DETAILS=()

summary() {
  {
    echo "facestream GPU run, $(date '+%Y-%m-%dT%H:%M:%S%z'), host $(uname -n), python $PY"
    printf '%-10s %-8s %7s %7s  %s\n' phase status seconds budget detail
    local i
    for i in "${!NAMES[@]}"; do
      printf '%-10s %-8s %7s %7s  %s\n' "${NAMES[$i]}" "${STATUSES[$i]}" "${TIMES[$i]}" "${BUDGETS[$i]}" "${DETAILS[$i]}"
    done
  } >"$OUTDIR/summary.txt"
}

record() {  # record NAME STATUS SECONDS BUDGET DETAIL
  NAMES+=("$1")
  STATUSES+=("$2")
  TIMES+=("$3")
  BUDGETS+=("$4")
  DETAILS+=("$5")
  summary
  echo "== phase $1: $2 after $3 s (budget $4 s) $5"
}

status_of() {  # status_of RC -> pass, timeout or fail
  case "$1" in
    0) echo pass ;;
    124 | 137) echo timeout ;;
    *) echo fail ;;
  esac
}

timed() {  # timed BUDGET LOG CMD...: the command under timeout (SIGINT first, so pytest writes its
  # report), its output also in LOG unless LOG is "-"; sets RC
  local budget=$1 log=$2
  shift 2
  if [ "$budget" -le 0 ]; then
    echo "no time left for: $*"
    RC=124
  elif [ "$log" = "-" ]; then
    timeout -s INT -k 10 "$budget" "$@"
    RC=$?
  else
    timeout -s INT -k 10 "$budget" "$@" 2>&1 | tee "$log"
    RC=${PIPESTATUS[0]}
  fi
}

setup() {
  local t0=$SECONDS wheels="$WORK/wheels" detail=""
  local left=$SETUP_S
  mkdir -p "$wheels" "$SITE" "$PKG/facestream"
  # the repository as the facestream.* packages (the pyproject's package-dir mapping)
  ln -s "$ROOT/proto/facestream/v1" "$PKG/facestream/proto"
  for d in server client engines benchmarks; do ln -s "$ROOT/$d" "$PKG/facestream/$d"; done
  export PYTHONPATH="$SITE:$PKG${PYTHONPATH:+:$PYTHONPATH}"
  if [ ! -f "$BUNDLE/wheels.tar.xz" ]; then
    record setup fail $((SECONDS - t0)) "$SETUP_S" "no wheels.tar.xz in $BUNDLE: run benchmarks/gpu/prepare.sh"
    return
  fi
  "$PY" - "$BUNDLE/bundle.json" <<'EOF'
import json, sys
have = "%d.%d" % sys.version_info[:2]
want = json.load(open(sys.argv[1]))["python"]
print(f"bundle made for Python {want}; this is {have}" + ("" if want == have else ": PyNvVideoCodec will not load"))
EOF
  # Python's own xz, not the xz binary, which a minimal image may lack
  timed "$left" - "$PY" -c '
import sys, tarfile
with tarfile.open(sys.argv[1], "r:xz") as t:
    t.extractall(sys.argv[2], filter="data") if hasattr(tarfile, "data_filter") else t.extractall(sys.argv[2])
' "$BUNDLE/wheels.tar.xz" "$wheels"
  if [ "$RC" -eq 0 ]; then
    left=$((SETUP_S - (SECONDS - t0)))
    timed "$left" - "$PY" -m pip install --quiet --no-index --no-deps --no-compile --no-cache-dir \
      --target "$SITE" "$wheels"/main/*.whl
  fi
  if [ "$RC" -eq 0 ]; then
    local check='
try:
    import facestream.proto, grpc_health.v1.health, grpc_reflection.v1alpha.reflection
except Exception as exc:
    raise SystemExit(f"facestream.proto and the grpc companions do not import: {type(exc).__name__}: {exc}")
'
    left=$((SETUP_S - (SECONDS - t0)))
    timed "$left" - "$PY" -c "$check"
    if [ "$RC" -ne 0 ] && [ "$RC" -ne 124 ]; then
      echo "the image's grpcio/protobuf are older than the stubs need: installing the bundle's"
      left=$((SETUP_S - (SECONDS - t0)))
      timed "$left" - "$PY" -m pip install --quiet --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target "$SITE" "$wheels"/fallback/*.whl
      left=$((SETUP_S - (SECONDS - t0)))
      [ "$RC" -eq 0 ] && timed "$left" - "$PY" -c "$check"
      detail="grpcio and protobuf from the bundle"
    else
      detail="the image's grpcio and protobuf"
    fi
  fi
  # pytest-asyncio 1.x needs pytest 8.4: with an older pytest it stays out (the async tests then
  # fail, and say why) rather than stopping every test from loading
  if ! "$PY" -c '
import re, sys, pytest
have = tuple(int(x) for x in re.findall(r"\d+", pytest.__version__)[:2])
sys.exit(0 if have >= (8, 4) else f"pytest {pytest.__version__} is older than pytest-asyncio 1.x needs (8.4)")
'; then
    export PYTEST_ADDOPTS="${PYTEST_ADDOPTS:+$PYTEST_ADDOPTS }-p no:asyncio"
    detail="$detail; pytest-asyncio left out"
  fi
  record setup "$(status_of "$RC")" $((SECONDS - t0)) "$SETUP_S" "$detail"
}

pytest_counts() {  # pytest_counts XML -> "PASSED SKIPPED|N passed, ... (first skip reason)"
  "$PY" - "$1" <<'EOF'
import sys
import xml.etree.ElementTree as ET
try:
    root = ET.parse(sys.argv[1]).getroot()
except (OSError, ET.ParseError) as exc:
    print(f"0 0|no report: {exc}")
    sys.exit()
cases = list(root.iter("testcase"))
failed = sum(1 for c in cases if c.find("failure") is not None)
errors = sum(1 for c in cases if c.find("error") is not None)
skips = [c.find("skipped") for c in cases if c.find("skipped") is not None]
passed = len(cases) - failed - errors - len(skips)
reason = (skips[0].get("message") or "").replace("\n", " ")[:160] if skips else ""
text = f"{passed} passed, {failed} failed, {errors} errors, {len(skips)} skipped"
print(f"{passed} {len(skips)}|{text}" + (f" (first skip: {reason})" if reason else ""))
EOF
}

main() {
  echo "== facestream GPU run from $ROOT, bundle $BUNDLE, results in $OUTDIR"
  echo "== budgets (s): setup $SETUP_S, env $ENV_S, gpu-tests $GPU_TESTS_S (each test $TEST_TIMEOUT_S)," \
    "cpu-tests $CPU_TESTS_S, gpu-bench $BENCH_S"
  WORK="$(mktemp -d "${TMPDIR:-/tmp}/facestream-gpu.XXXXXX")"
  SITE="$WORK/site"
  PKG="$WORK/pkg"
  trap 'rm -rf "$WORK"' EXIT
  export PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
  export PIP_NO_INDEX=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 PIP_ROOT_USER_ACTION=ignore
  if [ -z "${FACESTREAM_MEDIA:-}" ]; then
    FACESTREAM_MEDIA="$BUNDLE/media"
    [ -f "$FACESTREAM_MEDIA/short_hamilton_clip.mp4" ] || FACESTREAM_MEDIA="$ROOT/../shared/media"
  fi
  export FACESTREAM_MEDIA
  # NVDEC and NVENC are loaded by name (dlopen): the driver's own folder, where there is one
  if [ -d /usr/local/nvidia/lib64 ]; then
    export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}/usr/local/nvidia/lib64"
  fi
  cd "$ROOT" || exit 2

  setup

  local t0=$SECONDS detail
  timed "$ENV_S" - "$PY" benchmarks/gpu/env_report.py --out "$OUTDIR/env.json"
  local gpu=yes
  case "$RC" in
    0) detail="GPU found" ;;
    "$NO_GPU") gpu=no; detail="no GPU here"; RC=0 ;;
    *) detail="see env.json and run.log" ;;
  esac
  record env "$(status_of "$RC")" $((SECONDS - t0)) "$ENV_S" "$detail"

  t0=$SECONDS
  # one pytest process per test file: a crash (a segfault in a driver, say) loses only that file,
  # and every file's failures are printed in full (--tb=short -rA) before the next one starts
  rm -f "$OUTDIR/pytest-gpu.xml" "$OUTDIR/pytest-gpu.log"
  local worst=0 i=0 f reports=()
  for f in tests/gpu/test_*.py tests/test_gpu_output*.py tests/test_gpu_runners.py; do
    timed $((GPU_TESTS_S - (SECONDS - t0))) "$WORK/gpu-$i.log" "$PY" -m pytest -m "gpu or tensorrt" "$f" -v \
      -rA --tb=short -p no:cacheprovider --timeout="$TEST_TIMEOUT_S" --junitxml="$WORK/junit-$i.xml"
    cat "$WORK/gpu-$i.log" >>"$OUTDIR/pytest-gpu.log"
    [ -f "$WORK/junit-$i.xml" ] && reports+=("$WORK/junit-$i.xml")
    { [ "$RC" -ne 0 ] && [ "$RC" -ne 5 ]; } && worst=$RC   # 5: every test deselected
    i=$((i + 1))
  done
  RC=$worst
  "$PY" - "$OUTDIR/pytest-gpu.xml" "${reports[@]}" <<'EOF2'
import sys
import xml.etree.ElementTree as ET
merged = ET.Element("testsuites")
for path in sys.argv[2:]:
    root = ET.parse(path).getroot()
    merged.extend(root.iter("testsuite"))
ET.ElementTree(merged).write(sys.argv[1])
EOF2
  local status counts
  status="$(status_of "$RC")"
  counts="$(pytest_counts "$OUTDIR/pytest-gpu.xml")"
  if [ "$status" = pass ] && [ "${counts%% *}" = 0 ]; then
    status=skipped
  fi
  record gpu-tests "$status" $((SECONDS - t0)) "$GPU_TESTS_S" "${counts#*|}"

  t0=$SECONDS
  local cpu_tests=()
  for f in tests/kernels tests/test_gpu_kernels_compile.py tests/test_gpu_backend_cpu.py tests/test_batching.py tests/test_model_graph.py; do
    [ -e "$f" ] && cpu_tests+=("$f")
  done
  timed "$CPU_TESTS_S" "$OUTDIR/pytest-cpu.log" "$PY" -m pytest -q -rs -p no:cacheprovider \
    --timeout="$TEST_TIMEOUT_S" "${cpu_tests[@]}"
  record cpu-tests "$(status_of "$RC")" $((SECONDS - t0)) "$CPU_TESTS_S" "$(tail -n 1 "$OUTDIR/pytest-cpu.log")"

  t0=$SECONDS
  timed "$BENCH_S" "$OUTDIR/gpu_bench.log" "$PY" -m facestream.benchmarks.gpu_bench \
    --out "$OUTDIR/gpu_bench.json" --budget $((BENCH_S - 25))
  if [ "$RC" -eq "$NO_GPU" ]; then
    record gpu-bench skipped $((SECONDS - t0)) "$BENCH_S" "no GPU here"
  else
    record gpu-bench "$(status_of "$RC")" $((SECONDS - t0)) "$BENCH_S" "see gpu_bench.json"
  fi

  local rc=0
  if [[ " ${STATUSES[*]} " == *" fail "* || " ${STATUSES[*]} " == *" timeout "* ]]; then
    rc=1
  elif [ "$gpu" = no ] || [[ " ${STATUSES[*]} " == *" skipped "* ]]; then
    rc=$NO_GPU
  fi
  echo "exit $rc" >>"$OUTDIR/summary.txt"
  echo "== summary"
  cat "$OUTDIR/summary.txt"
  return "$rc"
}

main 2>&1 | tee "$OUTDIR/run.log"
exit "${PIPESTATUS[0]}"
