"""--pipeline-processes: CPU sessions' stages in processes of their own, spread, isolated, replaced."""
from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys

import grpc
import psutil
import pytest

from facestream.client import FaceStreamClient
from facestream.proto import pb, rpc
from facestream.server.config import ConfigurationError, ServerConfig

from fs_helpers import CLIP, END, clip_packets, h264_config, stream
from support import CLIP_FRAMES, decode_file, nv12, target

EFFECTS = {"smooth": 0.7, "whiten": 0.3, "eyes": 0.3, "lips": 0.5, "slim": 0.4}


def pipeline_pid(started: pb.SessionStarted) -> int:
    """The pid of the pipeline process the placements say the session runs in."""
    found = {int(m.group(1)) for s in started.stages
             if (m := re.search(r"pipeline process \d \(pid (\d+)\)", s.reason))}
    assert len(found) == 1, [s.reason for s in started.stages]
    return found.pop()


def runs_here(started: pb.SessionStarted) -> bool:
    return not any("pipeline process" in s.reason for s in started.stages)


class Held:
    """A session opened and left waiting: it takes the server process's place, so the next go to the pipeline
    processes (the server process takes a session first when it has no more than they do)."""

    def __init__(self, channel: grpc.aio.Channel, config: pb.ProcessRequest | None = None) -> None:
        self.call = rpc.FaceStreamStub(channel).Process(timeout=120)
        self.config = config or h264_config()

    async def __aenter__(self) -> Held:
        await self.call.write(self.config)
        assert runs_here((await self.call.read()).started)
        return self

    async def __aexit__(self, *exc) -> None:
        await self.call.write(END)
        await self.call.done_writing()
        while await self.call.read() is not grpc.aio.EOF:
            pass


async def test_sessions_spread_over_the_server_and_its_processes_with_the_same_output(server_factory, tmp_path):
    """Three sessions at once: one in the server process, one in each pipeline process; each one's frames,
    faces and pixels are those of the same session alone in a server without pipeline processes."""
    spread = await server_factory(backend="cpu", pipeline_processes=2)
    local = await server_factory(backend="cpu")

    async def run(srv, name: str):
        faces: list = []
        async with FaceStreamClient(target(srv)) as client:
            result = await client.process(str(CLIP), output=str(tmp_path / name), effects=EFFECTS, return_faces=True,
                                          return_landmarks=True, on_frame=lambda f: faces.append(f.packet.faces))
        return result, faces

    runs = await asyncio.gather(*(run(spread, f"{i}.mp4") for i in range(3)))
    reference, faces_ref = await run(local, "ref.mp4")
    assert [r.frames for r, _ in runs] == [CLIP_FRAMES] * 3 and reference.frames == CLIP_FRAMES
    assert sum(runs_here(r.started) for r, _ in runs) == 1 and runs_here(reference.started)
    pids = {pipeline_pid(r.started) for r, _ in runs if not runs_here(r.started)}
    assert pids == set(spread.pipelines.pids) and len(pids) == 2 and os.getpid() not in pids
    assert all(faces == faces_ref for _, faces in runs)
    assert sum(len(f) for f in faces_ref) > CLIP_FRAMES  # the clip's faces, landmarks and all
    ref = [nv12(f) for f in decode_file(tmp_path / "ref.mp4")]
    for i in range(3):
        out = [nv12(f) for f in decode_file(tmp_path / f"{i}.mp4")]
        assert len(out) == CLIP_FRAMES and all((x == y).all() for x, y in zip(out, ref, strict=True))


async def test_a_killed_process_ends_its_session_alone_and_is_replaced(server_factory):
    srv = await server_factory(backend="cpu", pipeline_processes=2)
    packets = clip_packets(120)
    async with grpc.aio.insecure_channel(target(srv)) as ch, Held(ch):
        doomed = rpc.FaceStreamStub(ch).Process(timeout=60)
        await doomed.write(h264_config())
        started = (await doomed.read()).started
        for p in packets[:10]:
            await doomed.write(p)
        first = await doomed.read()
        assert first.WhichOneof("msg") == "packet"
        pid = pipeline_pid(started)
        other = asyncio.create_task(stream(ch, [h264_config(), *packets, END]))
        os.kill(pid, signal.SIGKILL)
        for p in packets[10:]:
            try:
                await doomed.write(p)
            except (grpc.aio.AioRpcError, asyncio.InvalidStateError):
                break
        responses = []
        try:
            while (r := await doomed.read()) is not grpc.aio.EOF:
                responses.append(r)
        except grpc.aio.AioRpcError:
            pass
        errors = [r.error for r in responses if r.WhichOneof("msg") == "error"]
        assert await doomed.code() == grpc.StatusCode.INTERNAL
        message = f"the pipeline process running this session (pid {pid}) stopped (killed by signal 9)"
        assert errors and errors[0].message.startswith(message), errors
        assert message in await doomed.details()
        survivor = await other
        assert survivor.code == grpc.StatusCode.OK, survivor
        assert len(survivor.packets) == 120 and pipeline_pid(survivor.responses[0].started) != pid

        for _ in range(600):  # a new process takes the dead one's place
            if len(srv.pipelines.pids) == 2 and pid not in srv.pipelines.pids:
                break
            await asyncio.sleep(0.05)
        assert len(srv.pipelines.pids) == 2 and pid not in srv.pipelines.pids
        gauge = srv.metrics.registry.get_sample_value
        assert gauge("facestream_pipeline_processes") == 2 and gauge("facestream_pipeline_processes_lost_total") == 1
        runs = await asyncio.gather(*(stream(ch, [h264_config(), *packets[:20], END]) for _ in range(2)))
        assert [(r.code, len(r.packets)) for r in runs] == [(grpc.StatusCode.OK, 20)] * 2
        assert {pipeline_pid(r.responses[0].started) for r in runs} == set(srv.pipelines.pids)


async def test_errors_in_a_pipeline_process_reach_the_client_as_in_the_server_process(server_factory):
    """A codec's error raised in the pipeline process gets the status and message it gets in the server."""
    undeclared = h264_config(input=pb.InputConfig(codec=pb.CODEC_H264))  # the size left to the bitstream
    outcomes = []
    srv = await server_factory(backend="cpu", pipeline_processes=1, max_width=320, max_height=240)
    async with grpc.aio.insecure_channel(target(srv)) as ch:
        async with Held(ch, undeclared):
            outcomes.append(await stream(ch, [undeclared, *clip_packets(5), END]))  # in the pipeline process
        outcomes.append(await stream(ch, [undeclared, *clip_packets(5), END]))  # in the server process
    assert not runs_here(outcomes[0].responses[0].started) and runs_here(outcomes[1].responses[0].started)
    for o in outcomes:
        assert o.code == grpc.StatusCode.RESOURCE_EXHAUSTED, o
        assert "frame size 640x360 is over this server's limit of 320x240" in o.details
    assert outcomes[0].details == outcomes[1].details


async def test_stopping_the_server_ends_its_pipeline_processes(server_factory):
    srv = await server_factory(backend="cpu", pipeline_processes=2)
    pids = srv.pipelines.pids
    assert len(pids) == 2 and all(psutil.pid_exists(p) for p in pids)
    await srv.stop(0)
    assert not any(psutil.pid_exists(p) for p in pids)


def test_a_count_below_minus_one_is_refused_with_the_reason():
    with pytest.raises(ConfigurationError, match="pipeline-processes: -2 is not a number of processes; give one"):
        ServerConfig(pipeline_processes=-2)


def test_by_default_one_per_usable_core_for_cpu_sessions_and_none_on_request(tmp_path):
    from facestream.server.app import pipeline_process_count, usable_cores

    cores = len(os.sched_getaffinity(0))
    assert pipeline_process_count(ServerConfig(backend="cpu")) == min(usable_cores(), 16)
    assert pipeline_process_count(ServerConfig(backend="cpu", max_sessions=1)) == 1
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert usable_cores(tmp_path) == cores
    (tmp_path / "cpu.max").write_text("50000 100000\n")  # a container limited to half a core
    assert usable_cores(tmp_path) == 1
    (tmp_path / "cpu.max").write_text(f"{cores * 200000} 100000\n")  # a quota above the cores it may run on
    assert usable_cores(tmp_path) == cores
    assert pipeline_process_count(ServerConfig(backend="cpu", pipeline_processes=0)) == 0
    assert pipeline_process_count(ServerConfig(backend="cpu", pipeline_processes=3)) == 3


def test_a_process_that_cannot_start_stops_the_server_start_with_the_reason(tmp_path):
    """A program that starts the server without the `__main__` guard: its pipeline process, importing the
    program again, cannot start one of its own and exits; the server refuses to start, saying so."""
    script = tmp_path / "unguarded.py"
    script.write_text(
        "import asyncio\n"
        "from facestream.server.app import FaceStreamServer\n"
        "from facestream.server.config import ConfigurationError, ServerConfig\n"
        "async def main():\n"
        "    srv = FaceStreamServer(ServerConfig(host='127.0.0.1', port=0, backend='cpu', pipeline_processes=1))\n"
        "    try:\n"
        "        await srv.start()\n"
        "    except ConfigurationError as exc:\n"
        "        print('refused:', exc)\n"
        "    finally:\n"
        "        await srv.stop(0)\n"
        "asyncio.run(main())\n")
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert ("refused: --pipeline-processes 1: pipeline process 1 did not start: it exited (exit code 1; its error "
            "is in the log above)") in proc.stdout, proc.stdout
    assert "if __name__ == '__main__':" in proc.stderr  # Python's own explanation, from the process
