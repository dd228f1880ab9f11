"""facestream-webrtc: a browser's camera comes back beautified, with the settings live.

    facestream-webrtc --server HOST:PORT --host 127.0.0.1 --port 8080

serves the page (`/`, `/?autostart=1` starts without a click), the SDP exchange (`POST /offer`),
the effects the server offers (`GET /effects`) and what each connection is doing (`GET /stats`).
One facestream session per connected camera; the gateway belongs next to the server.
"""
from __future__ import annotations

import argparse
import asyncio
import hmac
import logging
import os
import signal
import ssl
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path

import grpc
from aiohttp import web
from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription

from ..api import FaceStreamClient, FaceStreamError, parse_effects
from .ice import default_host_addresses, offer_host_addresses
from .peer import Peer
from .wire import WIRES

log = logging.getLogger("facestream.webrtc")

DEFAULT_EFFECTS = "smooth=0.6,whiten=0.3,eyes=0.2,lips=0.3"


@dataclass
class GatewayConfig:
    server: str = "127.0.0.1:50051"
    api_key: str = ""
    server_tls: bool = False
    server_ca: bytes = b""   # PEM roots for TLS to the server (implies TLS)
    token: str = ""
    max_peers: int = 4
    effects: dict[str, float] = field(default_factory=lambda: parse_effects(DEFAULT_EFFECTS))
    wire: str = "nv12"
    ice_servers: list[str] = field(default_factory=list)   # STUN/TURN URLs
    ice_username: str = ""
    ice_credential: str = ""


def _credentials(config: GatewayConfig) -> grpc.ChannelCredentials | None:
    if config.server_ca:
        return grpc.ssl_channel_credentials(root_certificates=config.server_ca)
    return grpc.ssl_channel_credentials() if config.server_tls else None


class Gateway:
    """The gateway's state: the server connection and the connected peers."""

    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        metadata = [("x-api-key", config.api_key)] if config.api_key else []
        self.client = FaceStreamClient(config.server, credentials=_credentials(config), metadata=metadata)
        self.peers: dict[str, Peer] = {}

    def _authorized(self, request: web.Request) -> bool:
        if not self.config.token:
            return True
        given = request.query.get("token") or request.headers.get("Authorization", "").removeprefix("Bearer ")
        return hmac.compare_digest(given.encode(), self.config.token.encode())

    def _check(self, request: web.Request) -> None:
        if not self._authorized(request):
            raise web.HTTPUnauthorized(text="a token is needed: open the page as /?token=TOKEN")

    def _forget(self, peer: Peer) -> None:
        self.peers.pop(peer.id, None)

    async def page(self, request: web.Request) -> web.Response:
        return web.Response(text=(files(__package__) / "page.html").read_text(), content_type="text/html")

    async def offer(self, request: web.Request) -> web.Response:
        self._check(request)
        if len(self.peers) >= self.config.max_peers:
            raise web.HTTPServiceUnavailable(text=f"the gateway is full ({self.config.max_peers} peers); try later")
        try:
            params = await request.json()
            offer = RTCSessionDescription(sdp=params["sdp"], type=params["type"])
        except (ValueError, KeyError, TypeError):
            raise web.HTTPBadRequest(text="expected JSON {\"sdp\": ..., \"type\": \"offer\"}") from None
        if "m=video" not in offer.sdp:
            raise web.HTTPBadRequest(text="the offer has no video to beautify")
        ice = [RTCIceServer(url, self.config.ice_username or None, self.config.ice_credential or None)
               for url in self.config.ice_servers]
        pc = RTCPeerConnection(RTCConfiguration(iceServers=ice))  # an empty list: no STUN lookups
        peer = Peer(pc, self.client, effects=self.config.effects, wire=self.config.wire,
                    on_closed=self._forget)
        self.peers[peer.id] = peer
        try:
            await pc.setRemoteDescription(offer)
            await pc.setLocalDescription(await pc.createAnswer())
        except ValueError as exc:
            await peer.close()
            raise web.HTTPBadRequest(text=f"cannot answer this offer: {exc}") from None
        log.info("peer %s connected from %s", peer.id, request.remote)
        return web.json_response({"sdp": pc.localDescription.sdp, "type": pc.localDescription.type, "id": peer.id})

    async def effects(self, request: web.Request) -> web.Response:
        """The effects the server offers and the values a new connection starts with."""
        self._check(request)
        try:
            caps = await self.client.capabilities()
        except FaceStreamError as exc:
            raise web.HTTPBadGateway(text=f"the facestream server at {self.config.server} is not answering: "
                                          f"{exc}") from None
        return web.json_response({
            "effects": [{"name": e.name, "description": e.description} for e in caps.effects],
            "values": self.config.effects})

    async def stats(self, request: web.Request) -> web.Response:
        self._check(request)
        return web.json_response({"server": self.config.server, "max_peers": self.config.max_peers,
                                  "connections": [p.summary() for p in self.peers.values()]})

    async def close(self, app: web.Application | None = None) -> None:
        await asyncio.gather(*(p.close() for p in list(self.peers.values())))
        await self.client.close()


GATEWAY = web.AppKey("gateway", Gateway)


def make_app(config: GatewayConfig) -> web.Application:
    gateway = Gateway(config)
    app = web.Application()
    app[GATEWAY] = gateway
    app.add_routes([web.get("/", gateway.page), web.post("/offer", gateway.offer),
                    web.get("/effects", gateway.effects), web.get("/stats", gateway.stats)])
    app.on_shutdown.append(gateway.close)
    return app


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="facestream-webrtc", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    env = os.environ.get
    p.add_argument("--server", default=env("FACESTREAM_SERVER", "127.0.0.1:50051"), help="facestream server")
    p.add_argument("--api-key", default=env("FACESTREAM_API_KEY", ""), help="API key for the server "
                   "(or FACESTREAM_API_KEY)")
    p.add_argument("--server-tls", action="store_true", help="TLS to the server, system CA roots")
    p.add_argument("--server-ca-file", default="", help="TLS to the server, this CA bundle")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0 for all)")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--tls-cert-file", default="", help="serve HTTPS (browsers open cameras only on HTTPS "
                   "or localhost)")
    p.add_argument("--tls-key-file", default="")
    p.add_argument("--token", default=env("FACESTREAM_WEBRTC_TOKEN", ""),
                   help="a token the page must carry (/?token=...) (or FACESTREAM_WEBRTC_TOKEN)")
    p.add_argument("--max-peers", type=int, default=4, help="connections at once; more get 503")
    p.add_argument("--effects", default=DEFAULT_EFFECTS, help="settings a new connection starts with")
    p.add_argument("--wire", choices=WIRES, default="nv12", help="how frames go to the server: raw NV12 "
                   "(least latency next to the server) or H.264 (fewer bytes over a slow link)")
    p.add_argument("--ice-address", action="append", default=[], metavar="ADDR",
                   help="address offered to peers (repeat for more); default: the host's addresses, "
                   "127.0.0.1 where it has no other")
    p.add_argument("--ice-server", action="append", default=[], metavar="URL",
                   help="STUN or TURN server (stun:HOST:PORT, turn:HOST:PORT?transport=udp); default: none")
    p.add_argument("--ice-username", default="", help="TURN username")
    p.add_argument("--ice-credential", default=env("FACESTREAM_ICE_CREDENTIAL", ""),
                   help="TURN password (or FACESTREAM_ICE_CREDENTIAL)")
    p.add_argument("--log-level", default="INFO")
    return p


def _ssl_context(cert: str, key: str) -> ssl.SSLContext | None:
    if not cert:
        if key:
            raise ValueError("--tls-key-file needs --tls-cert-file")
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key or None)
    return context


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        server_ca = Path(args.server_ca_file).read_bytes() if args.server_ca_file else b""
        config = GatewayConfig(server=args.server, api_key=args.api_key, server_tls=args.server_tls,
                               server_ca=server_ca, token=args.token, max_peers=args.max_peers,
                               effects=parse_effects(args.effects), wire=args.wire, ice_servers=args.ice_server,
                               ice_username=args.ice_username, ice_credential=args.ice_credential)
        context = _ssl_context(args.tls_cert_file, args.tls_key_file)
    except (ValueError, OSError) as exc:
        print(f"facestream-webrtc: {exc}", file=sys.stderr)
        return 2
    offer_host_addresses(args.ice_address or default_host_addresses())
    asyncio.run(_serve(config, args.host, args.port, context))
    return 0


async def _serve(config: GatewayConfig, host: str, port: int, context: ssl.SSLContext | None) -> None:
    """Serves until SIGINT or SIGTERM, then hangs up on every peer (their sessions end) and exits."""
    # made in the running loop, which the gRPC channel needs; no access log: the page's token is in its URL
    runner = web.AppRunner(make_app(config), handle_signals=False, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port, ssl_context=context).start()
    print(f"facestream-webrtc: serving {'https' if context else 'http'}://{host}:{port}/ for {config.server} "
          f"(frames over {config.wire})", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()

if __name__ == "__main__":
    sys.exit(main())
