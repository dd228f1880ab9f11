"""`facestream`: run the server (and manage its models)."""
from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from facestream.engines.models import cli as models_cli
from facestream.engines.models.store import ModelError

from . import config as server_config
from .app import serve


def _serve(args: argparse.Namespace) -> int:
    cfg = server_config.load(args)
    logging.basicConfig(level=cfg.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        asyncio.run(serve(cfg))
    except (OSError, ModelError) as exc:
        print(f"facestream: {exc}", file=sys.stderr)
        return 1
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="facestream", description="Face beautification server for live video.")
    sub = parser.add_subparsers(dest="command", required=True)
    serve_parser = sub.add_parser("serve", help="run the gRPC server")
    server_config.add_arguments(serve_parser)
    serve_parser.set_defaults(func=_serve)
    models_cli.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
