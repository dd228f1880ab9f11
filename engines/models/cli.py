"""`facestream models ...`: build, verify and recalibrate the vision models.

The server CLI registers it with `add_parser(subparsers)`.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("models", help="build, verify or recalibrate the vision models")
    sub = p.add_subparsers(dest="models_command", required=True)

    b = sub.add_parser("build", help="rebuild the ONNX models from the TFLite files and check they "
                                     "match the packaged ones byte for byte")
    b.add_argument("--out", type=Path, default=None,
                   help="where to build (default: a temporary directory; nothing is kept)")
    b.add_argument("--in-place", action="store_true",
                   help="write into the package's data directory (for maintainers)")
    b.set_defaults(func=_build)

    v = sub.add_parser("verify", help="check every model file against the SHA-256 manifest")
    v.set_defaults(func=_verify)

    c = sub.add_parser("calibrate", help="recalibrate the INT8 models on your own photos/videos; "
                                         "results go under FACESTREAM_HOME/calibrated")
    c.add_argument("media", nargs="+", type=Path, help="photos, videos or folders of them")
    c.add_argument("--video-step", type=int, default=5, help="use every Nth video frame (default 5)")
    c.add_argument("--package", action="store_true",
                   help="write calibration.json and the INT8 models into the package (for maintainers)")
    c.set_defaults(func=_calibrate)


def _log(msg: str) -> None:
    print(msg, file=sys.stderr)


def _build(ns: argparse.Namespace) -> int:
    from . import build as B
    from .store import DATA_DIR, ModelStore

    try:
        if ns.in_place:
            B.build(DATA_DIR, log=_log)
            print(f"built into {DATA_DIR}")
            return 0
        committed = ModelStore().manifest()["files"]
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(ns.out) if ns.out else Path(tmp)
            sums = B.build(out, calibration_path=DATA_DIR / B.CALIBRATION_FILE, log=_log)
        diff = [f for f, s in sums.items() if committed.get(f) != s]
        if diff:
            print("rebuilt models differ from the packaged ones: " + ", ".join(diff))
            return 1
        print(f"{len(sums)} models rebuilt; identical to the packaged files")
        return 0
    except (B.BuildError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def _verify(ns: argparse.Namespace) -> int:
    from .store import ModelError, ModelStore

    try:
        problems = ModelStore().verify()
    except ModelError as e:
        problems = [str(e)]
    for p in problems:
        print(p)
    if not problems:
        print("all model files match the manifest")
    return 1 if problems else 0


def _calibrate(ns: argparse.Namespace) -> int:
    from . import build as B
    from .store import DATA_DIR, ModelStore

    try:
        result = B.calibrate(ns.media, video_step=ns.video_step, log=_log)
        out = DATA_DIR if ns.package else ModelStore().calibrated_dir
        out.mkdir(parents=True, exist_ok=True)
        cal = out / B.CALIBRATION_FILE
        cal.write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
        if ns.package:
            B.build(DATA_DIR, calibration_path=cal, log=_log)
        else:
            B.build_int8(out, cal, log=_log)
        print(f"calibration written to {cal}")
        return 0
    except (B.BuildError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def main(argv=None) -> int:
    """Stand-alone entry (`python -m facestream.engines.models.cli models build`)."""
    parser = argparse.ArgumentParser(prog="facestream")
    add_parser(parser.add_subparsers(dest="command", required=True))
    ns = parser.parse_args(argv)
    return ns.func(ns)


if __name__ == "__main__":
    sys.exit(main())
