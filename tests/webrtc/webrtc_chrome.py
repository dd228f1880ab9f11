"""Headless Chromium with a fake camera, driven through its DevTools protocol (a websocket)."""
from __future__ import annotations

import asyncio
import itertools
import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import aiohttp

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium() -> str | None:
    return next((path for name in CANDIDATES if (path := shutil.which(name))), None)


class Chrome:
    """One browser showing one page; `evaluate` runs JavaScript there and returns its value."""

    def __init__(self, binary: str, url: str, camera: Path, profile: Path) -> None:
        self._profile = profile
        self._ids = itertools.count(1)
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._http = aiohttp.ClientSession()
        profile.mkdir(parents=True, exist_ok=True)
        self._log = profile / "chrome.log"
        self.process = subprocess.Popen(
            [binary, "--headless=new", "--no-sandbox", "--no-first-run", "--no-default-browser-check",
             "--disable-gpu", "--disable-extensions", "--disable-background-networking", "--mute-audio",
             "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
             f"--use-file-for-fake-video-capture={camera}",
             "--allow-loopback-in-peer-connection",   # the namespace has nothing else
             "--autoplay-policy=no-user-gesture-required",
             "--remote-debugging-port=0", f"--user-data-dir={profile}", url],
            stdout=subprocess.DEVNULL, stderr=self._log.open("wb"))

    async def connect(self, timeout: float = 30.0) -> None:
        """Waits for the DevTools endpoint and attaches to the page."""
        active = self._profile / "DevToolsActivePort"
        deadline = time.monotonic() + timeout
        while not active.exists() or not active.read_text().strip():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"Chromium did not start: {self.stderr_tail()}")
            await asyncio.sleep(0.1)
        port = int(active.read_text().split()[0])
        while True:
            async with self._http.get(f"http://127.0.0.1:{port}/json/list") as r:
                pages = [t for t in await r.json() if t["type"] == "page"]
            if pages:
                break
            await asyncio.sleep(0.1)
        self._ws = await self._http.ws_connect(pages[0]["webSocketDebuggerUrl"], max_msg_size=64 << 20)

    async def evaluate(self, expression: str) -> Any:
        assert self._ws is not None
        call_id = next(self._ids)
        await self._ws.send_json({"id": call_id, "method": "Runtime.evaluate",
                                  "params": {"expression": expression, "awaitPromise": True,
                                             "returnByValue": True}})
        while True:
            message = json.loads((await self._ws.receive()).data)
            if message.get("id") == call_id:
                break
        result = message["result"]
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression[:80]}...: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def wait_for(self, expression: str, timeout: float) -> Any:
        """Polls until `expression` is truthy; returns its value."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                if value := await self.evaluate(expression):
                    return value
                why = f"{value!r}"
            except RuntimeError as exc:  # the page is still loading, say
                why = str(exc)
            if time.monotonic() > deadline:
                raise TimeoutError(f"not true after {timeout:g} s ({why[:300]}): {expression}")
            await asyncio.sleep(0.2)

    def stderr_tail(self) -> str:
        return self._log.read_text(errors="replace")[-2000:] if self._log.exists() else ""

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()
        await self._http.close()
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
