"""CPU (psutil) and GPU (pynvml or nvidia-smi, where present) utilisation sampled during a run,
and the description of the machine a result was measured on."""
from __future__ import annotations

import datetime as dt
import os
import platform
import shutil
import subprocess
import threading
import time
from importlib import metadata
from typing import Any

try:
    import psutil
except ImportError:  # the bench extra is not installed: utilisation is omitted
    psutil = None


def _gpu_reader():
    """A function returning [(util %, memory used MiB), ...] per GPU, or None without a GPU."""
    try:
        import pynvml

        pynvml.nvmlInit()
        handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())]
        if not handles:
            return None

        def read():
            out = []
            for h in handles:
                u = pynvml.nvmlDeviceGetUtilizationRates(h)
                m = pynvml.nvmlDeviceGetMemoryInfo(h)
                out.append((float(u.gpu), m.used / 2**20))
            return out

        return read
    except Exception:
        pass
    smi = shutil.which("nvidia-smi")
    if not smi:
        return None

    def read_smi():
        text = subprocess.run([smi, "--query-gpu=utilization.gpu,memory.used", "--format=csv,noheader,nounits"],
                              capture_output=True, text=True, timeout=5).stdout
        return [tuple(float(x) for x in line.split(",")) for line in text.strip().splitlines() if line.strip()]

    try:
        return read_smi if read_smi() else None
    except Exception:
        return None


def children(pids: list[int]) -> list[int]:
    """The processes the given ones started (a server's pipeline processes), to sample with them."""
    found = []
    for pid in pids:
        try:
            found += [c.pid for c in psutil.Process(pid).children(recursive=True)]
        except psutil.Error:
            pass
    return found


class Sampler:
    """Samples in a background thread every `interval` seconds between start() and stop().

    System-wide CPU (100 % = all cores busy), the CPU of the watched processes (100 % = one core)
    and, where a GPU can be read, its utilisation and memory.
    """

    def __init__(self, pids: list[int] | None = None, interval: float = 0.25) -> None:
        self.interval = interval
        self.pids = pids or [os.getpid()]
        self._gpu = _gpu_reader()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.samples: list[dict[str, Any]] = []

    def _loop(self) -> None:
        procs = []
        for pid in self.pids:
            try:
                p = psutil.Process(pid)
                p.cpu_percent(None)
                procs.append(p)
            except psutil.Error:
                pass
        psutil.cpu_percent(None)
        psutil.cpu_times_percent(None)
        t0 = time.perf_counter()
        while not self._stop.wait(self.interval):
            s: dict[str, Any] = {"t": time.perf_counter() - t0, "cpu_percent": psutil.cpu_percent(None)}
            # time the hypervisor gave this VM's CPUs to others (0 on bare metal)
            s["steal_percent"] = getattr(psutil.cpu_times_percent(None), "steal", 0.0)
            for p in procs:
                try:
                    s[f"proc_{p.pid}_cpu_percent"] = p.cpu_percent(None)
                except psutil.Error:
                    pass
            if self._gpu:
                try:
                    gpus = self._gpu()
                    s["gpu_percent"] = [g[0] for g in gpus]
                    s["gpu_memory_mib"] = [g[1] for g in gpus]
                except Exception:
                    pass
            self.samples.append(s)

    def start(self) -> None:
        self.samples = []
        if psutil is None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="bench-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> dict[str, Any]:
        if self._thread is None:
            return {}
        self._stop.set()
        self._thread.join()
        self._thread = None
        return summarise_samples(self.samples, self.pids)


def summarise_samples(samples: list[dict[str, Any]], pids: list[int]) -> dict[str, Any]:
    if not samples:
        return {}

    def mm(vals):
        return {"mean": sum(vals) / len(vals), "max": max(vals)} if vals else None

    out: dict[str, Any] = {"samples": len(samples), "cpu_percent_all_cores": mm([s["cpu_percent"] for s in samples]),
                           "cpu_count": psutil.cpu_count() if psutil else os.cpu_count()}
    for pid in pids:
        vals = [s[f"proc_{pid}_cpu_percent"] for s in samples if f"proc_{pid}_cpu_percent" in s]
        if vals:
            out.setdefault("process_cpu_percent_one_core", {})[str(pid)] = mm(vals)
    # everything else on the machine, in one-core percent: system-wide busy time minus the watched processes
    ncpu = out["cpu_count"] or 1
    others = [max(0.0, s["cpu_percent"] * ncpu - sum(v for k, v in s.items() if k.startswith("proc_")))
              for s in samples]
    out["other_processes_cpu_percent_one_core"] = mm(others)
    out["steal_percent_all_cores"] = mm([s.get("steal_percent", 0.0) for s in samples])
    gpu = [max(s["gpu_percent"]) for s in samples if s.get("gpu_percent")]
    if gpu:
        out["gpu_percent"] = mm(gpu)
        out["gpu_memory_mib"] = mm([max(s["gpu_memory_mib"]) for s in samples if s.get("gpu_memory_mib")])
    return out


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def machine_description() -> dict[str, Any]:
    desc: dict[str, Any] = {
        "date_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "cpu_model": _cpu_model(),
        "logical_cores": os.cpu_count(),
        "physical_cores": psutil.cpu_count(logical=False) if psutil else None,
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1) if psutil else None,
        "os": platform.platform(),
        "python": platform.python_version(),
        "packages": {n: _version(n) for n in ("facestream", "grpcio", "protobuf", "av", "numpy", "onnxruntime", "numba",
                                              "opencv-contrib-python-headless", "psutil", "matplotlib")},
        "load_average_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }
    gpu = _gpu_reader()
    if gpu and shutil.which("nvidia-smi"):
        try:
            desc["gpus"] = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total",
                                           "--format=csv,noheader"], capture_output=True, text=True,
                                          timeout=5).stdout.strip().splitlines()
        except Exception:
            pass
    try:
        desc["git_commit"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                            cwd=os.path.dirname(__file__), timeout=5).stdout.strip() or None
    except Exception:
        desc["git_commit"] = None
    return desc
