"""Pipeline processes: the stages of CPU sessions in a few processes of their own (--pipeline-processes).

Every codec, model and effect call gives up the interpreter lock and must win it back from the
threads running Python: the event loop, gRPC, the other sessions' tracking and masks. Four 360p
streams in one process lose more to that than to their own work (README, Performance). With N
pipeline processes the event loop and gRPC stay in the server process, and the CPU sessions' stages
run spread over it and the pipeline processes, each with its own models and interpreter lock. Only
packets, effect settings and the frames' records (without their pixels) cross. The server process
takes a session while it has none (a stream alone there has no calls to hand across) or fewer than
every pipeline process. A pipeline process that dies ends its own sessions with an error that says
so, no others, and is replaced.
"""
from __future__ import annotations

import asyncio
import functools
import logging
from concurrent.futures import Future
from typing import Any, Callable

from facestream.engines.effects.base import EffectSettings
from facestream.engines.pipeline import FrameInFlight

from . import pipeline_process
from .config import ServerConfig
from .errors import PipelineProcessLost, StageStuck
from .metrics import Metrics
from .pipeline_link import PipelineLink, exit_text
from .plan import SessionPlan
from .stage_host import SessionStages

log = logging.getLogger("facestream.pipeline")

class ProcessStages:
    """A session's stages in a pipeline process (stage_host.SessionStages): frames go by their index."""

    def __init__(self, process: PipelineLink, sid: str, close_timeout: float) -> None:
        self._process = process
        self._sid = sid
        self._close_timeout = close_timeout if close_timeout > 0 else None
        self._expected_vision_s = 0.0
        self._just_skipped = False
        # The records of the frames decoded and not yet encoded, by frame index.
        self._frames: dict[int, FrameInFlight] = {}
        self.where = f"pipeline process {process.slot + 1} (pid {process.pid})"

    @property
    def expected_vision_s(self) -> float:
        return self._expected_vision_s

    @property
    def just_skipped(self) -> bool:
        return self._just_skipped

    def _decoded(self, reply: pipeline_process.Decoded) -> list[FrameInFlight]:
        items, self._expected_vision_s, self._just_skipped = reply
        for item in items:
            self._frames[item.frame.index] = item
        return items

    def _effects_applied(self, item: FrameInFlight, timings: pipeline_process.Timings) -> FrameInFlight:
        item.timings = timings
        return item

    def _encoded(self, reply: pipeline_process.Encoded) -> list[FrameInFlight]:
        out = []
        for index, packet, timings in reply:
            item = self._frames.pop(index)
            item.packet, item.timings = packet, timings
            out.append(item)
        return out

    def _call(self, name: str, *args: Any, then: Callable[[Any], Any] | None = None) -> Future:
        return self._process.call(name, self._sid, *args, then=then)

    def update_effects(self, settings: EffectSettings) -> Future[None]:
        return self._call("update_effects", settings)

    def push(self, data: bytes, pts: int, arrived: float, skip: bool) -> Future[list[FrameInFlight]]:
        return self._call("push", data, pts, arrived, skip, then=self._decoded)

    def flush_decoder(self) -> Future[list[FrameInFlight]]:
        return self._call("flush_decoder", then=self._decoded)

    def apply_effects(self, item: FrameInFlight) -> Future[FrameInFlight]:
        return self._call("apply_effects", item.frame.index, then=functools.partial(self._effects_applied, item))

    def encode(self, item: FrameInFlight) -> Future[list[FrameInFlight]]:
        return self._call("encode", item.frame.index, item.status, then=self._encoded)

    def flush_encoder(self) -> Future[list[FrameInFlight]]:
        return self._call("flush_encoder", then=self._encoded)

    async def close(self) -> None:
        try:
            await asyncio.wait_for(asyncio.wrap_future(self._call("close")), self._close_timeout)
        except PipelineProcessLost:
            pass  # its codecs went with it
        except asyncio.TimeoutError:
            log.error("session %s: closing its codecs in pipeline process %d took over %s seconds",
                      self._sid, self._process.pid, self._close_timeout)
        finally:
            self._process.sessions -= 1


class PipelineProcesses:
    """The server's pipeline processes: started with the server, replaced when one dies, stopped with it."""

    def __init__(self, config: ServerConfig, count: int, metrics: Metrics) -> None:
        self._config = config
        self._count = count
        self._metrics = metrics
        # A session's calls run at once at most one per stage; room for every session on one process.
        self._threads = 3 * max(1, config.max_sessions) + 2
        self._processes: list[PipelineLink] = []
        self._here = 0  # sessions whose stages run in the server process
        self._stopping = False
        self._loop: asyncio.AbstractEventLoop

    def __len__(self) -> int:
        return self._count

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self._processes if p.alive]

    async def start(self) -> None:
        """Starts them all and waits until each has its models."""
        loop = asyncio.get_running_loop()
        started = [PipelineLink(i, self._config, self._threads, self._lost) for i in range(self._count)]
        try:
            for p in started:
                await asyncio.to_thread(p.wait_ready)
        except PipelineProcessLost:
            for p in started:
                p.stop()
            raise
        self._loop = loop
        for p in started:
            p.attach(loop)
        self._processes = started
        self._metrics.pipeline_processes.set(len(self.pids))
        log.info("%d pipeline processes running (pids %s)", self._count, ", ".join(map(str, self.pids)))

    def _lost(self, process: PipelineLink) -> None:
        """On a thread, once the lost process's sessions have their errors: a new process takes its place."""
        if self._stopping:
            return
        self._metrics.pipeline_processes_lost.inc()
        self._metrics.pipeline_processes.set(len(self.pids))
        log.error("pipeline process %d (pid %d) stopped (%s) with %d sessions; starting another", process.slot + 1,
                  process.pid, exit_text(process.proc.exitcode), process.sessions)
        replacement = PipelineLink(process.slot, self._config, self._threads, self._lost)
        try:
            replacement.wait_ready()
        except PipelineProcessLost as exc:
            log.error("%s; %d pipeline processes left", exc, len(self.pids))
            return
        self._loop.call_soon_threadsafe(self._replace, replacement)

    def _replace(self, process: PipelineLink) -> None:
        if self._stopping:
            process.stop()
            return
        process.attach(self._loop)
        self._processes[process.slot] = process
        self._metrics.pipeline_processes.set(len(self.pids))
        log.info("pipeline process %d running again (pid %d)", process.slot + 1, process.pid)

    async def open(self, sid: str, plan: SessionPlan, reason: str,
                   here: Callable[[Callable[[], None]], SessionStages]) -> SessionStages:
        """The session's stages where the fewest sessions run: in the server process (made by `here`, given what
        to call when they close) when it has none (no calls to hand across: one stream alone loses nothing to the
        processes) or fewer than every pipeline process (it also runs the event loop for all), else in the
        pipeline process with the fewest. Raises ValueError when a codec rejects the plan, StageStuck
        when the process does not answer within the stage timeout."""
        running = [p for p in self._processes if p.alive]
        process = min(running, key=lambda p: p.sessions, default=None)
        if process is None or self._here == 0 or self._here < process.sessions:
            stages = here(self._closed_here)
            self._here += 1
            return stages
        process.sessions += 1
        limit = self._config.stage_timeout_seconds
        stages = ProcessStages(process, sid, limit)
        try:
            await asyncio.wait_for(asyncio.wrap_future(process.call("open", sid, plan, reason)), limit or None)
        except asyncio.TimeoutError:
            process.sessions -= 1
            raise StageStuck("opening the session's codecs", limit) from None
        except BaseException:
            process.sessions -= 1
            raise
        return stages

    def _closed_here(self) -> None:
        self._here -= 1

    async def stop(self) -> None:
        """Ends them all."""
        self._stopping = True
        for p in self._processes:
            if p.alive:
                self._loop.remove_reader(p.conn.fileno())
        await asyncio.gather(*(asyncio.to_thread(p.stop) for p in self._processes))
