"""The command line: the sections in order, each within its share of the run's budget, the JSON
written after each one and the summary printed at the end."""
from __future__ import annotations

import argparse
import math
import platform
import tempfile
import time
import traceback
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from facestream.benchmarks import gpu_bench
from facestream.benchmarks.gpu_bench.codec_limits import decode_only, host_encode
from facestream.benchmarks.gpu_bench.config import (
    CLIP,
    EFFECTS,
    FPS,
    NO_GPU,
    OUTPUTS,
    RAMPS,
    REPO,
    SMOKE,
    Scale,
    section_budget,
)
from facestream.benchmarks.gpu_bench.environment import versions
from facestream.benchmarks.gpu_bench.memory import memory_per_session
from facestream.benchmarks.gpu_bench.pipeline import pipeline, warm_up
from facestream.benchmarks.gpu_bench.report import Deadline, Report
from facestream.benchmarks.gpu_bench.server_check import server_check
from facestream.benchmarks.gpu_bench.session import make_backend
from facestream.benchmarks.gpu_bench.stats import rounded
from facestream.benchmarks.gpu_bench.stream_ramp import ramp
from facestream.benchmarks.gpu_bench.summary import goals, summary_lines
from facestream.benchmarks.gpu_bench.tiled_input import annexb_packets, make_input
from facestream.engines.codec.base import Codec

if TYPE_CHECKING:
    from facestream.engines.backend import GpuProbe


def _ramp_start(report: Report, output: Codec, scale: Scale) -> int:
    """The ramp's first stream count: for H.264 no more than the host encoder's bound allows."""
    start = scale.ramp_start
    bound = (report.data.get("host_encode") or {}).get("streams_at_30fps_bound")
    if output is Codec.H264 and bound:
        start = max(1, min(scale.ramp_start, 2 ** int(math.log2(max(1, bound)))))
    return start


def run_sections(report: Report, args: argparse.Namespace, scale: Scale, deadline: Deadline, work: Path) -> None:
    """The sections in order; the input first, since every other section measures with it."""
    clip = work / "input.mp4"
    packets: list[tuple[bytes, int]] = []

    def make() -> dict[str, Any]:
        result = make_input(CLIP, clip, scale.size, scale.frames, deadline.part(section_budget("input", scale)))
        packets.extend(annexb_packets(clip))
        result["packets"] = len(packets)
        return result

    report.section("input", make, deadline)
    if not packets:
        return
    backend = args.backend
    report.section("decode_only", lambda: decode_only(packets, backend, scale.decode_repeats, scale.parallel,
                                                      deadline.part(section_budget("decode_only", scale))), deadline)
    report.section("host_encode", lambda: host_encode(packets, backend, scale.parallel,
                                                      deadline.part(section_budget("host_encode", scale))), deadline)

    def pipelines() -> dict[str, Any]:
        part = deadline.part(section_budget("pipeline", scale))
        out: dict[str, Any] = {"warm_up_s": rounded(warm_up(packets, backend), 2)}
        for i, output in enumerate(OUTPUTS):
            share = part.part(part.left() / (len(OUTPUTS) - i))
            try:
                out[output.value] = pipeline(packets, backend, output, share)
            except Exception as exc:
                out[output.value] = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc(8)}
                report.failed.append(f"pipeline {output.value}")
            report.data["pipeline"] = out
            report.save()
        return out

    report.section("pipeline", pipelines, deadline)
    report.section("memory", lambda: memory_per_session(packets, backend, scale.memory_sessions,
                                                        deadline.part(section_budget("memory", scale))), deadline)
    for output in RAMPS:
        name = f"ramp_{output.value}"

        def ramp_section(o: Codec = output, s: int = _ramp_start(report, output, scale),
                         n: str = name) -> dict[str, Any]:
            return ramp(packets, backend, o, scale, s, deadline.part(section_budget(n, scale)))

        report.section(name, ramp_section, deadline)
        report.data["goals"] = goals(report.data)
    streams = scale.server_streams
    report.section("server", lambda: server_check(clip, backend, streams, min(len(packets), round(5 * FPS)),
                                                  deadline.part(section_budget("server", scale))), deadline)
    report.data["goals"] = goals(report.data)
    report.save()


def _parser() -> argparse.ArgumentParser:
    """The command line run.sh calls: --out, --budget, and --backend cpu --smoke to check the benchmark anywhere."""
    ap = argparse.ArgumentParser(prog="python -m facestream.benchmarks.gpu_bench",
                                 description=(gpu_bench.__doc__ or "").split("\n\n")[0])
    ap.add_argument("--out", default="", help="JSON result (default: benchmarks/results/gpu-<device>.json)")
    ap.add_argument("--backend", choices=("gpu", "cpu"), default="gpu",
                    help="the backend every section runs on (cpu: the same measurements on any machine)")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes and counts: checks the benchmark itself")
    ap.add_argument("--budget", type=float, default=0.0, help="seconds for the whole run (default 235; smoke 200)")
    return ap


def _result_path(args: argparse.Namespace, gpu: GpuProbe) -> Path | None:
    """--out, or a file in benchmarks/results named for the device (None for the gpu backend
    without a GPU: no device to name it for, so nothing is written)."""
    results = REPO / "benchmarks" / "results"
    out: Path | None = Path(args.out) if args.out else results / "gpu-bench-on-cpu.json"
    if args.backend == "gpu" and not args.out:
        slug = "".join(c if c.isalnum() else "-" for c in gpu.name.lower()).strip("-")
        out = results / f"gpu-{slug}.json" if gpu.available else None
    return out


def main(argv: list[str] | None = None) -> int:
    """The whole run; the exit status says whether every section ran (0), one failed (1) or there is no GPU (3)."""
    args = _parser().parse_args(argv)
    scale = SMOKE if args.smoke else Scale()
    if args.budget:
        scale = replace(scale, budget=args.budget)
    deadline = Deadline(scale.budget)

    from facestream.engines.backend import probe_gpu

    gpu = probe_gpu()
    out = _result_path(args, gpu)
    report = Report(out)
    report.data.update(date=time.strftime("%Y-%m-%dT%H:%M:%S%z"), host=platform.node(), args=vars(args),
                       scale=vars(scale))
    if args.backend == "gpu" and not gpu.available:
        report.data["skipped"] = f"no GPU: {gpu.detail}"
        report.save()
        print(report.data["skipped"])
        return NO_GPU
    report.data.update(versions=versions(args.backend), effects=EFFECTS,
                       plan={o.value: [vars(p) for p in make_backend(args.backend, o).placements()] for o in OUTPUTS})
    report.save()
    with tempfile.TemporaryDirectory(prefix="facestream-gpu-bench-") as work:
        run_sections(report, args, scale, deadline, Path(work))
    print("\n".join(summary_lines(report.data)))
    print(f"results written to {out}")
    return 1 if report.failed else 0
