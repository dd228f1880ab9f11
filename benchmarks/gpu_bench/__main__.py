"""`python -m facestream.benchmarks.gpu_bench`, as benchmarks/gpu/run.sh runs it."""
from facestream.benchmarks.gpu_bench.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
