"""Helpers for the server tests: raw streams, `facestream serve` subprocesses, metrics scrapes, certificates."""
from __future__ import annotations

import datetime
import subprocess
import urllib.request
from pathlib import Path
from typing import IO, Callable

import psutil

from facestream.client import VideoSource
from facestream.client.health import wait_serving
from facestream.engines.cpu_backend import CpuBackend
from facestream.engines.frame import Frame
from facestream.proto import pb

from support import BIN, CLIP, Outcome, free_port, stream  # noqa: F401 (the server tests import them from here)

END = pb.ProcessRequest(end=pb.EndOfStream())


def clip_packets(n: int | None = None) -> list[pb.ProcessRequest]:
    src = VideoSource(str(CLIP))
    try:
        out = []
        for p in src:
            out.append(pb.ProcessRequest(packet=pb.Packet(data=p.data, pts=p.pts)))
            if n is not None and len(out) >= n:
                break
        return out
    finally:
        src.close()


def clip_input() -> pb.InputConfig:
    """The clip's input config (H.264, its time base and frame rate)."""
    src = VideoSource(str(CLIP))
    try:
        return src.input_config()
    finally:
        src.close()


def h264_config(**kw) -> pb.ProcessRequest:
    inp = kw.pop("input", None) or clip_input()
    return pb.ProcessRequest(config=pb.SessionConfig(input=inp, **kw))


class HookedBackend(CpuBackend):
    """The CPU backend with hooks run before each vision and encode call: to slow down or stall a stage."""

    def __init__(self, reason: str, before_vision: Callable[[Frame], None] | None = None,
                 before_encode: Callable[[Frame], None] | None = None) -> None:
        super().__init__(reason)
        self.before_vision, self.before_encode = before_vision, before_encode

    def vision(self, max_faces, fps):
        inner = super().vision(max_faces, fps)
        if self.before_vision is None:
            return inner
        hook = self.before_vision

        class Hooked:
            def process(self, frame):
                hook(frame)
                return inner.process(frame)

            def close(self):
                inner.close()

        return Hooked()

    def encoder(self, settings):
        inner = super().encoder(settings)
        if self.before_encode is None:
            return inner
        hook = self.before_encode

        class Hooked:
            def encode(self, frame):
                hook(frame)
                return inner.encode(frame)

            def flush(self):
                return inner.flush()

            def close(self):
                inner.close()

        return Hooked()


class Served:
    """A `facestream serve` subprocess on free ports, with metrics on."""

    def __init__(self, *flags: str, env: dict[str, str] | None = None, log_path: Path | None = None) -> None:
        self.port, self.metrics_port = free_port(), free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.log_path = log_path
        self._log: IO[str] | None = open(log_path, "w") if log_path else None
        self.proc = subprocess.Popen(
            [str(BIN / "facestream"), "serve", "--port", str(self.port), "--metrics-port", str(self.metrics_port),
             "--backend", "cpu", *flags],
            env={"PATH": str(BIN), "MALLOC_ARENA_MAX": "2", **(env or {})},
            stdout=self._log or subprocess.DEVNULL, stderr=subprocess.STDOUT,
        )

    def __enter__(self) -> "Served":
        try:
            wait_serving(self.address)
        except Exception:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self._log is not None:
            self._log.close()

    def metrics(self) -> dict[str, float]:
        return scrape(f"http://127.0.0.1:{self.metrics_port}/metrics")

    def _processes(self) -> list[psutil.Process]:
        """The server and the processes it started (its pipeline processes): the work is done in both."""
        server = psutil.Process(self.proc.pid)
        return [server, *server.children(recursive=True)]

    def rss(self) -> int:
        return sum(p.memory_info().rss for p in self._processes())

    def cpu_seconds(self) -> float:
        return sum(t.user + t.system for t in (p.cpu_times() for p in self._processes()))

    def threads(self) -> int:
        return sum(p.num_threads() for p in self._processes())


def scrape(url: str) -> dict[str, float]:
    """Sample name with labels -> value, from the Prometheus text format."""
    text = urllib.request.urlopen(url, timeout=10).read().decode()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


# ---------------------------------------------------------------------------- certificates
def make_certs(directory: Path) -> dict[str, Path]:
    """A CA, a server certificate for localhost/127.0.0.1 and a client certificate, all PEM."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)

    def key():
        return ec.generate_private_key(ec.SECP256R1())

    def name(cn):
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def build(subject, issuer, pub, signer, ca=False, san=None, usage=None):
        b = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(pub)
             .serial_number(x509.random_serial_number())
             .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
             .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if san:
            b = b.add_extension(x509.SubjectAlternativeName(san), critical=False)
        if usage:
            b = b.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        return b.sign(signer, hashes.SHA256())

    ca_key = key()
    ca = build(name("facestream test CA"), name("facestream test CA"), ca_key.public_key(), ca_key, ca=True)
    srv_key, cli_key = key(), key()
    srv = build(name("localhost"), ca.subject, srv_key.public_key(), ca_key,
                san=[x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))],
                usage=ExtendedKeyUsageOID.SERVER_AUTH)
    cli = build(name("camera-7"), ca.subject, cli_key.public_key(), ca_key, usage=ExtendedKeyUsageOID.CLIENT_AUTH)
    paths = {}
    for label, obj in (("ca", ca), ("server", srv), ("client", cli)):
        paths[label] = directory / f"{label}.pem"
        paths[label].write_bytes(obj.public_bytes(serialization.Encoding.PEM))
    for label, k in (("server_key", srv_key), ("client_key", cli_key)):
        paths[label] = directory / f"{label}.pem"
        paths[label].write_bytes(k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                 serialization.NoEncryption()))
    return paths
