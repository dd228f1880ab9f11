"""API keys, JWTs, TLS and mTLS, per-key quotas and the audit log, against a real server."""
from __future__ import annotations

import json
import logging
import subprocess
import time

import grpc
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from grpc_health.v1 import health_pb2, health_pb2_grpc

from facestream.client import FaceStreamClient, FaceStreamError
from facestream.server.auth import hash_key

from fs_helpers import BIN, END, clip_packets, h264_config, make_certs, stream

UNAUTH = grpc.StatusCode.UNAUTHENTICATED
KEY, OTHER_KEY = "fs_test-key-one", "fs_test-key-two"
SECRET = "a-shared-secret-for-hs256-tokens-of-32-bytes"


@pytest.fixture(scope="module")
def packets():
    return clip_packets(6)


@pytest.fixture(scope="module")
def rsa_keys(tmp_path_factory):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path_factory.mktemp("jwt") / "public.pem"
    path.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo))
    return key, path


@pytest.fixture
async def secured(server_factory, tmp_path, rsa_keys):
    keys = tmp_path / "keys.txt"
    keys.write_text(f"# name hash quota\nalice {hash_key(KEY)}\nbob {hash_key(OTHER_KEY)} 1\n")
    return await server_factory(api_keys_file=str(keys), jwt_secret=SECRET, jwt_public_key_file=str(rsa_keys[1]),
                                jwt_audience="facestream")


def token(sub="svc", aud="facestream", exp_in=60, key=SECRET, alg="HS256", **claims):
    return jwt.encode({"sub": sub, "aud": aud, "exp": int(time.time()) + exp_in, **claims}, key, algorithm=alg)


async def session(srv, packets, metadata=(), credentials=None, target=None):
    target = target or f"127.0.0.1:{srv.port}"
    ch = grpc.aio.secure_channel(target, credentials) if credentials else grpc.aio.insecure_channel(target)
    async with ch:
        return await stream(ch, [h264_config(), *packets, END], metadata)


# Tokens are made when the test runs (not at collection), so that their expiry is meaningful.
@pytest.mark.parametrize("metadata,message", [
    (lambda: (), "this server needs credentials"),
    (lambda: (("x-api-key", "fs_wrong"),), "the API key is not valid"),
    (lambda: (("authorization", "Bearer fs_wrong"),), "the API key is not valid"),
    (lambda: (("authorization", "Basic abc"),), "must be 'Bearer <token>'"),
    (lambda: (("authorization", "Bearer " + token(exp_in=-30)),), "the JWT has expired"),
    (lambda: (("authorization", "Bearer " + token(aud="other")),), "the JWT audience is wrong"),
    (lambda: (("authorization", "Bearer " + token(key="not-the-secret-but-long-enough-32b")),),
     "the JWT is not valid"),
], ids=["no-key", "wrong-key", "wrong-bearer-key", "basic-auth", "expired-jwt", "wrong-audience", "bad-signature"])
async def test_streaming_call_rejected(secured, packets, metadata, message):
    out = await session(secured, packets, metadata())
    assert out.code == UNAUTH, out
    assert message in out.details
    assert not out.packets
    assert [r.error.code_name for r in out.responses] == ["UNAUTHENTICATED"]


async def test_unary_call_rejected_and_health_stays_open(secured):
    async with FaceStreamClient(f"127.0.0.1:{secured.port}") as client:
        with pytest.raises(FaceStreamError) as info:
            await client.capabilities()
    assert info.value.code == UNAUTH
    async with grpc.aio.insecure_channel(f"127.0.0.1:{secured.port}") as ch:
        resp = await health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest())
    assert resp.status == health_pb2.HealthCheckResponse.SERVING


async def test_valid_credentials(secured, packets, rsa_keys):
    private, _ = rsa_keys
    for md in ((("x-api-key", KEY),), (("authorization", f"Bearer {KEY}"),),
               (("authorization", "Bearer " + token()),),
               (("authorization", "Bearer " + token(key=private, alg="RS256")),)):
        out = await session(secured, packets, md)
        assert out.code == grpc.StatusCode.OK, (md, out)
        assert len(out.packets) == len(packets)
    async with FaceStreamClient(f"127.0.0.1:{secured.port}", metadata=[("x-api-key", KEY)]) as client:
        assert (await client.capabilities()).limits.max_sessions > 0


async def test_per_key_quota(secured, packets, caplog):
    """bob's key has a quota of 1 (from the keys file); a JWT carries its own in a claim."""
    caplog.set_level(logging.INFO, logger="facestream.audit")
    async with grpc.aio.insecure_channel(f"127.0.0.1:{secured.port}") as ch:
        from facestream.proto import rpc

        first = rpc.FaceStreamStub(ch).Process(metadata=[("x-api-key", OTHER_KEY)])
        await first.write(h264_config(label="bob-1"))
        assert (await first.read()).WhichOneof("msg") == "started"
        second = await stream(ch, [h264_config(label="bob-2"), END], [("x-api-key", OTHER_KEY)])
        assert second.code == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "'bob' is at its quota of 1 concurrent sessions" in second.details
        # Another key is not affected.
        assert (await stream(ch, [h264_config(), *packets, END], [("x-api-key", KEY)])).code == grpc.StatusCode.OK
        for p in packets:
            await first.write(p)
        await first.write(END)
        while await first.read() is not grpc.aio.EOF:
            pass
        assert await first.code() == grpc.StatusCode.OK
        # The slot is free again.
        assert (await stream(ch, [h264_config(), *packets, END], [("x-api-key", OTHER_KEY)])).code == grpc.StatusCode.OK
        jwt_md = [("authorization", "Bearer " + token(sub="cam", max_sessions=1))]
        held = rpc.FaceStreamStub(ch).Process(metadata=jwt_md)
        await held.write(h264_config())
        assert (await held.read()).WhichOneof("msg") == "started"
        over = await stream(ch, [h264_config(), END], jwt_md)
        assert over.code == grpc.StatusCode.RESOURCE_EXHAUSTED and "'cam' is at its quota of 1" in over.details
        held.cancel()
    # One audit line per session: who, when, what was asked, how it ended.
    lines = [r for r in caplog.records if r.name == "facestream.audit"]
    quota_line = next(r for r in lines if r.asked.get("label") == "bob-2")
    assert quota_line.principal == "bob" and quota_line.auth == "api-key"
    assert quota_line.ended["code"] == "RESOURCE_EXHAUSTED" and quota_line.started
    ok_line = next(r for r in lines if r.asked.get("label") == "bob-1")
    assert ok_line.ended["code"] == "OK" and ok_line.frames_out == len(packets)
    assert ok_line.asked["input"] == "CODEC_H264" and ok_line.session_id


async def test_tls_and_mtls(server_factory, tmp_path, packets):
    certs = make_certs(tmp_path)
    tls = await server_factory(tls_cert_file=str(certs["server"]), tls_key_file=str(certs["server_key"]))
    ca = certs["ca"].read_bytes()
    creds = grpc.ssl_channel_credentials(root_certificates=ca)
    out = await session(tls, packets, credentials=creds)
    assert out.code == grpc.StatusCode.OK and len(out.packets) == len(packets)
    # A plaintext client cannot talk to the TLS port.
    plain = await session(tls, packets)
    assert plain.code == grpc.StatusCode.UNAVAILABLE

    mtls = await server_factory(tls_cert_file=str(certs["server"]), tls_key_file=str(certs["server_key"]),
                                tls_client_ca_file=str(certs["ca"]))
    no_cert = await session(mtls, packets, credentials=creds, target=f"localhost:{mtls.port}")
    assert no_cert.code == grpc.StatusCode.UNAVAILABLE, no_cert
    with_cert = grpc.ssl_channel_credentials(root_certificates=ca, private_key=certs["client_key"].read_bytes(),
                                             certificate_chain=certs["client"].read_bytes())
    out = await session(mtls, packets, credentials=with_cert, target=f"localhost:{mtls.port}")
    assert out.code == grpc.StatusCode.OK and len(out.packets) == len(packets)


def test_keys_cli_and_env(tmp_path):
    hashed = subprocess.run([str(BIN / "facestream"), "keys", "hash", "--name", "cam", "--max-sessions", "2"],
                            input=KEY + "\n", capture_output=True, text=True, timeout=60)
    assert hashed.returncode == 0, hashed.stderr
    assert hashed.stdout.strip() == f"cam {hash_key(KEY)} 2"
    made = subprocess.run([str(BIN / "facestream"), "keys", "new", "--name", "bot"],
                          capture_output=True, text=True, timeout=60)
    key = made.stderr.strip().rsplit(" ", 1)[-1]
    assert key.startswith("fs_") and made.stdout.strip() == f"bot {hash_key(key)}"

    from facestream.server import config
    from facestream.server.auth import Authenticator

    cfg = config.load(env={"FACESTREAM_API_KEYS": f"cam:{hash_key(KEY)}:2,bot:{hash_key(key)}"})
    auth = Authenticator(cfg)
    assert auth.check([("x-api-key", KEY)]).max_sessions == 2
    assert auth.check([("authorization", f"Bearer {key}")]).name == "bot"
    # Only hashes are kept.
    assert KEY not in json.dumps([str(p) for p in auth.keys]) and all(len(d) == 64 for d in auth.keys)
