"""The bot kit between two aiortc peers, in a network namespace with only loopback (webrtc_netns.py):
the sender plays the camera's video (a scene of the clip), the bot sends it back beautified with
`add_beautified_track`, its settings changed mid-stream; then the sender leaves, and in a second call
the server goes away."""
from __future__ import annotations

import json

import pytest
from peers_scenario import KEEP
from webrtc_netns import run_scenario
from webrtc_pictures import CAMERA_FRAMES, best_match, bgr, differences, face_mask, server_output

from facestream.client import FaceStreamClient

from support import target

EFFECTS = {"smooth": 1.0, "whiten": 1.0, "lips": 1.0, "blush": 1.0, "eyes": 0.6}
UPDATE = {"smooth": 1.0, "whiten": 0.5, "blush": 1.0, "eyes": 0.6}   # lips off, less whitening


@pytest.fixture(scope="module")
def call(camera_y4m, tmp_path_factory):
    out = tmp_path_factory.mktemp("peers")
    run_scenario("peers_scenario.py", str(out), str(camera_y4m), json.dumps(EFFECTS), json.dumps(UPDATE),
                 timeout=90)
    import numpy as np

    with np.load(out / "received.npz") as kept:
        pictures = [kept[name] for name in kept.files]
    return json.loads((out / "results.json").read_text()), pictures


def test_only_loopback_is_offered(call):
    results, _ = call
    assert results["leaving"]["candidates"] == ["127.0.0.1"]


def test_frames_come_back_with_their_faces(call):
    leaving = call[0]["leaving"]
    stats = leaving["stats"]
    assert stats["frames_in"] >= stats["frames_out"] >= leaving["received"] >= 100
    assert stats["frames_with_faces"] == sum(1 for n in leaving["faces"] if n) >= 0.3 * stats["frames_out"]
    assert 0 < stats["latency_ms"]["p50"] <= stats["latency_ms"]["p99"]


def test_a_settings_update_is_acknowledged_within_a_few_frames(call):
    leaving = call[0]["leaving"]
    versions, at = leaving["versions"], leaving["updated_at"]
    assert leaving["version"] == 1 and versions == sorted(versions)
    assert set(versions[:at]) == {0} and versions[-1] == 1
    assert versions.index(1) - at <= 5, f"acknowledged {versions.index(1) - at} frames after the update"
    assert leaving["stats"]["effects_version"] == 1


async def test_faces_come_back_beautified_and_the_rest_unchanged(call, clip_frames, server):
    leaving, pictures = call[0]["leaving"], call[1]
    frames = [clip_frames[i] for i in CAMERA_FRAMES]
    sources = [bgr(f) for f in frames]
    checked = []
    async with FaceStreamClient(target(server)) as client:
        for i, picture in enumerate(pictures):
            received = i * KEEP   # every KEEP-th frame the sender received was kept
            if abs(received - leaving["updated_at"]) < 15:
                continue  # around the update either settings may be in force
            effects = EFFECTS if received < leaving["updated_at"] else UPDATE
            k = best_match(picture, sources)
            reference, faces = await server_output(client, frames[k], effects)
            mask = face_mask(picture.shape, faces)
            if faces and differences(reference, sources[k], reference, mask).face_from_source >= 4:
                checked.append((k, differences(picture, sources[k], reference, mask)))
    report = "\n".join(f"frame {k}: {d}" for k, d in checked)
    assert len(checked) >= 6, f"too few pictures of beautified faces:\n{report}"
    assert all(d.rest_from_source < 6 for _, d in checked), f"the rest changed beyond codec noise:\n{report}"
    beautified = [k for k, d in checked
                  if d.face_from_source > d.rest_from_source + 4 and d.face_from_server < d.face_from_source]
    assert len(beautified) >= 0.7 * len(checked), f"faces not beautified:\n{report}"


def test_the_session_ends_cleanly_when_the_peer_leaves(call):
    leaving = call[0]["leaving"]
    assert leaving["sessions_while_running"] == 1
    assert leaving["sessions_after_leaving"] == 0 and leaving["seconds_to_session_end"] < 5
    assert leaving["session_frames_out"] >= leaving["stats"]["frames_out"]   # the server's stats came
    assert leaving["track_error"] is None


def test_when_the_server_goes_the_peer_is_told(call):
    gone = call[0]["server_gone"]
    assert gone["told"] and gone["seconds_to_told"] < 5   # the track it received ended (RTCP BYE)
    assert gone["track_state"] == "ended" and gone["track_error"].startswith("UNAVAILABLE")
