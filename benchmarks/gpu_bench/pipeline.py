"""One session's throughput per output codec: the stages overlapping in threads as the server runs
them, and a serial pass that times each stage on the device and on the wall clock."""
from __future__ import annotations

import queue
import threading
import time
from typing import Any, Callable

import numpy as np

from facestream.benchmarks.gpu_bench.config import FPS, MAX_FACES, OUTPUTS, QUEUE_DEPTH
from facestream.benchmarks.gpu_bench.report import Deadline
from facestream.benchmarks.gpu_bench.session import Session, device_stream, effect_settings, make_backend
from facestream.benchmarks.gpu_bench.stats import ms_summary, rounded
from facestream.engines.codec.base import Codec, EncoderSettings


class StageClock:
    """Per-stage times of one frame: CUDA events on the session's stream (the stream's time
    between the stage's start and end) where there is one, and the wall time of each stage call,
    the stream synchronised at its end."""

    STAGES = ("decode", "vision", "effects", "encode")

    def __init__(self, stream) -> None:
        self.stream = stream
        self.gpu: dict[str, list[float]] = {s: [] for s in self.STAGES}
        self.wall: dict[str, list[float]] = {s: [] for s in self.STAGES}
        if stream is not None:
            import cupy as cp

            self._cp = cp
            self._events = (cp.cuda.Event(), cp.cuda.Event())

    def timed(self, stage: str, call: Callable[..., Any], *args: Any) -> Any:
        """`call(*args)`, its times added to `stage`'s."""
        if self.stream is not None:
            self._events[0].record(self.stream)
        t = time.perf_counter()
        result = call(*args)
        if self.stream is not None:
            self._events[1].record(self.stream)
            self._events[1].synchronize()
            self.gpu[stage].append(self._cp.cuda.get_elapsed_time(*self._events))
        self.wall[stage].append((time.perf_counter() - t) * 1000)
        return result

    def summary(self) -> dict[str, Any]:
        gpu = {s: ms_summary(v) for s, v in self.gpu.items()} if self.stream is not None else None
        return {"stage_gpu_ms": gpu, "stage_wall_ms": {s: ms_summary(v) for s, v in self.wall.items()}}


def serial_pass(packets, backend: str, output: Codec, deadline: Deadline) -> dict[str, Any]:
    """Every stage of every frame one after the other, timed (StageClock), in one session."""
    b = make_backend(backend, output)
    dec, vis, fx = b.decoder(Codec.H264, 0, 0), b.vision(MAX_FACES, FPS), b.effects()
    settings = effect_settings()
    clock = StageClock(device_stream(b))
    enc = None
    faces: list[int] = []
    sizes: list[int] = []
    t = time.perf_counter()
    for data, pts in [*packets, (b"", 0)]:
        frames = clock.timed("decode", dec.decode, data, pts) if data else clock.timed("decode", dec.flush)
        for frame in frames:
            found = clock.timed("vision", vis.process, frame)
            clock.timed("effects", fx.apply, frame, found, settings)
            if enc is None:
                enc = b.encoder(EncoderSettings(output, *frame.picture_size))
            sizes += [len(p.data) for p in clock.timed("encode", enc.encode, frame)]
            faces.append(len(found))
        if deadline.over:
            break
    wall = time.perf_counter() - t
    for stage in (vis, dec, enc):
        if stage is not None:
            stage.close()
    counts = {str(k): faces.count(k) for k in sorted(set(faces))}
    return {"frames": len(faces), "fps": rounded(len(faces) / wall), **clock.summary(),
            "faces_per_frame_mean": rounded(float(np.mean(faces)), 2) if faces else None,
            "frames_by_faces_found": counts, "output_bytes_mean": int(np.mean(sizes)) if sizes else None}


def _put(q: queue.Queue, item: Any, failed: threading.Event) -> None:
    while not failed.is_set():
        try:
            q.put(item, timeout=0.1)
            return
        except queue.Full:
            continue


def _drain(q: queue.Queue) -> None:
    while q.get() is not None:
        pass


def overlapped_pass(packets, backend: str, output: Codec, deadline: Deadline) -> dict[str, Any]:
    """One session as the server runs it: decode + vision, effects and encode of consecutive
    frames in three threads with bounded queues between them; frames per second end to end."""
    session = Session(backend, output)
    to_effects: queue.Queue = queue.Queue(QUEUE_DEPTH)
    to_encode: queue.Queue = queue.Queue(QUEUE_DEPTH)
    failed = threading.Event()
    errors: list[BaseException] = []

    def decode() -> None:
        try:
            for data, pts in packets:
                if failed.is_set() or deadline.over:
                    break
                for item in session.decode.push(data, pts, time.perf_counter()):
                    _put(to_effects, item, failed)
            for item in [] if failed.is_set() else session.decode.flush():
                _put(to_effects, item, failed)
        except BaseException as exc:
            errors.append(exc)
            failed.set()
        finally:
            _put(to_effects, None, threading.Event())

    def effects() -> None:
        try:
            while (item := to_effects.get()) is not None:
                _put(to_encode, session.effects.apply(item), failed)
        except BaseException as exc:
            errors.append(exc)
            failed.set()
            _drain(to_effects)
        finally:
            _put(to_encode, None, threading.Event())

    threads = [threading.Thread(target=decode), threading.Thread(target=effects)]
    t = time.perf_counter()
    for th in threads:
        th.start()
    done = 0
    try:
        while (item := to_encode.get()) is not None:
            done += len(session.encode.encode(item))
        done += len(session.encode.flush())
    except BaseException:
        failed.set()
        _drain(to_encode)
        raise
    finally:
        for th in threads:
            th.join()
        session.close()
    if errors:
        raise errors[0]
    return {"frames": done, "fps": rounded(done / (time.perf_counter() - t))}


def warm_up(packets, backend: str) -> float:
    """Loads the models, compiles the kernels and opens each output's encoder once, so that no
    measurement pays for them; the seconds it took."""
    t = time.perf_counter()
    for output in OUTPUTS:
        session = Session(backend, output)
        try:
            for data, pts in packets[:3]:
                session.push(data, pts, time.perf_counter())
            session.flush()
        finally:
            session.close()
    return time.perf_counter() - t


def pipeline(packets, backend: str, output: Codec, deadline: Deadline) -> dict[str, Any]:
    """One output codec's pipeline section: the overlapped pass for the rate, the serial pass for each stage's time."""
    overlapped = overlapped_pass(packets, backend, output, deadline.part(deadline.left() / 2))
    serial = serial_pass(packets, backend, output, deadline)
    placements = make_backend(backend, output).placements()
    vision = next(p for p in placements if p.stage == "vision")
    return {"fps": overlapped["fps"], "frames": overlapped["frames"], "fps_is": "one session, stages overlapping "
            "as the server runs them (decode + vision | effects | encode), no gRPC",
            "vision_ran": f"{vision.device} ({vision.engine})", "serial": serial,
            "stage_times_are": "serial pass: CUDA events around each stage on the session's stream (stage_gpu_ms) "
                               "and each stage call's wall time with the stream synchronised (stage_wall_ms)",
            "placements": [vars(p) for p in placements]}
