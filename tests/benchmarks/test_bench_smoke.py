"""Smoke of facestream-bench: one stream, a few frames, an in-process server, no peers."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from support import CLIP

# the plots need matplotlib (the `bench` extra); utilisation is left out without psutil
pytest.importorskip("matplotlib", reason="facestream-bench plots need the bench extra (matplotlib)")

from facestream.benchmarks import cli, monitor  # noqa: E402


def test_bench_one_stream_writes_json_markdown_plots(tmp_path, media):
    out = tmp_path / "bench"
    # its own interpreter, as the console script runs (and so grpc.aio's event loop is not this one's)
    proc = subprocess.run([sys.executable, "-m", "facestream.benchmarks.cli", "--server", "inprocess",
                           "--clip", str(CLIP), "--frames", "12", "--streams", "1", "--no-peers",
                           "--out", str(out), "--quiet"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads((out / "result.json").read_text())

    t = result["throughput"]
    assert t["fps"] > 0 and t["summary"]["frames_received"] == 12 and t["summary"]["frames_lost"] == 0
    (step,) = result["paced"]
    assert step["streams"] == 1 and step["paced"]
    assert step["frames_sent"] == step["frames_received"] == 12
    lat = step["latency_ms"]
    assert 0 < lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["max"] < 10_000
    assert step["throughput_fps"]["in"] > 0 and step["throughput_fps"]["out"] > 0
    assert step["frame_status"] == {"processed": 12}
    st = step["stage_ms"]
    assert st["decode_ms"]["mean"] > 0 and st["vision_ms"]["mean"] > 0 and st["encode_ms"]["mean"] > 0
    assert st["total_ms"]["mean"] <= lat["max"] + 1
    # the CDF goes from the fastest to the slowest frame
    cdf = step["latency_cdf"]
    assert cdf[0][1] == 0 and cdf[-1][1] == 1 and cdf[-1][0] == pytest.approx(lat["max"])
    assert [c[0] for c in cdf] == sorted(c[0] for c in cdf)
    if monitor.psutil is not None:
        assert step["utilisation"]["cpu_count"] >= 1
        assert 0 <= step["utilisation"]["cpu_percent_all_cores"]["mean"] <= 100
    assert isinstance(result["max_realtime_streams"], int)
    assert "ratio_vs_mediapipe_mesh" not in result  # the peer did not run
    m = result["machine"]
    assert m["cpu_model"] and m["logical_cores"] >= 1 and m["python"] and m["packages"]["grpcio"]
    assert result["config"]["effects"]["smooth"] > 0

    md = (out / "summary.md").read_text()
    assert "## Headline" in md and "| 1 |" in md and "latency_cdf.png" in md
    for name in ("latency_cdf.png", "scaling.png", "stages.png"):
        data = (out / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000


def test_objective_and_ratio_logic():
    ok = {"frames_sent": 100, "dropped_frames": 0, "passed_through_frames": 0, "frames_lost": 0,
          "errors": [], "latency_ms": {"p99": 30.0}}
    assert cli._holds(ok, 33.4, 0.0)
    assert not cli._holds({**ok, "latency_ms": {"p99": 40.0}}, 33.4, 0.0)
    assert not cli._holds({**ok, "dropped_frames": 2}, 33.4, 0.0)
    assert cli._holds({**ok, "dropped_frames": 2}, 33.4, 0.05)
    assert not cli._holds({**ok, "errors": ["RESOURCE_EXHAUSTED: full"]}, 33.4, 0.0)
    assert not cli._holds({**ok, "latency_ms": {"p99": float("nan")}}, 33.4, 0.0)


def test_clip_source_loops_with_increasing_pts(media):
    from facestream.benchmarks.loadgen import ClipSource

    src = ClipSource(str(CLIP), 300)
    try:
        packets = list(src)
    finally:
        src.close()
    assert len(packets) == src.sent == 300
    pts = [p.pts for p in packets]
    assert len(set(pts)) == 300 and pts[275] > pts[274]  # the second loop continues the timeline
    assert packets[275].data == packets[0].data


def test_percentile_matches_linear_interpolation():
    from facestream.benchmarks.loadgen import percentile

    vals = [float(v) for v in range(1, 101)]
    assert percentile(vals, 50) == 50.5 and percentile(vals, 0) == 1 and percentile(vals, 100) == 100
    assert percentile(vals, 99) == pytest.approx(99.01)
    assert percentile([], 50) != percentile([], 50)  # NaN


async def test_streams_spread_over_the_servers_given(server_factory, media):
    """With several servers in the target, stream i starts on the i-th: each of two servers gets one of two
    streams, and every frame comes back processed."""
    from facestream.benchmarks import loadgen

    servers = [await server_factory(), await server_factory()]
    target = ",".join(f"127.0.0.1:{srv.port}" for srv in servers)
    run = await loadgen.run_streams(target, str(CLIP), 2, frames=6, pace=False, return_faces=False)
    assert all(o.error is None and o.frames_received == 6 for o in run.outcomes)
    frames_in = [srv.metrics.registry.get_sample_value("facestream_frames_in_total") for srv in servers]
    assert frames_in == [6, 6]


@pytest.mark.parametrize("args, says", [
    (["--server-processes", "0"], "--server-processes must be 1 or more, not 0"),
    (["--server-processes", "2", "--target", "127.0.0.1:1"], "list several servers in --target instead"),
    (["--server-processes", "2", "--server", "inprocess"], "starts servers as subprocesses"),
    (["--pipeline-processes", "-2"], "--pipeline-processes must be -1 (the server's default), 0 or more, not -2"),
    (["--pipeline-processes", "2", "--target", "127.0.0.1:1"], "give it to those servers instead"),
])
def test_server_processes_that_cannot_be_started_are_refused(args, says):
    with pytest.raises(SystemExit) as exc:
        cli.main(["--no-peers", *args])
    assert says in str(exc.value)


def test_bench_with_pipeline_processes_samples_them(tmp_path, media):
    """Of two streams, the server process takes one and its pipeline process the other; the pipeline process's
    CPU is sampled with the server's."""
    out = tmp_path / "bench"
    proc = subprocess.run([sys.executable, "-m", "facestream.benchmarks.cli", "--server", "inprocess",
                           "--pipeline-processes", "1", "--backend", "cpu", "--clip", str(CLIP), "--frames", "30",
                           "--streams", "2", "--throughput-runs", "0", "--no-peers", "--no-plots", "--out", str(out),
                           "--quiet"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads((out / "result.json").read_text())
    assert result["config"]["pipeline_processes"] == 1
    (step,) = result["paced"]
    assert step["frames_received"] == 60 and step["frame_status"] == {"processed": 60}
    servers = result["config"]["sampled_pids"]["servers"]
    assert servers  # the pipeline process (the server itself is this client's process)
    if monitor.psutil is not None:
        busy = step["utilisation"]["process_cpu_percent_one_core"]
        assert max(busy[str(pid)]["mean"] for pid in servers) > 0
