"""`facestream-client gst-plugin-path`: the folder for GST_PLUGIN_PATH, made for this installation.

GStreamer's Python loader imports plugins with the Python it embeds, so the folder holds, besides the
plugin file (python/facestream_gst.py, a copy of plugin.py), installation.json: where this
installation's packages are and which Python they need. One folder per installation (interpreter
prefix), under FACESTREAM_HOME (default: the user cache dir)/gstreamer.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sys
from pathlib import Path

from facestream.engines.models.store import facestream_home

PLUGIN_FILE = "facestream_gst.py"
# Where distributions put GStreamer's plugins (libgstpython.so among them).
PLUGIN_DIRS = ("/usr/lib/*/gstreamer-1.0", "/usr/lib64/gstreamer-1.0", "/usr/lib/gstreamer-1.0",
               "/usr/local/lib/*/gstreamer-1.0", "/usr/local/lib/gstreamer-1.0")


def site_dirs() -> list[str]:
    """The folders this interpreter imports installed packages from."""
    return [p for p in sys.path if Path(p).name in ("site-packages", "dist-packages") and Path(p).is_dir()]


def installation() -> dict:
    return {"implementation": sys.implementation.name, "python": list(sys.version_info[:2]),
            "prefix": sys.prefix, "site": site_dirs()}


def _write(path: Path, text: str) -> None:
    """Writes only a change, so GStreamer's registry is not rescanned for nothing."""
    if not path.exists() or path.read_text() != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def plugin_folder(home: Path | None = None) -> Path:
    """The folder to add to GST_PLUGIN_PATH for this installation, written (or brought up to date) now."""
    prefix = hashlib.sha256(sys.prefix.encode()).hexdigest()[:10]
    folder = (home or facestream_home()) / "gstreamer" / f"{sys.implementation.cache_tag}-{prefix}"
    _write(folder / "installation.json", json.dumps(installation(), indent=1) + "\n")
    _write(folder / "python" / PLUGIN_FILE, Path(__file__).with_name("plugin.py").read_text())
    return folder


def loader_python() -> str | None:
    """The Python version ("3.11") of GStreamer's Python plugin loader, or None where it is not installed."""
    for pattern in PLUGIN_DIRS:
        for lib in sorted(Path("/").glob(pattern.lstrip("/") + "/libgstpython*.so")):
            found = re.search(rb"libpython(\d+\.\d+)", lib.read_bytes())
            if found:
                return found.group(1).decode()
    return None


def loader_problem() -> str | None:
    """Why the element will not load from this installation, or None when nothing is in the way."""
    version = loader_python()
    ours = "{}.{}".format(*sys.version_info[:2])
    if version is None:
        return ("GStreamer's Python plugin loader was not found; install it (Debian: "
                "gstreamer1.0-python3-plugin-loader python3-gst-1.0)")
    if version != ours:
        return (f"GStreamer's Python plugin loader runs Python {version}, this facestream is installed for Python "
                f"{ours}: install facestream for python{version} and use its facestream-client gst-plugin-path")
    return None


def path_problem(path: str | None = None) -> str | None:
    """Why GStreamer's embedded Python would start with the wrong standard library, or None.

    The embedded interpreter finds its home through the first `python3` on PATH; when that is
    another installation's (a pyenv shim, an activated venv of another Python), its start fails
    ("pygobject initialization failed") and no Python element loads."""
    version = loader_python()
    system = shutil.which(f"python{version}", path="/usr/bin:/bin") if version else None
    first = shutil.which("python3", path=path)
    if system is None or first is None:
        return None
    if os.path.realpath(first) == os.path.realpath(system):
        return None
    folder = os.path.dirname(system)
    return (f"the first python3 on PATH is {first}, not the system's {system}, so GStreamer's Python loader "
            f"would start with the wrong standard library: run GStreamer with PATH={folder}:$PATH")
