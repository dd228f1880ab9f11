"""Fixtures of the WebRTC tests: Chromium (skipped, with the reason printed, where it is absent)
and the fake camera's video, made from the shared clip."""
from __future__ import annotations

from pathlib import Path

import pytest
from webrtc_chrome import find_chromium
from webrtc_pictures import CAMERA_FRAMES, write_y4m

_SKIPPED: list[str] = []


@pytest.fixture(scope="session")
def chromium() -> str:
    path = find_chromium()
    if path is None:
        reason = "Chromium is not installed (Debian: apt-get install chromium; .ci/run installs it)"
        _SKIPPED.append(reason)
        pytest.skip(reason)
    return path


def pytest_terminal_summary(terminalreporter) -> None:
    for reason in sorted(set(_SKIPPED)):
        terminalreporter.write_line(f"WebRTC browser test skipped: {reason}", yellow=True)


@pytest.fixture(scope="session")
def camera_y4m(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("camera") / "clip.y4m"
    write_y4m(path, CAMERA_FRAMES)
    return path
