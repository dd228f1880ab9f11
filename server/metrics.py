"""Prometheus metrics (series `facestream_*`), one registry per server, served over HTTP."""
from __future__ import annotations

import logging
from typing import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily

from facestream.engines.stages import TIMINGS, FrameStatus, Queue

from .metrics_http import MetricsEndpoint

log = logging.getLogger("facestream.metrics")

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12)


class _QueueCollector:
    """Queue depths summed over the running sessions, read at scrape time."""

    def __init__(self, depths: Callable[[], dict[Queue, int]]) -> None:
        self._depths = depths

    def collect(self) -> Iterable[GaugeMetricFamily]:
        g = GaugeMetricFamily("facestream_queue_depth", "Items waiting between stages, summed over sessions",
                              labels=["queue"])
        for queue, depth in self._depths().items():
            g.add_metric([queue.value], depth)
        yield g


class Metrics:
    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        self.sessions_active = Gauge("facestream_sessions_active", "Sessions running now", registry=r)
        self.streams_open = Gauge("facestream_streams_open",
                                  "Process streams open now, those still waiting for their config included",
                                  registry=r)
        self.sessions = Counter("facestream_sessions", "Sessions ended, by gRPC status code", ["code"], registry=r)
        self.errors = Counter("facestream_errors", "Streams ended with an error, by gRPC status code", ["code"],
                              registry=r)
        self.packets_in = Counter("facestream_packets_in", "Packets (input frames) received", registry=r)
        self.frames_in = Counter("facestream_frames_in", "Frames decoded", registry=r)
        self.frames_out = Counter("facestream_frames_out", "Frames sent back, by status", ["status"], registry=r)
        self.drops = Counter("facestream_drops", "Real-time policy: frames passed through or dropped", ["kind"],
                             registry=r)
        self.faces = Counter("facestream_faces", "Faces reported in frames sent back, by where their landmarks "
                             "come from: fresh (this frame's vision) or carried (an earlier frame's: real-time "
                             "policy, or a still face keeping its last mesh)", ["landmarks"], registry=r)
        self.frames_carried = Counter("facestream_frames_carried",
                                      "Frames processed with at least one carried face (Face.carried)",
                                      registry=r)
        self.stage_seconds = Histogram("facestream_stage_seconds", "Per-frame time in each stage", ["stage"],
                                       buckets=_LATENCY_BUCKETS, registry=r)
        self.auth_failures = Counter("facestream_auth_failures", "Rejected credentials, by reason", ["reason"],
                                     registry=r)
        self.pipeline_processes = Gauge("facestream_pipeline_processes",
                                        "Pipeline processes running and taking sessions", registry=r)
        self.pipeline_processes_lost = Counter("facestream_pipeline_processes_lost",
                                               "Pipeline processes that stopped unexpectedly (each replaced)",
                                               registry=r)
        self.stuck_calls = Counter("facestream_stuck_stage_calls",
                                   "Stage calls that outlasted --stage-timeout-seconds (each ended its session)",
                                   registry=r)
        self.model_ready = Gauge("facestream_model_ready", "1 once the models are verified and warmed up", registry=r)
        self.draining = Gauge("facestream_draining", "1 while the server drains before stopping", registry=r)
        for code in ("OK", "INVALID_ARGUMENT", "RESOURCE_EXHAUSTED", "DEADLINE_EXCEEDED", "UNAVAILABLE",
                     "UNAUTHENTICATED", "CANCELLED"):
            self.sessions.labels(code)
        for status in FrameStatus:
            self.frames_out.labels(status.value)
            if status is not FrameStatus.PROCESSED:
                self.drops.labels(status.value)
        for source in ("fresh", "carried"):
            self.faces.labels(source)
        self._http: MetricsEndpoint | None = None

    def watch_queues(self, depths: Callable[[], dict[Queue, int]]) -> None:
        self.registry.register(_QueueCollector(depths))

    def observe_frame(self, timings: dict[str, float], status: FrameStatus, faces: int = 0, carried: int = 0) -> None:
        """Counts a frame sent back with its `faces`, `carried` of them from an earlier frame; `timings` in
        milliseconds, by the names in stages.TIMINGS."""
        self.frames_out.labels(status.value).inc()
        if status is not FrameStatus.PROCESSED:
            self.drops.labels(status.value).inc()
        elif carried:
            self.frames_carried.inc()
        self.faces.labels("fresh").inc(faces - carried)
        self.faces.labels("carried").inc(carried)
        for name in TIMINGS:
            ms = timings.get(name)
            if ms is not None:
                self.stage_seconds.labels(name).observe(ms / 1000.0)

    def serve(self, host: str, port: int) -> int:
        """Starts the /metrics HTTP endpoint; returns the bound port."""
        self._http = MetricsEndpoint(self.registry)
        bound = self._http.start(host, port)
        log.info("metrics on http://%s:%d/metrics", host, bound)
        return bound

    def stop(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None
