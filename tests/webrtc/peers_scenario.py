"""Run inside a loopback-only network namespace (see webrtc_netns.py): two aiortc peers. The sender
plays the camera's video (a scene of the clip) and shows what comes back; the bot wraps the sender's
track with the bot kit and sends it back beautified, its settings changed mid-stream. Then the sender
leaves (the bot's session must end), and in a second call the server goes away (the sender's track
must end). Writes OUT/results.json and OUT/received.npz (pictures the sender received).

    python peers_scenario.py OUT CAMERA.y4m EFFECTS-JSON UPDATE-JSON
"""
from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

import numpy as np
from aiortc import RTCConfiguration, RTCPeerConnection
from aiortc.contrib.media import MediaPlayer
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from facestream.client import FaceStreamClient
from facestream.client.webrtc import BeautifiedTrack, TrackResult, add_beautified_track
from facestream.client.webrtc.ice import offer_host_addresses
from facestream.server.app import FaceStreamServer
from facestream.server.config import ServerConfig

KEEP = 5


class Call:
    """The sender and the bot, connected; `received` counts what came back, `kept` every KEEP-th picture."""

    def __init__(self, clip: str, client: FaceStreamClient, effects: dict) -> None:
        self.sender = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.bot = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.player = MediaPlayer(clip, loop=True)
        self.results: list[TrackResult] = []
        self.received = 0
        self.kept: list[np.ndarray] = []
        self.came_back_ended = asyncio.Event()
        self.track: BeautifiedTrack | None = None
        self.sender.addTrack(self.player.video)

        @self.bot.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            self.track = add_beautified_track(self.bot, track, client, effects=effects, on_result=self.results.append)

        @self.sender.on("track")
        def on_back(track: MediaStreamTrack) -> None:
            self._watcher = asyncio.ensure_future(self._watch(track))

    async def _watch(self, track: MediaStreamTrack) -> None:
        try:
            while True:
                frame = await track.recv()
                if self.received % KEEP == 0:
                    self.kept.append(frame.to_ndarray(format="bgr24"))
                self.received += 1
        except MediaStreamError:
            self.came_back_ended.set()

    async def connect(self) -> None:
        await self.sender.setLocalDescription(await self.sender.createOffer())
        await self.bot.setRemoteDescription(self.sender.localDescription)
        await self.bot.setLocalDescription(await self.bot.createAnswer())
        await self.sender.setRemoteDescription(self.bot.localDescription)

    async def wait_received(self, count: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.received < count:
            assert time.monotonic() < deadline, f"only {self.received} frames came back in {timeout:g} s"
            await asyncio.sleep(0.05)

    def candidates(self) -> list[str]:
        return [line.split()[4] for line in self.bot.localDescription.sdp.splitlines()
                if line.startswith("a=candidate:")]


async def wait_until(condition, timeout: float) -> float:
    """Seconds until `condition()` held (or `timeout`, if it never did)."""
    start = time.monotonic()
    while not condition() and time.monotonic() - start < timeout:
        await asyncio.sleep(0.05)
    return round(time.monotonic() - start, 2)


async def _connected(clip: str, effects: dict) -> tuple[FaceStreamServer, FaceStreamClient, Call]:
    """A server on a free loopback port, a client of it, and a call through the bot kit, connected."""
    server = FaceStreamServer(ServerConfig(host="127.0.0.1", port=0))
    await server.start()
    client = FaceStreamClient(f"127.0.0.1:{server.port}")
    call = Call(clip, client, effects)
    await call.connect()
    return server, client, call


async def leaving_peer(clip: str, effects: dict, update: dict, out: Path) -> dict:
    server, client, call = await _connected(clip, effects)
    await call.wait_received(40, 30)
    assert call.track is not None
    version = await call.track.update_effects(update)
    updated_at = len(call.results)
    await call.wait_received(100, 30)
    sessions_while_running = len(server.service.sessions)
    await call.sender.close()  # the sender leaves
    seconds_to_session_end = await wait_until(lambda: not server.service.sessions, 10)
    track = call.track
    ending_seconds = await wait_until(lambda: track.session_stats is not None, 5)
    results = {
        "candidates": call.candidates(), "received": call.received, "version": version,
        "versions": [r.effects_version for r in call.results], "updated_at": updated_at,
        "faces": [len(r.packet.faces) for r in call.results], "stats": track.stats.as_dict(),
        "sessions_while_running": sessions_while_running, "sessions_after_leaving": len(server.service.sessions),
        "seconds_to_session_end": seconds_to_session_end, "ending_seconds": ending_seconds,
        "session_frames_out": track.session_stats.frames_out if track.session_stats else None,
        "track_error": str(track.error) if track.error else None,
    }
    np.savez_compressed(out / "received.npz", *call.kept)
    await call.bot.close()
    await client.close()
    await server.stop(0)
    return results


async def server_going(clip: str, effects: dict) -> dict:
    server, client, call = await _connected(clip, effects)
    await call.wait_received(30, 30)
    await server.stop(0)
    seconds_to_told = await wait_until(call.came_back_ended.is_set, 10)
    track = call.track
    results = {"told": call.came_back_ended.is_set(), "seconds_to_told": seconds_to_told,
               "track_error": str(track.error) if track and track.error else None,
               "track_state": track.readyState if track else None}
    await call.sender.close()
    await call.bot.close()
    await client.close()
    return results


async def scenario(out: Path, clip: str, effects: dict, update: dict) -> dict:
    offer_host_addresses(["127.0.0.1"])  # the namespace has nothing else
    return {"leaving": await leaving_peer(clip, effects, update, out), "server_gone": await server_going(clip, effects)}


def main() -> None:
    out, clip = Path(sys.argv[1]), sys.argv[2]
    results = asyncio.run(scenario(out, clip, json.loads(sys.argv[3]), json.loads(sys.argv[4])))
    (out / "results.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
