"""Run inside a loopback-only network namespace (see webrtc_netns.py): a server, the `facestream-webrtc`
command and headless Chromium whose fake camera plays the clip. Writes what the page showed into
OUT: results.json, and snapshot-N.png, pictures of the page's beautified video.

    python browser_scenario.py OUT CAMERA.y4m EFFECTS
"""
from __future__ import annotations

import asyncio
import base64
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
from webrtc_chrome import Chrome, find_chromium

from facestream.server.app import FaceStreamServer
from facestream.server.config import ServerConfig

GATEWAY_PORT = 8080  # the namespace is new: every port is free
TOKEN = "page-token"
SNAPSHOTS = 8
SNAPSHOT_JS = """(() => {
  const v = document.getElementById("processed"), c = document.createElement("canvas");
  c.width = v.videoWidth; c.height = v.videoHeight;
  c.getContext("2d").drawImage(v, 0, 0);
  return c.toDataURL("image/png");
})()"""
SHOWN_JS = 'document.getElementById("processed").getVideoPlaybackQuality().totalVideoFrames'
TEXT_JS = 'document.getElementById("{}").textContent'


async def start_gateway(server_port: int, effects: str, log: Path) -> subprocess.Popen:
    """The `facestream-webrtc` command, once it says it is serving."""
    with log.open("wb") as sink:
        gateway = subprocess.Popen(
            [sys.executable, "-m", "facestream.client.webrtc.gateway", "--server", f"127.0.0.1:{server_port}",
             "--port", str(GATEWAY_PORT), "--effects", effects, "--token", TOKEN],
            stdout=sink, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 20
    while "serving" not in log.read_text():
        if gateway.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the gateway did not start: {log.read_text()}")
        await asyncio.sleep(0.1)
    return gateway


async def get_json(http: aiohttp.ClientSession, path: str, token: str = TOKEN) -> tuple[int, object]:
    async with http.get(f"http://127.0.0.1:{GATEWAY_PORT}{path}", params={"token": token} if token else {}) as r:
        return r.status, (await r.json() if r.status == 200 else await r.text())


async def snapshots(chrome: Chrome, out: Path) -> list[str]:
    names = []
    for i in range(SNAPSHOTS):
        data = await chrome.evaluate(SNAPSHOT_JS)
        (out / f"snapshot-{i}.png").write_bytes(base64.b64decode(data.split(",", 1)[1]))
        names.append(f"snapshot-{i}.png")
        await asyncio.sleep(0.35)
    return names


async def scenario(out: Path, camera: Path, effects: str) -> dict:
    server = FaceStreamServer(ServerConfig(host="127.0.0.1", port=0))
    await server.start()
    gateway = await start_gateway(server.port, effects, out / "gateway.log")
    chrome = Chrome(find_chromium() or "chromium", f"http://127.0.0.1:{GATEWAY_PORT}/?autostart=1&token={TOKEN}",
                    camera, out / "profile")
    results: dict = {}
    try:
        async with aiohttp.ClientSession() as http:
            results["stats_without_token"] = (await get_json(http, "/stats", token=""))[0]
            await chrome.connect()
            started = time.monotonic()
            results["frames_shown_at_first"] = await chrome.wait_for(f"{SHOWN_JS} >= 60 && {SHOWN_JS}", 45)
            results["seconds_to_60_frames"] = round(time.monotonic() - started, 1)
            results["size"] = await chrome.evaluate(
                '[document.getElementById("processed").videoWidth, document.getElementById("processed").videoHeight]')
            results["snapshots"] = await snapshots(chrome, out)
            results["stats"] = (await get_json(http, "/stats"))[1]
            # a slider moved on the page: the server acknowledges the new settings in the frames
            await chrome.evaluate('(() => { const s = document.getElementById("effect-lips"); s.value = 0;'
                                  ' s.dispatchEvent(new Event("input")); return true; })()')
            results["applied"] = await chrome.wait_for(
                f'{TEXT_JS.format("applied")}.startsWith("applied (version 1)") && {TEXT_JS.format("applied")}', 15)
            results["page_numbers"] = await chrome.evaluate(TEXT_JS.format("numbers"))
            results["stats_after_update"] = (await get_json(http, "/stats"))[1]
            # the server goes away: the page is told, the gateway lets the connection go
            await server.stop(0)
            results["error_shown"] = await chrome.wait_for(f'{TEXT_JS.format("error")}', 20)
            deadline = time.monotonic() + 15
            while (await get_json(http, "/stats"))[1]["connections"] and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
            results["stats_after_server_gone"] = (await get_json(http, "/stats"))[1]
    finally:
        await chrome.close()
        gateway.send_signal(signal.SIGTERM)
        try:
            results["gateway_exit"] = gateway.wait(15)
        except subprocess.TimeoutExpired:
            gateway.kill()
            results["gateway_exit"] = "did not exit on SIGTERM"
        await server.stop(0)
    return results


def main() -> None:
    out, camera, effects = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    results = asyncio.run(scenario(out, camera, effects))
    (out / "results.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
