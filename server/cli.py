"""`facestream`: run the server, manage API keys (and the models)."""
from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import os
import sys

from facestream.engines.models import cli as models_cli
from facestream.engines.models.store import ModelError

from . import auth, logs
from . import config as server_config
from .app import serve


def _serve(args: argparse.Namespace) -> int:
    try:
        cfg = server_config.load(args)
        logs.configure(cfg.log_level, cfg.log_format)
        stuck = asyncio.run(serve(cfg))
    except (OSError, ModelError, server_config.ConfigurationError) as exc:
        print(f"facestream: {exc}", file=sys.stderr)
        return 1
    if stuck:
        # The interpreter would wait for the stuck worker threads at exit, forever.
        logging.shutdown()
        os._exit(0)
    return 0


def _keys_hash(args: argparse.Namespace) -> int:
    """Reads a key (stdin, or a prompt on a terminal) and prints the line for the keys file."""
    if sys.stdin.isatty():
        key = getpass.getpass("API key: ")
    else:
        key = sys.stdin.readline()
    key = key.strip()
    if not key:
        print("facestream keys hash: no key given on stdin", file=sys.stderr)
        return 2
    print(_entry(args.name, auth.hash_key(key), args.max_sessions))
    return 0


def _keys_new(args: argparse.Namespace) -> int:
    """Makes a random key: the key goes to stderr (give it to the client), the keys-file line to stdout."""
    key = auth.new_key()
    print(f"API key for {args.name} (shown once; the server stores only its hash): {key}", file=sys.stderr)
    print(_entry(args.name, auth.hash_key(key), args.max_sessions))
    return 0


def _entry(name: str, digest: str, quota: int) -> str:
    return f"{name} {digest}" + (f" {quota}" if quota else "")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="facestream", description="Face beautification server for live video.")
    sub = parser.add_subparsers(dest="command", required=True)
    serve_parser = sub.add_parser("serve", help="run the gRPC server")
    server_config.add_arguments(serve_parser)
    serve_parser.set_defaults(func=_serve)

    keys = sub.add_parser("keys", help="API keys: make one, or hash one for the keys file (--api-keys-file)")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    for name, func, text in (
        ("hash", _keys_hash, "hash a key read from stdin; prints 'NAME sha256:HEX [MAX_SESSIONS]'"),
        ("new", _keys_new, "make a random key (printed to stderr) and print its keys-file line"),
    ):
        p = keys_sub.add_parser(name, help=text)
        p.add_argument("--name", default="client", help="name the key is logged and audited under")
        p.add_argument("--max-sessions", type=int, default=0, help="concurrent session quota for this key (0: default)")
        p.set_defaults(func=func)
    models_cli.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
