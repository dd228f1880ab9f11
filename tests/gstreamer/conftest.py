"""The element as GStreamer runs it: the real gst-launch-1.0 (or an application on the Python GStreamer's
loader embeds), the plugin folder `facestream-client gst-plugin-path` makes, a real server on loopback.

The tests skip, saying why at the end of the run, where GStreamer or its Python plugin loader is not
installed (.ci/run installs both from Debian's packages)."""
from __future__ import annotations

import asyncio
import os
import re
import shlex
import shutil
import subprocess
from asyncio.subprocess import PIPE
from dataclasses import dataclass

import pytest

from facestream.client.gstreamer.install import loader_problem, loader_python, path_problem

from support import BIN


def missing() -> str | None:
    """Why the element cannot be run here, or None."""
    if shutil.which("gst-launch-1.0") is None:
        return "gst-launch-1.0 is not installed (Debian: gstreamer1.0-tools gstreamer1.0-plugins-base/-good/libav)"
    return loader_problem()


MISSING = missing()


def pytest_terminal_summary(terminalreporter):
    if MISSING:
        terminalreporter.write_line(f"GStreamer element tests skipped: {MISSING}")


@dataclass
class Gst:
    env: dict[str, str]
    python: str   # the interpreter GStreamer's loader embeds, for applications

    async def run(self, *args: str, timeout: float = 120) -> Ran:
        """Runs a program with the element's environment; a program still running after `timeout` s fails the test."""
        proc = await asyncio.create_subprocess_exec(*args, env=self.env, stdout=PIPE, stderr=PIPE)
        try:
            out, err = await asyncio.wait_for(proc.communicate(), timeout)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            pytest.fail(f"{args[0]} still ran after {timeout:g} s: {' '.join(args)}")
        assert proc.returncode is not None
        return Ran(proc.returncode, out.decode(errors="replace"), err.decode(errors="replace"))

    async def launch(self, pipeline: str, timeout: float = 120) -> Ran:
        """gst-launch-1.0 -m PIPELINE (-m: the bus messages are printed, the element's among them)."""
        return await self.run("gst-launch-1.0", "-m", *shlex.split(pipeline), timeout=timeout)


@dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str


def _registry(env: dict[str, str], home) -> str:
    """A GStreamer registry that holds the element. GStreamer remembers a plugin whose scan failed
    (the scanner process died, say) as unloadable until its file changes, so one bad scan would fail
    every test after it: the scan is done here, on a fresh registry each time, and its output is
    kept to say why when no scan finds the element."""
    reports = []
    for attempt in range(3):
        registry = str(home / f"registry-{attempt}.bin")
        scan = subprocess.run(["gst-inspect-1.0", "facestream"], env={**env, "GST_REGISTRY": registry,
                              "GST_DEBUG": "GST_PLUGIN_LOADING:4,python:4"}, capture_output=True, text=True,
                              timeout=120)
        if scan.returncode == 0:
            return registry
        reports.append(f"scan {attempt + 1}: exit {scan.returncode}\n{scan.stderr[-3000:]}")
    pytest.fail("GStreamer does not find the facestream element:\n" + "\n".join(reports))


@pytest.fixture(scope="session")
def gst(tmp_path_factory) -> Gst:
    if MISSING:
        pytest.skip(MISSING)
    home = tmp_path_factory.mktemp("facestream-home")
    python = shutil.which(f"python{loader_python()}", path="/usr/bin:/usr/local/bin")
    assert python, f"no python{loader_python()} beside GStreamer's loader"
    # the embedded Python finds its home through the first python3 on PATH (see install.path_problem)
    env = {**os.environ, "FACESTREAM_HOME": str(home),
           "PATH": f"{os.path.dirname(python)}:{os.environ.get('PATH', '')}"}
    assert path_problem(env["PATH"]) is None
    folder = subprocess.run([str(BIN / "facestream-client"), "gst-plugin-path"], env=env, capture_output=True,
                            text=True, check=True, timeout=60).stdout.strip()
    env["GST_PLUGIN_PATH"] = folder
    env["GST_REGISTRY"] = _registry(env, home)
    return Gst(env, python)


FACE_MESSAGE = re.compile(r'from element "facestream0" \(element\): facestream, (.*)$', re.M)


def face_messages(output: str) -> list[dict]:
    """The element's per-frame messages as `gst-launch-1.0 -m` prints them."""
    out = []
    for fields in FACE_MESSAGE.findall(output):
        record = {}
        for name, value in re.findall(r'([\w-]+)=\([\w]+\)("(?:[^"\\]|\\.)*"|[^,;]+)', fields):
            record[name] = re.sub(r"\\(.)", r"\1", value[1:-1]) if value.startswith('"') else value
        out.append(record)
    return out

