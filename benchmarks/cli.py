"""`facestream-bench`: how many streams, at what latency, compared to what.

    facestream-bench                                  # server started here, ramp, peers, report
    facestream-bench --target host:50051 --no-peers   # against a running server
    facestream-bench --streams 1,2,4 --frames 150     # fixed stream counts instead of the ramp

Three phases, one after the other so that they do not compete for the machine:

1. throughput: one stream sent as fast as the server takes it (lossless), with all effects;
2. real time: N streams paced at the source frame rate; N goes 1, 2, 3, ... until the latency
   objective breaks (p99 end-to-end latency above one frame interval, or frames not processed),
   and the largest N that held is reported;
3. peers, on the same clip and frame count: MediaPipe 0.10.14 face detection and face mesh, and
   an OpenCV + MediaPipe loop (decode, mesh, smoothing, encode), in their own environment.

Writes result.json (with `ratio_vs_mediapipe_mesh` where the peer ran), summary.md and PNG plots
to --out.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from facestream.client import parse_effects
from facestream.proto import pb

from . import loadgen, monitor, report

REPO = Path(__file__).resolve().parents[1]
CLIP_NAME = Path("shared") / "media" / "short_hamilton_clip.mp4"


def default_clip() -> Path:
    """../shared/media/short_hamilton_clip.mp4 from the working directory (run from the repository),
    else beside the source tree."""
    for base in (Path.cwd().parent, REPO.parent):
        if (base / CLIP_NAME).exists():
            return base / CLIP_NAME
    return Path("..") / CLIP_NAME
DEFAULT_EFFECTS = "smooth=0.5,whiten=0.3,slim=0.3,eyes=0.3,lips=0.4,blush=0.3,sharpen=0.3"
BACKENDS = {"auto": pb.BACKEND_AUTO, "cpu": pb.BACKEND_CPU, "gpu": pb.BACKEND_GPU}


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="facestream-bench", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 2)[2])
    where = ap.add_argument_group("server")
    where.add_argument("--target", help="address of a running server (host:port), or of several separated by "
                                        "commas (stream i starts on the i-th); otherwise one is started here")
    where.add_argument("--server", choices=("subprocess", "inprocess"), default="subprocess",
                       help="how to start the server when no --target: its own process (default, as in "
                            "production) or inside this process (shares the interpreter with the client)")
    where.add_argument("--backend", choices=tuple(BACKENDS), default="auto", help="backend the sessions ask for")
    where.add_argument("--max-sessions", type=int, default=32, help="max_sessions of a server started here")
    where.add_argument("--server-processes", type=int, default=1,
                       help="server processes to start (subprocess mode), each on its own port; stream i starts "
                            "on the i-th (the sessions of one process share its interpreter)")
    where.add_argument("--pipeline-processes", type=int, default=-1,
                       help="--pipeline-processes of the servers started here: CPU sessions' stages in that many "
                            "processes of their own per server (0: in the server process; -1: the server's "
                            "default, one per core)")
    where.add_argument("--realtime-latency-ms", type=float, default=0.0,
                       help="--realtime-latency-ms of a server started here (0: the server's default)")
    src = ap.add_argument_group("load")
    src.add_argument("--clip", default=None, help="video file every stream sends "
                                                  "(default: ../shared/media/short_hamilton_clip.mp4)")
    src.add_argument("--size", help="scale the clip to WIDTHxHEIGHT first (for example 1280x720); the peers get the "
                                    "same scaled clip")
    src.add_argument("--frames", type=int, default=0, help="frames per stream (0: the whole clip; more loops it)")
    src.add_argument("--effects", default=DEFAULT_EFFECTS,
                     help='effects and strengths, "smooth=0.5,eyes=0.3"; "" for none')
    src.add_argument("--streams", help="comma-separated stream counts to run paced, instead of the ramp")
    src.add_argument("--max-streams", type=int, default=16, help="where the ramp stops if the objective still holds")
    src.add_argument("--past-break", type=int, default=2, help="ramp steps run after the objective first breaks, "
                                                             "for the plots (the reported N is not affected)")
    src.add_argument("--no-pace", action="store_true", help="send the stream counts as fast as possible instead of "
                                                            "at the source frame rate")
    src.add_argument("--realtime", action="store_true", help="ask for the real-time drop policy (default lossless)")
    src.add_argument("--throughput-runs", type=int, default=1, help="repeats of the single-stream throughput run "
                                                                  "and of the codec-only pass-through run (the "
                                                                  "median is reported; 0 skips both)")
    src.add_argument("--skip-frames", type=int, default=0, help="leave each stream's first frames out of the latency "
                                                                "statistics (session start-up)")
    obj = ap.add_argument_group("objective")
    obj.add_argument("--objective-ms", type=float, default=0.0, help="p99 latency objective (0: one frame interval "
                                                                     "of the clip)")
    obj.add_argument("--max-unprocessed", type=float, default=0.0,
                     help="fraction of frames that may come back passed through or dropped (default 0)")
    peers = ap.add_argument_group("peers")
    peers.add_argument("--no-peers", action="store_true", help="skip MediaPipe and the OpenCV + MediaPipe baseline")
    peers.add_argument("--no-peer-setup", action="store_true",
                       help="use the MediaPipe environment only if it exists, never create it")
    peers.add_argument("--peer-max-faces", type=int, default=1, help="MediaPipe max_num_faces (default 1)")
    out = ap.add_argument_group("output")
    out.add_argument("--out", type=Path, default=Path("facestream-bench-results"), help="folder for the results")
    out.add_argument("--label", default="", help="title of the summary")
    out.add_argument("--no-plots", action="store_true")
    out.add_argument("--render", type=Path, metavar="RESULT_JSON",
                     help="measure nothing: redraw the plots and summary.md of an earlier result.json beside it")
    out.add_argument("--raw", action="store_true", help="also write every frame's record to frames.csv")
    out.add_argument("--quiet", action="store_true")
    return ap


class _Server:
    """The servers started for the run: child processes (default; one or more) or one in this process."""

    def __init__(self, mode: str, backend: str, max_sessions: int, realtime_latency_ms: float,
                 processes: int = 1, pipeline_processes: int = -1) -> None:
        self.mode, self.backend, self.max_sessions = mode, backend, max_sessions
        self.realtime_latency_ms = realtime_latency_ms
        self.processes = processes
        self.pipeline_processes = pipeline_processes
        self.procs: list[subprocess.Popen] = []
        self.inproc = None
        self.target = ""
        self.pids = [os.getpid()]

    async def __aenter__(self) -> "_Server":
        if self.mode == "inprocess":
            from facestream.server.app import FaceStreamServer
            from facestream.server.config import ServerConfig

            extra = {"realtime_latency_ms": self.realtime_latency_ms} if self.realtime_latency_ms else {}
            self.inproc = FaceStreamServer(ServerConfig(host="127.0.0.1", port=0, backend=self.backend,
                                                        max_sessions=self.max_sessions, log_level="WARNING",
                                                        pipeline_processes=self.pipeline_processes, **extra))
            await self.inproc.start()
            self.target = f"127.0.0.1:{self.inproc.port}"
            self.pids += monitor.children(self.pids)
            return self
        from facestream.client.health import wait_serving

        targets = []
        for _ in range(self.processes):
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            self.procs.append(subprocess.Popen(
                [sys.executable, "-m", "facestream.server.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
                 "--backend", self.backend, "--max-sessions", str(self.max_sessions), "--log-level", "WARNING",
                 "--pipeline-processes", str(self.pipeline_processes)]
                + (["--realtime-latency-ms", str(self.realtime_latency_ms)] if self.realtime_latency_ms else [])))
            targets.append(f"127.0.0.1:{port}")
        self.pids = [p.pid for p in self.procs]
        self.target = ",".join(targets)
        try:
            for target in targets:
                await asyncio.to_thread(wait_serving, target, 120.0)
        except TimeoutError:
            await self.__aexit__()
            raise
        self.pids += monitor.children(self.pids)  # their pipeline processes
        return self

    async def __aexit__(self, *exc) -> None:
        if self.inproc is not None:
            await self.inproc.stop(0)
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _holds(summary: dict[str, Any], objective_ms: float, max_unprocessed: float) -> bool:
    sent = max(1, summary["frames_sent"])
    unprocessed = summary["dropped_frames"] + summary["passed_through_frames"] + summary["frames_lost"]
    p99 = summary["latency_ms"]["p99"]
    return (not summary["errors"] and p99 == p99 and p99 <= objective_ms
            and unprocessed / sent <= max_unprocessed)


def _cost_note(summary: dict[str, Any]) -> str:
    st = summary["stage_ms"]
    work = {k: st[k]["mean"] or 0.0 for k, _ in report.STAGE_LABELS[:4]}
    total = sum(work.values())
    if not total:
        return ""
    parts = sorted(work.items(), key=lambda kv: -kv[1])
    names = dict(report.STAGE_LABELS)
    return ("Share of the server's stage time per frame (single stream, as fast as possible): "
            + ", ".join(f"{names[k]} {v / total * 100:.0f} % ({v:.2f} ms)" for k, v in parts) + ".")


async def _fast_runs(target: str, clip: str, frames: int, opts: argparse.Namespace, *, effects: dict[str, float],
                     return_faces: bool, pids: list[int], raw_rows: list, name: str, log) -> list[dict[str, Any]]:
    """--throughput-runs runs of one lossless stream sent as fast as the server takes it."""
    runs = []
    for k in range(opts.throughput_runs):
        r = await loadgen.run_streams(target, clip, 1, frames=frames, pace=False, effects=effects, realtime=False,
                                      backend=BACKENDS[opts.backend], sampler=monitor.Sampler(pids),
                                      return_faces=return_faces)
        s = loadgen.summarise(r, skip=opts.skip_frames)
        runs.append(s)
        if opts.raw:
            raw_rows.extend((f"{name}{k + 1}", 1, rec) for rec in r.records)
        log(f"{name} run {k + 1}: {s['throughput_fps']['out']:.1f} fps, p50 {s['latency_ms']['p50']:.1f} ms")
    return runs


async def run(opts: argparse.Namespace) -> dict[str, Any]:
    log = (lambda *a: None) if opts.quiet else (lambda *a: print(*a, file=sys.stderr, flush=True))
    clip = str(Path(opts.clip) if opts.clip else default_clip())
    if not Path(clip).exists():
        raise SystemExit(f"facestream-bench: clip {clip} not found; pass --clip")
    if opts.size:
        from .clips import parse_size, scaled_clip

        log(f"scaling {Path(clip).name} to {opts.size}")
        clip = str(scaled_clip(Path(clip), parse_size(opts.size),
                                     Path(tempfile.gettempdir()) / "facestream-bench-clips"))
    effects = parse_effects(opts.effects)
    backend = BACKENDS[opts.backend]
    probe = loadgen.ClipSource(clip, opts.frames or None)
    frames, rate, size = probe.limit, float(probe.frame_rate), (probe.width, probe.height)
    probe.close()
    interval_ms = 1000.0 / rate
    objective_ms = opts.objective_ms or interval_ms
    machine = monitor.machine_description()
    realtime = opts.realtime

    result: dict[str, Any] = {
        "machine": machine,
        "config": {"label": opts.label, "server": opts.target or opts.server,
                   "server_processes": 0 if opts.target else opts.server_processes,
                   "pipeline_processes": None if opts.target else opts.pipeline_processes,
                   "backend": opts.backend,
                   "clip": clip, "clip_name": Path(clip).name, "width": size[0], "height": size[1],
                   "source_fps": rate, "frames": frames, "effects": effects,
                   "drop_policy": "realtime" if realtime else "lossless", "paced": not opts.no_pace,
                   "skip_frames": opts.skip_frames},
        "objective": {"p99_ms": objective_ms,
                      "basis": ("set by --objective-ms" if opts.objective_ms
                                else f"one frame interval at {rate:.2f} fps"),
                      "max_unprocessed_rate": opts.max_unprocessed},
    }

    raw_rows: list = []
    result["_raw"] = raw_rows

    async def session_target():
        if opts.target:
            class _Remote:
                target, pids = opts.target, []

                async def __aenter__(self):
                    return self

                async def __aexit__(self, *exc):
                    pass
            return _Remote()
        return _Server(opts.server, opts.backend, opts.max_sessions, opts.realtime_latency_ms, opts.server_processes,
                       opts.pipeline_processes)

    async with await session_target() as server:
        servers = [pid for pid in server.pids if pid != os.getpid()]
        pids = [os.getpid()] + servers
        result["config"]["sampled_pids"] = {"client": os.getpid(), "servers": servers}
        log(f"server {server.target}; warming up")
        await loadgen.run_streams(server.target, clip, 1, frames=min(frames, 30), pace=False, effects=effects,
                                  backend=backend)

        if opts.throughput_runs > 0:
            runs = await _fast_runs(server.target, clip, frames, opts, effects=effects, return_faces=True,
                                    pids=pids, raw_rows=raw_rows, name="throughput", log=log)
            fps = statistics.median(s["throughput_fps"]["out"] for s in runs)
            median_run = min(runs, key=lambda s: abs(s["throughput_fps"]["out"] - fps))
            result["throughput"] = {"fps": fps, "runs_fps": [s["throughput_fps"]["out"] for s in runs],
                                    "summary": median_run}
            result["placements"] = median_run["placements"]
            result["cost_note"] = _cost_note(median_run)
            # the codec floor: the same packets decoded and encoded over gRPC, no vision and no effects
            runs = await _fast_runs(server.target, clip, frames, opts, effects={}, return_faces=False,
                                    pids=pids, raw_rows=raw_rows, name="passthrough", log=log)
            result["passthrough"] = {"fps": statistics.median(s["throughput_fps"]["out"] for s in runs),
                                     "runs_fps": [s["throughput_fps"]["out"] for s in runs]}

        counts = [int(x) for x in opts.streams.split(",")] if opts.streams else list(range(1, opts.max_streams + 1))
        steps, best, broken, extra = [], 0, False, 0
        for n in counts:
            r = await loadgen.run_streams(server.target, clip, n, frames=frames, pace=not opts.no_pace,
                                          effects=effects, realtime=realtime, backend=backend,
                                          sampler=monitor.Sampler(pids))
            s = loadgen.summarise(r, skip=opts.skip_frames)
            s["latency_cdf"] = loadgen.latency_cdf(r, skip=opts.skip_frames)
            s["holds"] = _holds(s, objective_ms, opts.max_unprocessed)
            if opts.raw:
                raw_rows.extend(("paced", n, rec) for rec in r.records)
            steps.append(s)
            result.setdefault("placements", s["placements"])
            log(f"{n} stream(s): p50 {s['latency_ms']['p50']:.1f} p99 {s['latency_ms']['p99']:.1f} ms, "
                f"out {s['throughput_fps']['out']:.1f} fps, not processed "
                f"{s['dropped_frames'] + s['passed_through_frames']}, {'holds' if s['holds'] else 'breaks'}")
            broken = broken or not s["holds"]
            if broken and not opts.streams:
                extra += 1
                if extra > opts.past_break:
                    break
        for s in sorted(steps, key=lambda s: s["streams"]):  # largest N with every smaller N holding too
            if not s["holds"]:
                break
            best = s["streams"]
        result["paced"] = steps
        result["max_realtime_streams"] = best

    if not opts.no_peers:
        from . import peer_runner

        result["peers"] = peer_runner.run_peers(clip, frames, setup=not opts.no_peer_setup,
                                                max_faces=opts.peer_max_faces, log=log)
    machine["load_average_at_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None

    ours = result.get("throughput", {}).get("fps")
    headline: dict[str, Any] = {"single_stream_fps": ours, "max_realtime_streams": best}
    one = next((s for s in steps if s["streams"] == 1 and s["paced"]), None)
    if one:
        headline["p99_ms_one_stream_paced"] = one["latency_ms"]["p99"]
    peers = result.get("peers") or {}
    mesh = ((peers.get("mediapipe") or {}).get("face_mesh") or {}).get("fps")
    if ours and mesh:
        result["ratio_vs_mediapipe_mesh"] = headline["ratio_vs_mediapipe_mesh"] = ours / mesh
    codec_only = result.get("passthrough", {}).get("fps")
    if ours and codec_only:
        headline["codec_only_fps"] = codec_only
        result["ratio_vs_codec_only"] = headline["ratio_vs_codec_only"] = ours / codec_only
    for key, enc in (("ratio_vs_opencv_mediapipe", "mp4v"), ("ratio_vs_opencv_mediapipe_x264", "x264")):
        base = ((peers.get("opencv_mediapipe") or {}).get(enc) or {}).get("fps")
        if ours and base:
            result[key] = headline[key] = ours / base
    result["headline"] = headline
    return result


def _write_raw(rows, path: Path) -> None:
    import csv

    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["phase", "streams", "stream", "index", "pts", "received_s", "latency_ms", "status", "faces",
                    *loadgen.STAGES])
        for phase, n, r in rows:
            w.writerow([phase, n, r.stream, r.index, r.pts, f"{r.received_s:.4f}", f"{r.latency_ms:.3f}", r.status,
                        r.faces, *(f"{r.timings[k]:.3f}" for k in loadgen.STAGES)])


def main(argv: list[str] | None = None) -> int:
    opts = build_parser().parse_args(argv)
    try:
        parse_effects(opts.effects)
        if opts.size:
            from .clips import parse_size

            parse_size(opts.size)
        if opts.server_processes < 1:
            raise ValueError(f"--server-processes must be 1 or more, not {opts.server_processes}")
        if opts.pipeline_processes < -1:
            raise ValueError(f"--pipeline-processes must be -1 (the server's default), 0 or more, "
                             f"not {opts.pipeline_processes}")
        if opts.pipeline_processes != -1 and opts.target:
            raise ValueError("--pipeline-processes is a setting of the servers started here: with --target, give it "
                             "to those servers instead")
        if opts.server_processes > 1 and (opts.target or opts.server == "inprocess"):
            raise ValueError("--server-processes starts servers as subprocesses: leave out --target and "
                             "--server inprocess, or list several servers in --target instead")
    except ValueError as exc:
        raise SystemExit(f"facestream-bench: {exc}") from exc
    if opts.render:
        import json

        result = json.loads(opts.render.read_text())
        images = [] if opts.no_plots else report.plots(result, opts.render.parent)
        (opts.render.parent / "summary.md").write_text(report.markdown(result, images))
        return 0
    result = asyncio.run(run(opts))
    opts.out.mkdir(parents=True, exist_ok=True)
    raw = result.pop("_raw", [])
    if opts.raw:
        _write_raw(raw, opts.out / "frames.csv")
    images = [] if opts.no_plots else report.plots(result, opts.out)
    report.write_json(result, opts.out / "result.json")
    (opts.out / "summary.md").write_text(report.markdown(result, images))
    if not opts.quiet:
        h = result["headline"]
        print(f"single stream: {h.get('single_stream_fps') or float('nan'):.1f} fps; "
              f"p99 at source rate: {h.get('p99_ms_one_stream_paced', float('nan')):.1f} ms; "
              f"real-time streams: {h['max_realtime_streams']}; "
              f"vs MediaPipe mesh: {h.get('ratio_vs_mediapipe_mesh', float('nan')):.2f}x")
        print(f"results in {opts.out}/ (result.json, summary.md{''.join(', ' + i for i in images)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
