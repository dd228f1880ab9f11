"""Repacks downloaded wheels for the GPU bundle: uncompressed (so that xz, over the whole bundle,
compresses the shared libraries a third better than the wheels' own deflate), and PyNvVideoCodec
cut down to what its extension modules load.

    python benchmarks/gpu/repack_wheels.py SRC_DIR DST_DIR

The PyNvVideoCodec wheel carries the FFmpeg source tarball, samples, benchmarks and notebooks,
and each FFmpeg library three times (lib.so, lib.so.N, lib.so.N.M.P). Kept: the Python package,
the extension modules, and the libraries their DT_NEEDED entries name (read with readelf,
followed through the kept libraries), under the names they are loaded by.
"""
from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

# Top-level folders of a trimmed wheel that are kept (besides its .dist-info): its import packages
# and the folder auditwheel put the vendored CUDA runtime in.
TRIMMED = {"pynvvideocodec": ("PyNvVideoCodec", "pynvvideocodec.")}
LIBRARY = re.compile(r"^lib.*\.so(\.\d+)*$")


def _needed(data: bytes) -> set[str]:
    """DT_NEEDED names of one ELF file, by readelf."""
    with tempfile.NamedTemporaryFile(suffix=".so") as f:
        f.write(data)
        f.flush()
        out = subprocess.run(["readelf", "-d", f.name], capture_output=True, text=True, check=True).stdout
    return set(re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out))


def trimmed_members(zf: zipfile.ZipFile, keep_top: tuple[str, ...]) -> list[str]:
    """Member names to keep: the dist-info, and under `keep_top` everything but the libraries no
    extension module loads (directly or through another kept library)."""
    names = [n for n in zf.namelist() if not n.endswith("/")]
    top = [n for n in names if PurePosixPath(n).parts[0] in keep_top]
    libraries = {n for n in top if LIBRARY.match(PurePosixPath(n).name)}
    wanted: set[str] = set()
    queue = [n for n in top if n.endswith(".so") and n not in libraries]   # the extension modules
    seen: set[str] = set()
    while queue:
        member = queue.pop()
        if member in seen:
            continue
        seen.add(member)
        for needed in _needed(zf.read(member)):
            for lib in libraries:
                if PurePosixPath(lib).name == needed:
                    wanted.add(lib)
                    queue.append(lib)
    dist_info = [n for n in names if PurePosixPath(n).parts[0].endswith(".dist-info")]
    return [n for n in top if n not in libraries or n in wanted] + dist_info


def repack(src: Path, dst_dir: Path) -> Path:
    """`src` rewritten uncompressed into `dst_dir` (trimmed where TRIMMED names it), RECORD to match."""
    project = src.name.split("-")[0].lower()
    dst = dst_dir / src.name
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as zout:
        keep_top = TRIMMED.get(project)
        members = trimmed_members(zin, keep_top) if keep_top else [n for n in zin.namelist() if not n.endswith("/")]
        kept = set(members)
        for name in members:
            info = zin.getinfo(name)
            data = zin.read(name)
            if name.endswith(".dist-info/RECORD"):
                rows = [r for r in data.decode().splitlines() if r.split(",")[0] in kept]
                data = ("\n".join(rows) + "\n").encode()
            out = zipfile.ZipInfo(name, info.date_time)
            out.external_attr = info.external_attr
            out.compress_type = zipfile.ZIP_STORED
            zout.writestr(out, data)
    return dst


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("src", type=Path)
    ap.add_argument("dst", type=Path)
    args = ap.parse_args(argv)
    if shutil.which("readelf") is None:
        print("readelf (binutils) is needed to trim PyNvVideoCodec", file=sys.stderr)
        return 1
    args.dst.mkdir(parents=True, exist_ok=True)
    for src in sorted(args.src.glob("*.whl")):
        dst = repack(src, args.dst)
        with zipfile.ZipFile(dst) as z:
            files = len(z.namelist())
        print(f"{src.name}: {src.stat().st_size / 2**20:.1f} MiB downloaded, "
              f"{dst.stat().st_size / 2**20:.1f} MiB uncompressed as repacked, {files} files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
