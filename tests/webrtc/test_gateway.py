"""The gateway's HTTP side, in process: the page, the token, the peer limit, offers it cannot
answer, the effects it offers and its stats. (Connections themselves: test_browser.py.)"""
from __future__ import annotations

from aiohttp.test_utils import TestClient, TestServer

from facestream.client.webrtc.gateway import GatewayConfig, make_app

from support import target


def gateway(server, **config) -> TestClient:
    return TestClient(TestServer(make_app(GatewayConfig(server=target(server), **config))))


async def test_the_page_starts_itself_when_asked(server):
    async with gateway(server) as http:
        r = await http.get("/", params={"autostart": "1"})
        page = await r.text()
    assert r.status == 200 and r.content_type == "text/html"
    assert 'get("autostart") === "1"' in page and 'id="processed"' in page and 'id="camera"' in page


async def test_a_token_guards_everything_but_the_page(server):
    async with gateway(server, token="s3cret") as http:
        assert (await http.get("/")).status == 200
        for method, path in (("GET", "/stats"), ("GET", "/effects"), ("POST", "/offer")):
            r = await http.request(method, path)
            assert r.status == 401 and "token" in await r.text()
        assert (await http.get("/stats", params={"token": "s3cret"})).status == 200
        assert (await http.get("/stats", headers={"Authorization": "Bearer s3cret"})).status == 200
        assert (await http.get("/stats", params={"token": "guess"})).status == 401


async def test_a_full_gateway_says_so(server):
    async with gateway(server, max_peers=0) as http:
        r = await http.post("/offer", json={"sdp": "v=0", "type": "offer"})
        assert r.status == 503 and "full" in await r.text()


async def test_an_offer_it_cannot_read_is_refused_with_the_reason(server):
    async with gateway(server) as http:
        r = await http.post("/offer", data="not json")
        assert r.status == 400 and "JSON" in await r.text()
        r = await http.post("/offer", json={"sdp": "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n", "type": "offer"})
        assert r.status == 400 and "no video" in await r.text()
        r = await http.post("/offer", json={"sdp": "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n", "type": "offer"})
        assert r.status == 400 and "cannot answer" in await r.text()
        assert (await (await http.get("/stats")).json())["connections"] == []


async def test_the_sliders_are_the_servers_effects(server):
    async with gateway(server, effects={"smooth": 0.7}) as http:
        info = await (await http.get("/effects")).json()
    names = [e["name"] for e in info["effects"]]
    assert {"smooth", "whiten", "lips", "eyes"} <= set(names) and info["values"] == {"smooth": 0.7}


async def test_no_server_is_said_plainly(server):
    await server.stop(0)
    async with gateway(server) as http:
        r = await http.get("/effects")
        assert r.status == 502 and "not answering" in await r.text()
