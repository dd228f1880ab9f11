"""Regenerate the committed Python stubs for the wire contract.

Run `python proto/generate.py` after editing a .proto file; `--check` exits 1 when the
committed stubs differ from what grpcio-tools would generate now. The stubs live next to
the .proto files and import each other relatively, because the generated absolute import
(`from facestream.v1 import ...`) does not match the installed package `facestream.proto`.
"""
from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path

PROTO_ROOT = Path(__file__).resolve().parent
PACKAGE_DIR = PROTO_ROOT / "facestream" / "v1"


def generate(out_root: Path) -> list[Path]:
    import grpc_tools
    from grpc_tools import protoc

    well_known = Path(grpc_tools.__file__).parent / "_proto"
    protos = sorted(PACKAGE_DIR.glob("*.proto"))
    args = [
        "protoc",
        f"-I{PROTO_ROOT}",
        f"-I{well_known}",
        f"--python_out={out_root}",
        f"--pyi_out={out_root}",
        f"--grpc_python_out={out_root}",
        *[str(p.relative_to(PROTO_ROOT)) for p in protos],
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    generated = sorted((out_root / "facestream" / "v1").glob("*_pb2*.py*"))
    for path in generated:
        text = re.sub(r"^from facestream\.v1 import (\w+)", r"from . import \1", path.read_text(), flags=re.M)
        path.write_text(text)
    return generated


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        stale = []
        for path in generate(Path(tmp)):
            target = PACKAGE_DIR / path.name
            new = path.read_text()
            if opts.check:
                if not target.exists() or target.read_text() != new:
                    stale.append(target.name)
            else:
                target.write_text(new)
        if stale:
            print("stale generated stubs: " + ", ".join(stale) + "; run python proto/generate.py", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
