"""The goals and the printed summary, read from the JSON the sections wrote, so that a run cut short
still says what it reached and what bounds each figure."""
from __future__ import annotations

from typing import Any

from facestream.benchmarks.gpu_bench.config import GOAL_PIPELINE_OVER_DECODE, GOAL_RAW_STREAMS, OUTPUTS, P99_GOAL_MS
from facestream.engines.codec.base import Codec


def _ratio(pipe: dict[str, Any], decode: dict[str, Any], output: Codec) -> float | None:
    fps = (pipe.get(output.value) or {}).get("fps")
    return round(fps / decode["fps"], 3) if fps and decode.get("fps") else None


def _raw_bound(ramp_result: dict[str, Any]) -> str:
    """What the first failing step shows about the limit."""
    failing = next((s for s in ramp_result.get("steps", []) if s["streams"] == ramp_result.get("fails_at")), None)
    if failing is None:
        return "no step failed within the section's time and stream limit"
    g = {k: "n/a" if v is None else v for k, v in failing["gpu_sample"].items()}
    return (f"at {failing['streams']} streams: p99 {failing['latency_ms']['p99']} ms, {failing['frames_missing']} "
            f"frames not processed, {len(failing['errors'])} sessions failed; this process kept "
            f"{failing['cpu_cores_busy']} CPU cores busy, the GPU was {g['gpu_percent']} % busy and NVDEC "
            f"{g['nvdec_percent']} % (one sample); stage calls (ms): {failing['stage_call_ms_mean']}")


def goals(data: dict[str, Any]) -> dict[str, Any]:
    """Each goal with its figure and whether it was met, and what bounds each stream count."""
    decode, pipe = data.get("decode_only") or {}, data.get("pipeline") or {}
    raw, h264, enc = data.get("ramp_nv12") or {}, data.get("ramp_h264") or {}, data.get("host_encode") or {}
    ratio = _ratio(pipe, decode, Codec.RAW_NV12)
    streams = raw.get("sustained_streams")
    bound = enc.get("streams_at_30fps_bound")
    return {
        "pipeline_over_decode": {"nv12": ratio, "h264": _ratio(pipe, decode, Codec.H264),
                                 "mjpeg": _ratio(pipe, decode, Codec.MJPEG), "goal_nv12": GOAL_PIPELINE_OVER_DECODE,
                                 "met": ratio is not None and ratio >= GOAL_PIPELINE_OVER_DECODE},
        "streams_1080p30_nv12": {"value": streams, "exact": raw.get("exact"), "goal": GOAL_RAW_STREAMS,
                                 "met": streams is not None and streams >= GOAL_RAW_STREAMS,
                                 "p99_ms": raw.get("p99_ms_at_sustained"), "what_bounds_it": _raw_bound(raw)},
        "streams_1080p30_h264": {
            "value": h264.get("sustained_streams"), "exact": h264.get("exact"),
            "p99_ms": h264.get("p99_ms_at_sustained"), "host_encode_streams_bound": bound,
            "what_bounds_it": (f"the host encoder: libx264 on {enc.get('cpu_cores')} CPU cores encodes "
                               f"{enc.get('parallel_fps_total')} frames/s at {enc.get('width')}x{enc.get('height')} "
                               f"with {enc.get('parallel_encoders')} sessions at once, about {bound} streams of "
                               "30 fps, and shares those cores with the rest of the pipeline") if bound is not None
            else "not measured (host_encode did not run)"},
    }


def _measured_lines(data: dict[str, Any]) -> list[str]:
    """The decoder's and the host encoder's limits, each pipeline's rate and the memory per session."""
    d, e = data.get("decode_only") or {}, data.get("host_encode") or {}
    lines = [f"decode only ({d.get('decoder')}): {d.get('fps')} fps one session, "
             f"{d.get('parallel_fps_total')} fps with {d.get('parallel_decoders')} at once",
             f"host encode (pinned copy + libx264, {e.get('cpu_cores')} cores): {e.get('fps')} fps one encoder, "
             f"{e.get('parallel_fps_total')} fps with {e.get('parallel_encoders')} at once"]
    for output in OUTPUTS:
        p = (data.get("pipeline") or {}).get(output.value) or {}
        gpu = ((p.get("serial") or {}).get("stage_gpu_ms") or {})
        per_stage = ", ".join(f"{k} {v['mean']}" for k, v in gpu.items() if v.get("mean") is not None)
        lines.append(f"pipeline {output.value}: {p.get('fps')} fps" + (f"; GPU ms per stage: {per_stage}"
                                                                      if per_stage else ""))
    m = (data.get("memory") or {}).get("per_session_mb")
    lines.append(f"GPU memory per session (MiB): {m}")
    return lines


def _goal_lines(g: dict[str, Any]) -> list[str]:
    """Each goal with its figure, whether it was met, and what bounds the stream counts."""
    p = g.get("pipeline_over_decode") or {}
    r = g.get("streams_1080p30_nv12") or {}
    h = g.get("streams_1080p30_h264") or {}
    return [f"goal full/NVDEC >= {GOAL_PIPELINE_OVER_DECODE} with raw output: {p.get('nv12')} "
            f"({'met' if p.get('met') else 'not met'}); h264 {p.get('h264')}, mjpeg {p.get('mjpeg')}",
            f"goal >= {GOAL_RAW_STREAMS} streams 1080p30 raw at p99 <= {P99_GOAL_MS:.0f} ms: {r.get('value')}"
            f"{'' if r.get('exact') else ' (at least)'} ({'met' if r.get('met') else 'not met'}); "
            f"{r.get('what_bounds_it')}",
            f"streams 1080p30 h264 at p99 <= {P99_GOAL_MS:.0f} ms: {h.get('value')}"
            f"{'' if h.get('exact') else ' (at least)'}; bound: {h.get('what_bounds_it')}"]


def _server_lines(s: dict[str, Any]) -> list[str]:
    """One line per output codec the server check measured."""
    lines = []
    for output in OUTPUTS:
        o = s.get(output.value) or {}
        if "latency_ms" in o:
            lines.append(f"server, {s.get('streams')} stream(s) {output.value}: p99 {o['latency_ms']['p99']} ms, "
                         f"{o['frames_processed']}/{o['frames_expected']} frames processed, encode {o['encode']}")
    return lines


def summary_lines(data: dict[str, Any]) -> list[str]:
    """The printed summary: what was measured, the goals, the server check."""
    return [*_measured_lines(data), *_goal_lines(data.get("goals") or {}), *_server_lines(data.get("server") or {})]
