"""The GPU benchmark (benchmarks/gpu_bench/) run end to end on the CPU backend with tiny sizes:
every section runs for real (a real server and real SDK clients included) and the JSON has every
field the GPU run reports; its input is the tiled clip with 1 to 4 faces; its stream search ends
where it should; without a GPU the gpu run says so and exits 3."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from facestream.benchmarks.gpu_bench.config import NO_GPU
from facestream.benchmarks.gpu_bench.report import Deadline
from facestream.benchmarks.gpu_bench.stream_ramp import _next_count
from facestream.benchmarks.gpu_bench.summary import goals
from facestream.benchmarks.gpu_bench.tiled_input import annexb_packets, face_tiles, make_input
from facestream.engines.backend import probe_gpu

from support import CLIP

STAGES = {"decode", "vision", "effects", "encode"}
OUTPUTS = ("nv12", "h264", "mjpeg")
LATENCY = {"mean", "p50", "p90", "p99", "max"}


@pytest.fixture(scope="module")
def smoke(tmp_path_factory) -> dict:
    if not CLIP.exists():
        pytest.fail(f"test media not found at {CLIP}; set FACESTREAM_MEDIA")
    out = tmp_path_factory.mktemp("gpu-bench") / "smoke.json"
    # its own interpreter, as run.sh runs it (and so grpc.aio's event loop is not this one's)
    proc = subprocess.run([sys.executable, "-m", "facestream.benchmarks.gpu_bench", "--backend", "cpu", "--smoke",
                           "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads(out.read_text())
    result["_stdout"] = proc.stdout
    return result


def test_smoke_run_measures_every_section(smoke):
    failed = {k: v["error"] for k, v in smoke.items() if isinstance(v, dict) and "error" in v}
    assert not failed, failed
    assert smoke["versions"]["cpu_cores"] >= 1 and smoke["effects"] and "debug" not in smoke["effects"]
    assert set(smoke["plan"]) == set(OUTPUTS)
    assert all([p["stage"] for p in plan] == ["decode", "vision", "effects", "encode"]
               for plan in smoke["plan"].values())

    i = smoke["input"]
    assert (i["width"], i["height"]) == (640, 360) and i["frames"] == i["packets"] == 12

    d = smoke["decode_only"]
    assert d["fps"] > 0 and d["parallel_fps_total"] > 0 and d["parallel_decoders"] == 2 and d["decoder"]

    e = smoke["host_encode"]
    assert e["fps"] > 0 and e["parallel_fps_total"] > 0 and e["streams_at_30fps_bound"] >= 1
    assert set(e["libx264_ms"]) == LATENCY and e["cpu_cores"] >= 1 and "ffmpeg_thread_count" in e
    assert e["pinned_copy"] is False and e["pinned_copy_ms"] is None   # no device on the cpu backend


def test_smoke_run_reports_the_pipeline_per_output(smoke):
    pipe = smoke["pipeline"]
    assert pipe["warm_up_s"] > 0
    for output in OUTPUTS:
        p = pipe[output]
        assert p["fps"] > 0 and p["frames"] == 12, output
        assert p["vision_ran"] and p["fps_is"] and p["stage_times_are"]
        assert [x["stage"] for x in p["placements"]] == ["decode", "vision", "effects", "encode"]
        s = p["serial"]
        assert s["frames"] == 12 and s["fps"] > 0 and s["output_bytes_mean"] > 0
        assert s["stage_gpu_ms"] is None                                 # CUDA events only on a GPU
        assert set(s["stage_wall_ms"]) == STAGES and all(set(v) == LATENCY for v in s["stage_wall_ms"].values())
        assert s["stage_wall_ms"]["vision"]["mean"] > 0 and s["stage_wall_ms"]["effects"]["mean"] > 0
        assert s["faces_per_frame_mean"] >= 1 and s["frames_by_faces_found"]
    assert pipe["nv12"]["serial"]["output_bytes_mean"] == 640 * 360 * 3 // 2
    assert smoke["pipeline"]["mjpeg"]["serial"]["output_bytes_mean"] < 640 * 360


def test_smoke_run_reports_memory_ramps_server_and_goals(smoke):
    m = smoke["memory"]
    assert [s["sessions"] for s in m["steps"]] == [1, 2] and m["measured_as"]
    assert set(m["baseline"]) == {"cupy_used_mb", "cupy_held_mb", "torch_allocated_mb", "torch_reserved_mb",
                                  "device_used_mb"}
    assert set(m["first_session_mb"]) == set(m["per_session_mb"]) == set(m["baseline"])
    for output in ("nv12", "h264"):
        r = smoke[f"ramp_{output}"]
        assert r["steps"] and isinstance(r["sustained_streams"], int) and r["limit"] == 2 and r["streams_are"]
        step = r["steps"][0]
        assert step["streams"] == 1 and step["frames_expected"] == 9 and set(step["latency_ms"]) == LATENCY
        assert step["holds"] == (step["frames_missing"] == 0 and step["latency_ms"]["p99"] <= 50 and not
                                 step["errors"] and not step["unfinished"])
        assert set(step["stage_call_ms_mean"]) == STAGES and step["cpu_cores_busy"] > 0
        assert set(step["gpu_sample"]) == {"gpu_percent", "memory_used_mb", "nvdec_percent"}

    s = smoke["server"]
    assert s["streams"] == 1 and s["latency_is"] and s["stage_times_are"]
    for output in OUTPUTS:
        o = s[output]
        assert o["frames_expected"] == o["frames_sent"] == o["frames_received"] == o["frames_processed"] == 12
        assert set(o["latency_ms"]) == LATENCY and o["latency_ms"]["p50"] > 0
        assert all(v > 0 for k, v in o["server_stage_ms_mean"].items() if k != "queue_ms")
        assert o["encode"].startswith("cpu") and o["faces_per_frame_mean"] >= 1
    assert s["nv12"]["output_bytes_mean"] == 640 * 360 * 3 // 2

    g = smoke["goals"]
    p = g["pipeline_over_decode"]
    assert p["goal_nv12"] == 0.8 and all(p[o] > 0 for o in OUTPUTS) and p["met"] == (p["nv12"] >= 0.8)
    raw = g["streams_1080p30_nv12"]
    assert raw["goal"] == 60 and raw["met"] is False and raw["value"] == smoke["ramp_nv12"]["sustained_streams"]
    assert raw["what_bounds_it"]
    h = g["streams_1080p30_h264"]
    assert h["host_encode_streams_bound"] == smoke["host_encode"]["streams_at_30fps_bound"]
    assert "libx264" in h["what_bounds_it"] and "CPU cores" in h["what_bounds_it"]
    # the printed summary carries the goals
    assert "goal full/NVDEC >= 0.8" in smoke["_stdout"] and "goal >= 60 streams" in smoke["_stdout"]


@pytest.mark.skipif(probe_gpu().available, reason="this host has a GPU")
def test_the_gpu_run_without_a_gpu_says_so(tmp_path):
    out = tmp_path / "gpu.json"
    proc = subprocess.run([sys.executable, "-m", "facestream.benchmarks.gpu_bench", "--out", str(out)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == NO_GPU, proc.stderr[-2000:]
    assert json.loads(out.read_text())["skipped"].startswith("no GPU: ")


def test_the_stream_search_stops_within_an_eighth():
    """Doubling from the start, halving when the start fails, then bisecting to an eighth."""

    def search(capacity: int, start: int = 8, limit: int = 96) -> tuple[int, list[int]]:
        lo, hi, tried = 0, None, []
        while (n := _next_count(lo, hi, start, limit)) is not None:
            tried.append(n)
            lo, hi = (n, hi) if n <= capacity else (lo, n)
        return lo, tried

    assert search(37) == (36, [8, 16, 32, 64, 48, 40, 36])
    assert search(3) == (3, [8, 4, 2, 3])
    assert search(0) == (0, [8, 4, 2, 1])
    assert search(500) == (96, [8, 16, 32, 64, 96])
    for capacity in range(1, 120):
        found, tried = search(capacity)
        assert min(capacity, 96) - found <= max(1, found // 8) and len(tried) <= 12


def test_the_tiled_input_shows_one_to_four_faces(tmp_path):
    """The benchmark's input, as the face detector sees it (run on every frame): the number of
    faces is the number of tiles that show the singer."""
    import av

    from facestream.engines.codec.cpu import nv12_planes
    from facestream.engines.frame import Frame
    from facestream.engines.vision.cpu import CpuVision

    path = tmp_path / "tiles.mp4"
    info = make_input(CLIP, path, (640, 360), 60, Deadline(120))
    assert info["frames"] == 60 and info["frames_by_tiles_showing_the_singer"] == {1: 15, 2: 15, 3: 15, 4: 15}
    vision = CpuVision(max_faces=4, smoothing=False, detect_every=1)
    agree = 0
    with av.open(str(path)) as c:
        for i, f in enumerate(c.decode(video=0)):
            y, uv, _ = nv12_planes(f)
            agree += len(vision.process(Frame(y, uv, pts=i, index=i))) == len(face_tiles(i))
    vision.close()
    assert agree >= 57, f"faces matched the tiles showing the singer in {agree} of 60 frames"
    assert len(annexb_packets(path)) == 60


def test_the_goals_say_what_bounds_each_figure():
    step = {"streams": 64, "holds": False, "latency_ms": {"p99": 81.5}, "frames_missing": 12, "errors": {},
            "cpu_cores_busy": 1.9, "gpu_sample": {"gpu_percent": 35.0, "memory_used_mb": 9000.0, "nvdec_percent": 60.0},
            "stage_call_ms_mean": {"decode": 1.2, "vision": 4.0, "effects": 2.5, "encode": 0.8}}
    data = {"decode_only": {"fps": 500.0},
            "pipeline": {"nv12": {"fps": 420.0}, "h264": {"fps": 150.0}, "mjpeg": {"error": "RuntimeError: x"}},
            "host_encode": {"cpu_cores": 16, "parallel_fps_total": 330.0, "width": 1920, "height": 1080,
                            "parallel_encoders": 4, "streams_at_30fps_bound": 11},
            "ramp_nv12": {"sustained_streams": 48, "exact": True, "fails_at": 64, "p99_ms_at_sustained": 41.0,
                          "steps": [step]},
            "ramp_h264": {"sustained_streams": 9, "exact": False, "p99_ms_at_sustained": 44.0}}
    g = goals(data)
    assert g["pipeline_over_decode"] == {"nv12": 0.84, "h264": 0.3, "mjpeg": None, "goal_nv12": 0.8, "met": True}
    raw = g["streams_1080p30_nv12"]
    assert raw["value"] == 48 and raw["met"] is False and raw["p99_ms"] == 41.0
    assert raw["what_bounds_it"].startswith("at 64 streams: p99 81.5 ms, 12 frames not processed")
    assert "1.9 CPU cores busy" in raw["what_bounds_it"] and "NVDEC 60.0 %" in raw["what_bounds_it"]
    h = g["streams_1080p30_h264"]
    assert h["value"] == 9 and h["exact"] is False and h["host_encode_streams_bound"] == 11
    assert "libx264 on 16 CPU cores encodes 330.0 frames/s at 1920x1080" in h["what_bounds_it"]
