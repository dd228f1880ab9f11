"""Writes a benchmark result as JSON, a Markdown summary and PNG plots (matplotlib)."""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

STAGE_LABELS = (("decode_ms", "decode"), ("vision_ms", "vision"), ("effects_ms", "effects"),
                ("encode_ms", "encode"), ("queue_ms", "queues + transfer"))


def _clean(obj: Any) -> Any:
    """NaN and infinity are not JSON; they become null."""
    if isinstance(obj, float):
        return None if math.isnan(obj) or math.isinf(obj) else obj
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj


def write_json(result: dict[str, Any], path: Path) -> None:
    path.write_text(json.dumps(_clean(result), indent=1, allow_nan=False) + "\n")


def _f(x: Any, fmt: str = "{:.1f}") -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return fmt.format(x)


def plots(result: dict[str, Any], out: Path) -> list[str]:
    """latency_cdf.png, scaling.png and stages.png; returns the file names written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import ScalarFormatter

    def plain(axis):
        fmt = ScalarFormatter()
        fmt.set_scientific(False)
        axis.set_major_formatter(fmt)

    written = []
    steps = result.get("paced") or []
    objective = result["objective"]["p99_ms"]
    if steps:
        fig, ax = plt.subplots(figsize=(7, 4.2))
        for s in steps:
            cdf = s.get("latency_cdf") or []
            if cdf:
                ax.plot([c[0] for c in cdf], [c[1] for c in cdf],
                        label=f"{s['streams']} stream{'s' * (s['streams'] > 1)}")
        ax.axvline(objective, color="k", ls="--", lw=1, label=f"objective {objective:.1f} ms")
        ax.axhline(0.99, color="grey", ls=":", lw=1)
        ax.set_xscale("log")
        plain(ax.xaxis)
        ax.set_xlabel("end-to-end latency per frame, ms (sent → received, log scale)")
        ax.set_ylabel("fraction of frames")
        ax.set_title(f"Latency CDF at the source frame rate ({steps[0]['source_fps']:.2f} fps per stream)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out / "latency_cdf.png", dpi=110)
        plt.close(fig)
        written.append("latency_cdf.png")

        n = [s["streams"] for s in steps]
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
        a1.plot(n, [s["throughput_fps"]["out"] for s in steps], "o-", label="frames received (client)")
        a1.plot(n, [s["throughput_fps"]["in"] for s in steps], "x--", label="frames sent (client)")
        a1.plot(n, [k * steps[0]["source_fps"] for k in n], ":", color="grey", label="real time (N × source fps)")
        a1.set_xlabel("concurrent streams")
        a1.set_ylabel("frames per second, all streams")
        a1.set_title("Throughput against streams")
        a1.grid(True, alpha=0.3)
        a1.legend(fontsize=8)
        a2.plot(n, [s["latency_ms"]["p99"] for s in steps], "o-", label="p99")
        a2.plot(n, [s["latency_ms"]["p50"] for s in steps], "s-", label="p50")
        a2.axhline(objective, color="k", ls="--", lw=1, label=f"objective {objective:.1f} ms")
        a2.set_yscale("log")
        plain(a2.yaxis)
        a2.set_xlabel("concurrent streams")
        a2.set_ylabel("latency, ms (log scale)")
        a2.set_title("Latency against streams")
        a2.grid(True, which="both", alpha=0.3)
        a2.legend(fontsize=8)
        for a in (a1, a2):
            a.set_xticks(n)
        fig.tight_layout()
        fig.savefig(out / "scaling.png", dpi=110)
        plt.close(fig)
        written.append("scaling.png")

    rows = [("1 stream, as fast as possible", result["throughput"]["summary"])] if result.get("throughput") else []
    rows += [(f"{s['streams']} paced", s) for s in steps]
    if rows:
        fig, ax = plt.subplots(figsize=(8, 0.45 * len(rows) + 1.5))
        left = [0.0] * len(rows)
        for key, label in STAGE_LABELS:
            vals = [(r[1]["stage_ms"][key]["mean"] or 0.0) for r in rows]
            ax.barh(range(len(rows)), vals, left=left, label=label)
            left = [start + v for start, v in zip(left, vals, strict=True)]
        ax.set_yticks(range(len(rows)), [r[0] for r in rows])
        ax.invert_yaxis()
        ax.set_xlabel("server time per frame, ms (mean of the per-frame stage timings)")
        ax.set_title("Where the server's time goes")
        ax.legend(fontsize=8, ncol=5, loc="upper center", bbox_to_anchor=(0.5, -0.2))
        fig.tight_layout()
        fig.savefig(out / "stages.png", dpi=110)
        plt.close(fig)
        written.append("stages.png")
    return written


def _streams_goal(result: dict[str, Any]) -> str:
    """The CPU goal for the clip's size: 3 streams at 360p, 1 at 720p (none set for other sizes or a GPU)."""
    c = result["config"]
    if c.get("backend") == "gpu":
        return ""
    return {(640, 360): "≥ 3", (1280, 720): "≥ 1"}.get((c["width"], c["height"]), "")


def markdown(result: dict[str, Any], images: list[str]) -> str:
    m = result["machine"]
    h = result["headline"]
    obj = result["objective"]
    lines = [f"# facestream benchmark: {result['config'].get('label') or m['date_utc']}", ""]
    lines += [
        f"- Machine: {m['cpu_model']}, {m['logical_cores']} logical cores"
        + (f" ({m['physical_cores']} physical)" if m.get("physical_cores") else "")
        + (f", {m['memory_gib']} GiB" if m.get("memory_gib") else "") + f"; {m['os']}; Python {m['python']}",
        f"- Date (UTC): {m['date_utc']}; commit {m.get('git_commit') or 'n/a'}",
        "- Load average (1, 5, 15 min) at start: "
        f"{', '.join(_f(x, '{:.2f}') for x in m.get('load_average_at_start') or [])}"
        f"; at end: {', '.join(_f(x, '{:.2f}') for x in m.get('load_average_at_end') or [])}",
        f"- Packages: {', '.join(f'{k} {v}' for k, v in m['packages'].items() if v)}",
        f"- Server: {result['config']['server']}; backend {result['config']['backend']}; stages "
        + ", ".join(f"{p['stage']}={p['engine']}@{p['device']}" for p in result.get("placements", [])),
        f"- Clip: {result['config']['clip_name']} ({result['config']['width']}x{result['config']['height']}, "
        f"{result['config']['source_fps']:.2f} fps), {result['config']['frames']} frames per stream",
        f"- Effects: {', '.join(f'{k}={v}' for k, v in result['config']['effects'].items()) or 'none'}",
        f"- Latency objective: p99 ≤ {obj['p99_ms']:.1f} ms ({obj['basis']}), frames not processed ≤ "
        f"{obj['max_unprocessed_rate'] * 100:.1f} %; drop policy {result['config']['drop_policy']}",
    ]
    if result.get("throughput"):
        u = result["throughput"]["summary"].get("utilisation") or {}
        o, st = u.get("other_processes_cpu_percent_one_core") or {}, u.get("steal_percent_all_cores") or {}
        lines.append(f"- Load from other processes during the throughput run: mean {_f(o.get('mean'), '{:.0f}')} %, "
                     f"max {_f(o.get('max'), '{:.0f}')} % of one core; "
                     f"CPU steal mean {_f(st.get('mean'), '{:.1f}')} %; "
                     f"throughput runs: {', '.join(_f(x) for x in result['throughput']['runs_fps'])} fps")
    lines += [
        "",
        "## Headline",
        "",
        "| measure | value | goal |",
        "| --- | --- | --- |",
        f"| single-stream throughput over gRPC, all effects | {_f(h.get('single_stream_fps'))} fps | |",
        f"| codec-only pass-through over gRPC (decode + encode, no vision, no effects) | "
        f"{_f(h.get('codec_only_fps'))} fps | |",
        f"| ratio to the codec-only pass-through | {_f(h.get('ratio_vs_codec_only'), '{:.2f}x')} | ≥ 0.6x |",
        f"| ratio to the OpenCV + MediaPipe loop with x264 (mp4v) | "
        f"{_f(h.get('ratio_vs_opencv_mediapipe_x264'), '{:.2f}x')} "
        f"({_f(h.get('ratio_vs_opencv_mediapipe'), '{:.2f}x')}) | ≥ 2x |",
        "| ratio to MediaPipe face mesh alone (same frames) | "
        f"{_f(h.get('ratio_vs_mediapipe_mesh'), '{:.2f}x')} | |",
        f"| p99 latency, 1 stream at the source frame rate | {_f(h.get('p99_ms_one_stream_paced'))} ms | "
        f"≤ {obj['p99_ms']:.1f} ms |",
        f"| largest number of real-time streams holding the objective | {h.get('max_realtime_streams', 'n/a')} | "
        f"{_streams_goal(result)} |",
        "",
    ]
    if result.get("paced"):
        lines += ["## Streams at the source frame rate", "",
                  "| streams | p50 ms | p90 ms | p99 ms | max ms | fps in | fps out | not processed | "
                  "with carried faces | CPU % (all cores) | other processes, % of a core | holds |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        for s in result["paced"]:
            lat, t = s["latency_ms"], s["throughput_fps"]
            cpu = (s.get("utilisation") or {}).get("cpu_percent_all_cores") or {}
            unproc = s["dropped_frames"] + s["passed_through_frames"]
            other = (s.get("utilisation") or {}).get("other_processes_cpu_percent_one_core") or {}
            carried = sum((st or {}).get("frames_carried", 0) for st in s.get("server_stats", []))
            lines.append(f"| {s['streams']} | {_f(lat['p50'])} | {_f(lat['p90'])} | {_f(lat['p99'])} | "
                         f"{_f(lat['max'])} | {_f(t['in'])} | {_f(t['out'])} | {unproc} | {carried} | "
                         f"{_f(cpu.get('mean'), '{:.0f}')} | "
                         f"{_f(other.get('mean'), '{:.0f}')} | {'yes' if s['holds'] else 'no'} |")
        lines += ["", "Latency is per frame from the client handing the packet to gRPC to the client receiving the "
                  "processed packet, so it includes the network and gRPC's buffers. fps in counts packets handed "
                  "to gRPC: when the server falls behind it stops reading, and packets wait in the flow-control "
                  "buffers. Not processed: frames passed through or dropped by the real-time policy; with carried "
                  "faces: frames processed with faces carried from an earlier frame (real-time policy, or "
                  "still faces keeping their last mesh).", ""]
    if result.get("throughput"):
        s = result["throughput"]["summary"]
        lines += ["## Server time per frame (mean ms, from the response timings)", "",
                  "| run | decode | vision | effects | encode | queues + transfer | server total | end to end p50 |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- |"]
        rows = [("1 stream, as fast as possible", s)] + [(f"{p['streams']} paced", p) for p in result.get("paced", [])]
        for name, r in rows:
            st = r["stage_ms"]
            lines.append(f"| {name} | " + " | ".join(_f(st[k]["mean"], "{:.2f}") for k, _ in STAGE_LABELS)
                         + f" | {_f(st['total_ms']['mean'], '{:.2f}')} | {_f(r['latency_ms']['p50'], '{:.2f}')} |")
        lines += ["", result.get("cost_note", ""), ""]
        bf = s.get("by_faces") or {}
        if bf:
            lines += ["By the number of faces in the frame (single stream, as fast as possible; mean ms):", "",
                      "| faces | frames | decode | vision | effects | encode | decode + vision + effects |",
                      "| --- | --- | --- | --- | --- | --- | --- |"]
            for k, d in bf.items():
                front = sum(d[f"{x}_mean"] for x in ("decode_ms", "vision_ms", "effects_ms"))
                lines.append(f"| {k} | {d['frames']} | " + " | ".join(_f(d[f'{x}_mean'], '{:.2f}') for x in
                             ("decode_ms", "vision_ms", "effects_ms", "encode_ms")) + f" | {front:.2f} |")
            lines.append("")
    p = result.get("peers") or {}
    if p and not p.get("skipped"):
        lines += ["## Peers on the same frames", "", "| what | fps | ms per frame | frames with a face |",
                  "| --- | --- | --- | --- |"]
        mp_ = p.get("mediapipe") or {}
        for k in ("face_detection_short", "face_detection_full", "face_mesh"):
            if isinstance(mp_.get(k), dict):
                v = mp_[k]
                lines.append(f"| MediaPipe {mp_.get('mediapipe_version', '')} {k} (models only, pre-decoded RGB) | "
                             f"{_f(v['fps'])} | {_f(v['ms_per_frame'], '{:.2f}')} | {v['frames_with_face']} |")
        oc = p.get("opencv_mediapipe") or {}
        for k in ("mp4v", "x264"):
            if isinstance(oc.get(k), dict):
                v = oc[k]
                lines.append(f"| OpenCV + MediaPipe loop, decode → mesh → smoothing → encode ({k}) | {_f(v['fps'])} | "
                             f"{_f(v['ms_per_frame'], '{:.2f}')} | {v['frames_with_face']} |")
        if result.get("throughput"):
            lines.append(f"| facestream over gRPC, all effects, 1 stream | {_f(h.get('single_stream_fps'))} | "
                         f"{_f(1000 / h['single_stream_fps'] if h.get('single_stream_fps') else None, '{:.2f}')} | |")
        for k in ("mediapipe", "opencv_mediapipe"):
            if isinstance(p.get(k), dict) and p[k].get("error"):
                lines.append(f"\n{k}: {p[k]['error']}")
        lines.append("")
    elif p.get("skipped"):
        lines += [f"Peers not run: {p['skipped']}", ""]
    if images:
        lines += ["## Plots", ""] + [f"![{i[:-4]}]({i})" for i in images] + [""]
    return "\n".join(lines)
