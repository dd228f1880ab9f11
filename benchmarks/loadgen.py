"""Load generator: N concurrent sessions through the client SDK, every frame's latency recorded.

Each stream sends the same clip (held in memory, looped with shifted pts when more frames are
asked for than it has), paced at the source frame rate like a camera or as fast as the server
takes packets. Paced streams start spread over one frame interval (stream i starts i/N of an
interval after stream 0), as independent cameras would be; unpaced streams all start at once.
"""
from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping

from facestream.client import FaceStreamClient, FaceStreamError, FrameResult, VideoSource
from facestream.client.source import SourcePacket
from facestream.client.targets import split_targets
from facestream.proto import pb

STAGES = ("decode_ms", "vision_ms", "effects_ms", "encode_ms", "queue_ms", "total_ms")
STATUS_NAMES = {pb.FRAME_PROCESSED: "processed", pb.FRAME_PASSED_THROUGH: "passed_through",
                pb.FRAME_DROPPED: "dropped"}

_PACKETS: dict[tuple[str, bool], list[SourcePacket]] = {}


class ClipSource(VideoSource):
    """A VideoSource that yields `frames` packets of the clip from memory, looping if needed.

    Reading the file once and replaying it keeps demuxing off the measurement and lets many
    streams share one copy of the packets.
    """

    def __init__(self, url: str, frames: int | None = None, *, raw: bool = False) -> None:
        super().__init__(url, raw=raw)
        key = (url, raw)
        if key not in _PACKETS:
            _PACKETS[key] = list(super().__iter__())
        self.packets = _PACKETS[key]
        if not self.packets:
            raise ValueError(f"{url!r} has no packets")
        self.limit = frames or len(self.packets)
        self.sent = 0
        self.first_taken = self.last_taken = math.nan  # when the SDK took the first and last packet

    def __iter__(self) -> Iterator[SourcePacket]:
        step = self._ticks_per_frame()
        span = max(p.pts for p in self.packets) - min(p.pts for p in self.packets) + step
        for i in range(self.limit):
            loop, j = divmod(i, len(self.packets))
            p = self.packets[j]
            self.sent += 1
            self.last_taken = time.perf_counter()
            if i == 0:
                self.first_taken = self.last_taken
            yield SourcePacket(p.data, p.pts + loop * span)

    @property
    def interval_s(self) -> float:
        return float(1 / self.frame_rate)


@dataclass
class FrameRecord:
    stream: int
    index: int
    pts: int
    received_s: float  # since the start of the run
    latency_ms: float
    status: str
    timings: dict[str, float]
    faces: int = 0


@dataclass
class StreamOutcome:
    stream: int
    frames_sent: int = 0
    frames_received: int = 0
    first_sent_s: float = math.nan
    last_taken_s: float = math.nan
    last_received_s: float = math.nan
    stats: dict[str, Any] = field(default_factory=dict)
    placements: list[dict[str, str]] = field(default_factory=list)
    error: str | None = None


@dataclass
class RunResult:
    """One load step: `streams` sessions at once."""

    streams: int
    paced: bool
    frames_per_stream: int
    frame_rate: float
    wall_s: float
    records: list[FrameRecord]
    outcomes: list[StreamOutcome]
    utilisation: dict[str, Any] = field(default_factory=dict)

    def latencies(self, skip: int = 0) -> list[float]:
        return [r.latency_ms for r in self.records if r.index >= skip and not math.isnan(r.latency_ms)]


def stats_dict(stats: pb.SessionStats) -> dict[str, Any]:
    t = stats.mean_timings
    return {
        "packets_in": stats.packets_in, "frames_decoded": stats.frames_decoded, "frames_out": stats.frames_out,
        "frames_passed_through": stats.frames_passed_through, "frames_dropped": stats.frames_dropped,
        "frames_carried": stats.frames_carried, "faces_fresh": stats.faces_fresh, "faces_carried": stats.faces_carried,
        "faces_detected": stats.faces_detected, "duration_s": stats.duration_s, "fps": stats.fps,
        "mean_timings": {k: getattr(t, k) for k in STAGES},
    }


async def _one_stream(
    target: str, clip: str, i: int, frames: int | None, *, pace: bool, delay: float, t0: float,
    effects: Mapping[str, float], realtime: bool, backend: pb.Backend, records: list[FrameRecord],
    return_faces: bool,
) -> StreamOutcome:
    out = StreamOutcome(i)
    src = ClipSource(clip, frames)
    if delay:
        await asyncio.sleep(delay)
    index = 0

    def on_frame(fr: FrameResult) -> None:
        nonlocal index
        now = time.perf_counter() - t0
        p = fr.packet
        records.append(FrameRecord(i, index, p.pts, now, fr.latency_ms, STATUS_NAMES.get(p.status, str(p.status)),
                                   {k: getattr(p.timings, k) for k in STAGES}, len(p.faces)))
        index += 1
        out.last_received_s = now

    out.first_sent_s = time.perf_counter() - t0
    # several servers: stream i starts on the i-th (each stream has its own client, and a client opens its
    # first session on the first server it is given)
    servers = split_targets(target)
    turn = i % len(servers)
    try:
        async with FaceStreamClient(servers[turn:] + servers[:turn]) as client:
            result = await client.process(src, effects=effects, on_frame=on_frame, pace=pace, realtime=realtime,
                                          backend=backend, return_faces=return_faces)
        out.stats = stats_dict(result.stats)
        out.placements = [{"stage": s.stage, "device": s.device, "engine": s.engine, "reason": s.reason}
                          for s in result.started.stages]
    except FaceStreamError as exc:
        out.error = str(exc)
    finally:
        src.close()
    out.frames_sent = src.sent
    out.first_sent_s = src.first_taken - t0
    out.last_taken_s = src.last_taken - t0
    out.frames_received = index
    return out


async def run_streams(
    target: str, clip: str, streams: int, *, frames: int | None = None, pace: bool = True,
    effects: Mapping[str, float] | None = None, realtime: bool = False, backend: pb.Backend = pb.BACKEND_AUTO,
    sampler: "Any | None" = None, return_faces: bool = True,
) -> RunResult:
    """Runs `streams` sessions at once and returns every frame's record.

    return_faces: ask for the faces (boxes only, no landmarks) so that costs can be split by the number
    of faces; without them and without effects the server runs no vision: the codec-only pass-through.
    """
    probe = ClipSource(clip, frames)
    interval, rate, n_frames = probe.interval_s, float(probe.frame_rate), probe.limit
    probe.close()
    records: list[FrameRecord] = []
    if sampler:
        sampler.start()
    t0 = time.perf_counter()
    tasks = [
        _one_stream(target, clip, i, frames, pace=pace, delay=(i * interval / streams) if pace else 0.0, t0=t0,
                    effects=effects or {}, realtime=realtime, backend=backend, records=records,
                    return_faces=return_faces)
        for i in range(streams)
    ]
    outcomes = await asyncio.gather(*tasks)
    wall = time.perf_counter() - t0
    util = sampler.stop() if sampler else {}
    return RunResult(streams, pace, n_frames, rate, wall, records, list(outcomes), util)


def percentile(values: list[float], q: float) -> float:
    """Linear-interpolated percentile, q in 0..100; NaN for no values."""
    if not values:
        return math.nan
    s = sorted(values)
    k = (len(s) - 1) * q / 100.0
    lo, hi = math.floor(k), math.ceil(k)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def summarise(run: RunResult, *, skip: int = 0) -> dict[str, Any]:
    """Latency percentiles, throughput, drops, per-stage timings and utilisation of one step."""
    lat = run.latencies(skip)
    sent = sum(o.frames_sent for o in run.outcomes)
    received = sum(o.frames_received for o in run.outcomes)
    firsts = [o.first_sent_s for o in run.outcomes if not math.isnan(o.first_sent_s)]
    lasts = [o.last_received_s for o in run.outcomes if not math.isnan(o.last_received_s)]
    span = (max(lasts) - min(firsts)) if firsts and lasts else run.wall_s
    # the SDK takes packet k just after sending packet k-1: from taking the first to taking the last,
    # a paced stream sends n - 2 intervals
    taken = [o.last_taken_s for o in run.outcomes if not math.isnan(o.last_taken_s)]
    send_span = (max(taken) - min(firsts)) if firsts and taken else math.nan
    statuses: dict[str, int] = {}
    for r in run.records:
        statuses[r.status] = statuses.get(r.status, 0) + 1
    stage: dict[str, dict[str, float]] = {}
    for k in STAGES:
        vals = [r.timings[k] for r in run.records if r.index >= skip]
        stage[k] = {"mean": sum(vals) / len(vals) if vals else math.nan, "p50": percentile(vals, 50),
                    "p99": percentile(vals, 99)}
    by_faces: dict[str, dict[str, Any]] = {}
    for r in run.records:
        if r.index < skip:
            continue
        key = str(min(r.faces, 2)) if r.faces < 2 else "2+"
        d = by_faces.setdefault(key, {"frames": 0, "latency": [], **{k: 0.0 for k in STAGES}})
        d["frames"] += 1
        d["latency"].append(r.latency_ms)
        for k in STAGES:
            d[k] += r.timings[k]
    by_faces_out = {k: {"frames": d["frames"], "latency_p50_ms": percentile(d["latency"], 50),
                        "latency_p99_ms": percentile(d["latency"], 99),
                        **{f"{k2}_mean": d[k2] / d["frames"] for k2 in STAGES}}
                    for k, d in sorted(by_faces.items())}
    per_stream_fps = [o.frames_received / (o.last_received_s - o.first_sent_s) for o in run.outcomes
                      if o.frames_received and o.last_received_s > o.first_sent_s]
    return {
        "streams": run.streams,
        "paced": run.paced,
        "frames_per_stream": run.frames_per_stream,
        "source_fps": run.frame_rate,
        "wall_s": run.wall_s,
        "frames_sent": sent,
        "frames_received": received,
        "frames_lost": sent - received,
        "latency_ms": {"p50": percentile(lat, 50), "p90": percentile(lat, 90), "p99": percentile(lat, 99),
                       "max": max(lat) if lat else math.nan, "mean": sum(lat) / len(lat) if lat else math.nan,
                       "count": len(lat), "skipped_first_frames_per_stream": skip},
        "throughput_fps": {"in": max(1, sent - 2 * run.streams) / send_span if send_span > 0 else math.nan,
                           "out": received / span if span > 0 else math.nan,
                           "per_stream_mean": (sum(per_stream_fps) / len(per_stream_fps) if per_stream_fps
                                               else math.nan)},
        "frame_status": statuses,
        "dropped_frames": statuses.get("dropped", 0),
        "passed_through_frames": statuses.get("passed_through", 0),
        "server_stats": [o.stats for o in run.outcomes],
        "stage_ms": stage,
        "by_faces": by_faces_out,
        "errors": [o.error for o in run.outcomes if o.error],
        "utilisation": run.utilisation,
        "placements": run.outcomes[0].placements if run.outcomes else [],
    }


def latency_cdf(run: RunResult, *, skip: int = 0, points: int = 201) -> list[list[float]]:
    """[latency_ms, fraction] pairs at evenly spaced fractions (enough to redraw the CDF)."""
    lat = sorted(run.latencies(skip))
    if not lat:
        return []
    return [[percentile(lat, 100.0 * k / (points - 1)), k / (points - 1)] for k in range(points)]
