"""`python -m facestream.client.probe`, the chart's probe where the server speaks TLS: it passes for
a serving server, over TLS and mTLS, and fails for a server that takes no new sessions."""
from __future__ import annotations

import asyncio
import sys

from facestream.client import probe
from facestream.client.protocol import SERVICE_NAME

from support import REPO, target


async def main(*args: str) -> int:
    """The probe's exit status (run on a thread: the servers share this test's event loop)."""
    return await asyncio.to_thread(probe.main, list(args))


def certificates(directory):
    sys.path.insert(0, str(REPO / "tests" / "server"))
    from fs_helpers import make_certs

    return make_certs(directory)


async def test_probe_passes_while_serving_and_fails_while_draining(server, capsys):
    address = target(server)
    assert await main("--address", address) == 0
    assert await main("--address", address, "--service", SERVICE_NAME) == 0
    await server.drain(1)
    assert await main("--address", address, "--service", SERVICE_NAME) == 1
    assert capsys.readouterr().out.split() == ["SERVING", "SERVING", "NOT_SERVING"]


async def test_probe_over_tls_and_mtls(server_factory, tmp_path):
    certs = {k: str(v) for k, v in certificates(tmp_path).items()}
    tls = await server_factory(tls_cert_file=certs["server"], tls_key_file=certs["server_key"])
    assert await main("--address", target(tls), "--tls-ca-file", certs["ca"], "--tls-server-name", "localhost") == 0
    assert await main("--address", target(tls)) == 1, "a plaintext check of a TLS server must fail"
    mtls = await server_factory(tls_cert_file=certs["server"], tls_key_file=certs["server_key"],
                                tls_client_ca_file=certs["ca"])
    with_cert = ["--tls-cert-file", certs["client"], "--tls-key-file", certs["client_key"]]
    assert await main("--address", target(mtls), "--tls-ca-file", certs["ca"], *with_cert) == 0
    assert await main("--address", target(mtls), "--tls-ca-file", certs["ca"]) == 1
