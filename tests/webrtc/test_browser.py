"""A camera in a real browser comes back beautified: headless Chromium plays the clip as its camera,
opens the gateway's page with ?autostart=1 and shows the processed video. The server, the
`facestream-webrtc` command and the browser run once, in a network namespace with only loopback
(webrtc_netns.py); the tests below check what that run showed."""
from __future__ import annotations

import json

import cv2
import pytest
from webrtc_netns import run_scenario
from webrtc_pictures import CAMERA_FRAMES, best_match, bgr, differences, face_mask, server_output

from facestream.client import FaceStreamClient

from support import target

EFFECTS = {"smooth": 1.0, "whiten": 1.0, "lips": 1.0, "blush": 1.0, "eyes": 0.6}


@pytest.fixture(scope="module")
def page_run(chromium, camera_y4m, tmp_path_factory):
    out = tmp_path_factory.mktemp("browser")
    effects = ",".join(f"{k}={v}" for k, v in EFFECTS.items())
    run_scenario("browser_scenario.py", str(out), str(camera_y4m), effects, timeout=90)
    return out, json.loads((out / "results.json").read_text())


async def test_the_page_shows_the_camera_beautified(page_run, clip_frames, server):
    out, results = page_run
    assert results["size"] == [640, 360]
    sources = [clip_frames[i] for i in CAMERA_FRAMES]
    pictures = [bgr(f) for f in sources]
    checked = []
    async with FaceStreamClient(target(server)) as client:
        for name in results["snapshots"]:
            shown = cv2.imread(str(out / name))
            k = best_match(shown, pictures)
            reference, faces = await server_output(client, sources[k], EFFECTS)
            mask = face_mask(shown.shape, faces)
            if not faces or differences(reference, pictures[k], reference, mask).face_from_source < 4:
                continue  # the server itself leaves this frame's face alone
            checked.append((name, differences(shown, pictures[k], reference, mask)))
    report = "\n".join(f"{name}: {d}" for name, d in checked)
    assert checked and all(d.rest_from_source < 6 for _, d in checked), (
        f"outside the faces the pictures changed beyond codec noise:\n{report}")
    # a picture just after a scene cut is mostly codec artefacts; every other one shows the server's faces
    beautified = [name for name, d in checked
                  if d.face_from_source > d.rest_from_source + 4 and d.face_from_server < d.face_from_source]
    assert len(beautified) >= 3 and len(beautified) >= 0.7 * len(checked), (
        f"too few pictures show beautified faces ({len(beautified)} of {len(checked)}):\n{report}")

def test_stats_count_the_frames_and_the_added_latency(page_run):
    _, results = page_run
    [connection] = results["stats"]["connections"]
    assert connection["state"] == "connected" and connection["wire"] == "nv12"
    assert connection["frames_in"] >= connection["frames_out"] >= results["frames_shown_at_first"] >= 60
    assert connection["frames_with_faces"] >= 0.5 * connection["frames_out"]   # the camera shows a face
    latency = connection["latency_ms"]
    assert 0 < latency["p50"] <= latency["p99"] < 1000
    assert connection["effects_version"] == 0


def test_a_slider_changes_the_settings_live_and_the_page_shows_them_applied(page_run):
    _, results = page_run
    assert results["applied"].startswith("applied (version 1)")
    [connection] = results["stats_after_update"]["connections"]
    assert connection["effects_version"] == 1
    assert "fps" in results["page_numbers"] and "latency" in results["page_numbers"]


def test_when_the_server_goes_the_page_is_told_and_the_connection_let_go(page_run):
    _, results = page_run
    assert results["error_shown"].startswith("the facestream session ended: UNAVAILABLE")
    assert results["stats_after_server_gone"]["connections"] == []
    assert results["gateway_exit"] == 0


def test_the_gateway_wants_its_token(page_run):
    _, results = page_run
    assert results["stats_without_token"] == 401
