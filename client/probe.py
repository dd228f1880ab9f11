"""`python -m facestream.client.probe`: one gRPC health check, exit 0 when SERVING.

For Kubernetes exec probes where the server speaks TLS: the kubelet's own gRPC probe cannot. With
mTLS the probe presents a certificate of its own (the pod's, issued for client use too).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def _credentials(args: argparse.Namespace) -> grpc.ChannelCredentials | None:
    if not args.tls_ca_file:
        return None
    key = Path(args.tls_key_file).read_bytes() if args.tls_key_file else None
    chain = Path(args.tls_cert_file).read_bytes() if args.tls_cert_file else None
    return grpc.ssl_channel_credentials(Path(args.tls_ca_file).read_bytes(), key, chain)


def check(address: str, service: str = "", credentials: grpc.ChannelCredentials | None = None,
          server_name: str = "", timeout: float = 2.0) -> str:
    """The server's health status for `service` ("" for the server as a whole), by name."""
    options = [("grpc.ssl_target_name_override", server_name)] if server_name else []
    channel = (grpc.secure_channel(address, credentials, options) if credentials
               else grpc.insecure_channel(address, options))
    with channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=service),
                                                          timeout=timeout)
    return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m facestream.client.probe", description=__doc__.splitlines()[0])
    parser.add_argument("--address", default="127.0.0.1:50051", help="host:port of the server")
    parser.add_argument("--service", default="", help="health service name (default: the server as a whole)")
    parser.add_argument("--tls-ca-file", default="", help="PEM CA bundle the server's certificate is checked with")
    parser.add_argument("--tls-cert-file", default="", help="PEM certificate to present (mTLS)")
    parser.add_argument("--tls-key-file", default="", help="PEM private key of that certificate")
    parser.add_argument("--tls-server-name", default="", help="name the server's certificate must carry "
                                                              "(when it is not the address's host)")
    parser.add_argument("--timeout", type=float, default=2.0, help="seconds to wait for the answer")
    args = parser.parse_args(argv)
    try:
        status = check(args.address, args.service, _credentials(args), args.tls_server_name, args.timeout)
    except (grpc.RpcError, OSError) as exc:
        print(f"health check of {args.address} failed: {exc}", file=sys.stderr)
        return 1
    print(status)
    return 0 if status == "SERVING" else 1


if __name__ == "__main__":
    sys.exit(main())
