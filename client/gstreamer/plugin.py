"""The file GStreamer's Python loader imports (as `facestream_gst`) from the folder that
`facestream-client gst-plugin-path` prints.

The loader runs the Python that GStreamer was built with (Debian: /usr/bin/python3's libpython),
which is not the one facestream and grpcio are installed in. installation.json, beside the python/
folder this file is copied to, names that installation: its site-packages go first on sys.path
(their .pth files too, so an editable install works) once the two Pythons are found able to share
compiled packages (same implementation and minor version), and the element is registered.
"""
from __future__ import annotations

import json
import site
import sys
from pathlib import Path


def _installation() -> dict:
    path = Path(__file__).resolve().parent.parent / "installation.json"
    try:
        return json.loads(path.read_text())
    except OSError:
        raise ImportError(f"facestream: {path} is missing; add the folder that `facestream-client "
                          f"gst-plugin-path` prints to GST_PLUGIN_PATH") from None


def _use(installation: dict) -> None:
    want = (installation["implementation"], *installation["python"])
    have = (sys.implementation.name, *sys.version_info[:2])
    if want != have:
        raise ImportError(
            f"facestream: GStreamer's Python plugin loader runs {have[0]} {have[1]}.{have[2]}, but the facestream "
            f"installation in {installation['prefix']} is for {want[0]} {want[1]}.{want[2]}: install facestream "
            f"for python{have[1]}.{have[2]} (for example python{have[1]}.{have[2]} -m venv ENV; ENV/bin/pip install "
            f"facestream) and use the folder that ENV/bin/facestream-client gst-plugin-path prints")
    before = list(sys.path)
    for folder in installation["site"]:
        site.addsitedir(folder)
    sys.path[:] = [p for p in sys.path if p not in before] + before


_use(_installation())

from facestream.client.gstreamer.element import FACTORY  # noqa: E402

__gstelementfactory__ = FACTORY
